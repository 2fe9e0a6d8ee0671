# The course's commands. Each one creates .venv on first use and reuses it afterwards.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.convcourse-installed
ASSIGNMENTS := manual_convolution output_dimensions cnn_experiments

.PHONY: demo test lab release grade venv clean

venv: $(STAMP)

# Reinstall only when the project's metadata changes.
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[course,test]'
	@touch $@

## demo: the instructor pipeline: regenerate release/, autograde the example submissions, print grades
demo: $(STAMP)
	$(PY) -m convcourse.grading demo

## test: the whole test suite (unit tests, nbval over source/, release, autograding and browser tests)
# The training budget keeps the notebooks' training runs to seconds; fit() says so in its output.
test: $(STAMP)
	CONVCOURSE_MAX_STEPS=$${CONVCOURSE_MAX_STEPS:-50} $(PY) -m pytest tests source --nbval-lax -p no:cacheprovider

## lab: JupyterLab on the student notebooks
lab: $(STAMP)
	$(VENV)/bin/jupyter lab --notebook-dir=release $$(test "$$(id -u)" = 0 && echo --allow-root)

## release: regenerate release/ from source/ with nbgrader
release: $(STAMP)
	$(PY) -m convcourse.grading release

## grade: sandboxed autograding of everything in submitted/, feedback, grades.csv and a table
grade: $(STAMP)
	$(PY) -m convcourse.grading grade

clean:
	rm -rf autograded feedback grades.csv gradebook.db .pytest_cache

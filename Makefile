# The course's commands. Each one creates .venv on first use and reuses it afterwards.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.convcourse-installed
LOCK   := requirements.txt

.PHONY: demo test lint lab docs notebooks release grade wheel student-archive hub hub-down venv lock clean

venv: $(STAMP)

# Reinstall only when the project's metadata or the lock changes. Exactly the lock's versions (every extra's
# packages; --no-deps: nothing the lock lacks sneaks in unpinned), then this package itself, then pip's own check.
$(STAMP): pyproject.toml $(LOCK)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -r $(LOCK) -e .
	$(PY) -m pip check --disable-pip-version-check
	@touch $@

## lock: recompile the lock (requirements.txt) from pyproject.toml with pip-tools after changing a dependency
# (LOCK_ARGS=--upgrade moves every pin to the newest allowed). Torch as PyPI serves it, within lock-caps.txt:
# PIP_FIND_LINKS is emptied so that a machine's local wheels (e.g. a +cpu build) do not end up in the lock.
lock:
	@test -x .lock-tools/bin/pip-compile || { $(PYTHON) -m venv .lock-tools && .lock-tools/bin/pip install --quiet pip-tools==7.7.0; }
	PIP_FIND_LINKS= CUSTOM_COMPILE_COMMAND="make lock" .lock-tools/bin/pip-compile --quiet --all-extras --strip-extras --allow-unsafe \
	  --no-emit-index-url --no-emit-find-links --constraint lock-caps.txt $(LOCK_ARGS) --output-file $(LOCK) pyproject.toml

## demo: the instructor pipeline: regenerate release/, autograde the example submissions, print grades
demo: $(STAMP)
	$(PY) -m convcourse.grading demo

## test: lint, then the whole test suite (unit tests, nbval over source/, release, autograding and browser tests)
# The root conftest.py gives the suite its training budget (convcourse.budget.TEST_STEPS) unless one is set.
test: lint
	$(PY) -m pytest tests source --nbval-lax -p no:cacheprovider

## lint: ruff over the package, the authoring sources, tests and benchmarks (configured in pyproject.toml)
lint: $(STAMP)
	$(PY) -m ruff check .

## lab: JupyterLab on the student notebooks
lab: $(STAMP)
	$(VENV)/bin/jupyter lab --notebook-dir=release $$(test "$$(id -u)" = 0 && echo --allow-root)

## docs: the documentation site from docs/ into site/, strictly (a broken link or anchor stops it); preview: .venv/bin/mkdocs serve
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict --site-dir site

## notebooks: rebuild source/ from authoring/ (runs each notebook once), then regenerate release/
notebooks: $(STAMP)
	$(PY) -m authoring.build
	$(PY) -m convcourse.grading release

## release: regenerate release/ from source/ with nbgrader
release: $(STAMP)
	$(PY) -m convcourse.grading release

## grade: sandboxed autograding of everything in submitted/, feedback, grades.csv and a table
grade: $(STAMP)
	$(PY) -m convcourse.grading grade

## wheel: the package students install: dist/convcourse-<version>-py3-none-any.whl (offline, no build isolation)
# build/ goes first: setuptools would otherwise package modules deleted since the last build.
wheel: $(STAMP)
	rm -rf build
	$(PY) -m pip wheel --quiet --disable-pip-version-check --no-deps --no-build-isolation . -w dist

## student-archive: the notebooks students download: dist/convcourse-notebooks-<version>.zip from release/ (checked current)
student-archive: $(STAMP)
	$(PY) -m convcourse.grading archive --out dist

## hub: a demo JupyterHub on this machine (as root): accounts for an instructor and students, the course released, URL and passwords printed
hub: $(STAMP)
	$(PY) -m convcourse.grading hub up

## hub-down: remove the demo hub: its processes, accounts and folder
hub-down: $(STAMP)
	$(PY) -m convcourse.grading hub down

clean:
	rm -rf autograded feedback grades.csv gradebook.db .pytest_cache site

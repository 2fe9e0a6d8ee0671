"""release/ is what nbgrader generates from source/, leaks nothing, and nbgrader validate tells them apart.

Runtime on 2 cores: about 25 s for the fast tests (three nbgrader generate_assignment runs), about
90 s more for the slow `nbgrader validate` test (each validation starts a kernel and imports torch).
"""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbgrader.nbgraderformat import MetadataValidator

from authoring import build
from convcourse.budget import BUDGET_ENV, grading_budget
from convcourse.grading.course import release
from convcourse.grading.course.folder import ASSIGNMENTS

ROOT = Path(__file__).resolve().parents[1]
MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS", "BEGIN MARK SCHEME",
           "Model answer")


def notebook_path(folder: str, assignment: str) -> Path:
    return ROOT / folder / assignment / f"{assignment}.ipynb"


def read(folder: str, assignment: str) -> nbformat.NotebookNode:
    return nbformat.read(notebook_path(folder, assignment), as_version=4)


def nbgrader_meta(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def regions(source: str, begin: str, end: str) -> list[str]:
    """The lines inside every begin/end marker pair of a cell."""
    return re.findall(rf"{begin}\n(.*?)\n[ \t]*### {end}", source, flags=re.S)


# ---------------------------------------------------------------- release/ is generated and current


def test_release_is_regenerated_identically():
    problems = release.check(ROOT)
    assert not problems, "release/ is stale; run `make release`:\n" + "\n".join(problems)


def test_compare_trees_sees_real_changes_but_not_volatile_metadata(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for folder in (a, b):
        (folder / "x").mkdir(parents=True)
    notebook = {"cells": [{"cell_type": "markdown", "id": "c1", "metadata": {}, "source": "hi"}],
                "metadata": {"language_info": {"name": "python", "version": "3.11.7"}}, "nbformat": 4,
                "nbformat_minor": 5}
    (a / "x" / "n.ipynb").write_text(json.dumps(notebook))
    notebook["metadata"]["language_info"]["version"] = "3.12.0"
    notebook["metadata"]["widgets"] = {"state": {}}
    (b / "x" / "n.ipynb").write_text(json.dumps(notebook))
    assert release.compare_trees(a, b) == []
    notebook["cells"][0]["source"] = "changed"
    (b / "x" / "n.ipynb").write_text(json.dumps(notebook))
    (b / "x" / "extra.txt").write_text("new")
    assert release.compare_trees(a, b) == ["unexpected: x/extra.txt", "differs: x/n.ipynb (first at cell 0, id c1)"]


def test_source_notebooks_are_what_the_build_writes():
    for assignment in ASSIGNMENTS:
        built, committed = build.build(assignment), read("source", assignment)
        assert [(c.id, c.cell_type, c.source, c.metadata) for c in built.cells] == \
               [(c.id, c.cell_type, c.source, c.metadata) for c in committed.cells], \
               f"{assignment}: rebuild with `make notebooks`"


# ---------------------------------------------------------------- nbgrader structure


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_source_metadata_is_valid_and_complete(assignment):
    notebook = read("source", assignment)
    MetadataValidator().validate_nb(notebook)  # nbgrader's own schema check (version 3)
    managed = [c for c in notebook.cells if nbgrader_meta(c)]
    ids = [nbgrader_meta(c)["grade_id"] for c in managed]
    assert len(ids) == len(set(ids))
    assert all(c.cell_type == "code" and "=" in c.source for c in notebook.cells if c not in managed)  # settings
    for cell in managed:
        meta = nbgrader_meta(cell)
        if meta["solution"] and cell.cell_type == "code":
            assert regions(cell.source, "### BEGIN SOLUTION", "END SOLUTION"), meta["grade_id"]
        if meta["grade"]:
            assert meta["points"] > 0 and meta["locked"] != meta["solution"], meta["grade_id"]
        if "BEGIN HIDDEN TESTS" in cell.source:
            assert meta["grade"] and not meta["solution"], meta["grade_id"]
        if not (meta["solution"] or meta["grade"]):
            assert meta["locked"], f"given cell {meta['grade_id']} should be read-only"


def test_points_per_assignment():
    assert release.points(ROOT) == {
        "manual_convolution": {"auto": 19, "manual": 2, "total": 21},
        "output_dimensions": {"auto": 17, "manual": 2, "total": 19},
        "cnn_experiments": {"auto": 11, "manual": 18, "total": 29},
    }


def test_source_notebooks_are_committed_without_stray_outputs():
    for assignment in ASSIGNMENTS:
        for cell in read("source", assignment).cells:
            if cell.cell_type == "code" and "# NBVAL_CHECK_OUTPUT" not in cell.source:
                assert not cell.outputs and cell.execution_count is None, cell.id


# ---------------------------------------------------------------- nothing leaks into release/


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_release_contains_no_solutions_hidden_tests_or_model_answers(assignment):
    text = notebook_path("release", assignment).read_text()
    for marker in MARKERS:
        assert marker not in text, f"{marker!r} in release/{assignment}"
    released = {c.id: c for c in read("release", assignment).cells}
    everything = "\n".join(c.source for c in released.values())
    for cell in read("source", assignment).cells:
        meta = nbgrader_meta(cell)
        secret = regions(cell.source, "### BEGIN SOLUTION", "END SOLUTION")
        secret += regions(cell.source, "### BEGIN HIDDEN TESTS", "END HIDDEN TESTS")
        if meta.get("solution") and cell.cell_type == "markdown":
            secret.append(cell.source)
        public = cell.source
        for region in secret:
            public = public.replace(region, "")
        for line in "\n".join(secret).splitlines():
            line = line.strip()
            if len(line) > 3 and not line.startswith("#") and line not in public:
                assert line not in released[cell.id].source, f"{cell.id} leaks {line!r}"
                assert len(line) < 30 or line not in everything, f"release/{assignment} leaks {line!r}"
        if meta.get("solution"):
            assert released[cell.id].source != cell.source


# ---------------------------------------------------------------- nbgrader validate


def validate(path: Path) -> str:
    """`nbgrader validate` on one notebook (it executes it); returns what nbgrader printed."""
    env = {**os.environ, BUDGET_ENV: str(grading_budget())}
    done = subprocess.run([sys.executable, "-m", "nbgrader", "validate", str(path)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    return done.stdout + done.stderr


@pytest.mark.slow
@pytest.mark.parametrize("folder, assignment", [
    ("source", "manual_convolution"), ("release", "manual_convolution"),
    ("source", "output_dimensions"), ("release", "output_dimensions"),
    ("release", "cnn_experiments"),  # its solution runs in nbval; validating it would train twice
])
def test_nbgrader_validate_passes_the_solution_and_fails_the_release(folder, assignment):
    output = validate(notebook_path(folder, assignment))
    if folder == "source":
        assert "Success! Your notebook passes all the tests." in output, output[-3000:]
    else:  # every graded cell (test or written answer) fails on the blank notebook
        graded = sum(nbgrader_meta(c).get("grade", False) for c in read(folder, assignment).cells)
        assert f"VALIDATION FAILED ON {graded} CELL(S)" in output, output[-3000:]

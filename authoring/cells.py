"""Cell constructors for the course notebooks, with the nbgrader metadata (schema version 3) each kind needs.

given/given_md: read-only material (nbgrader "locked"); editable: settings the student may change;
solution: where the student writes code;
tests: an autograded test cell worth `points`; answer: a manually graded markdown answer whose
text in the source notebook is the model answer (nbgrader replaces it with "YOUR ANSWER HERE").
"""
from __future__ import annotations

from textwrap import dedent

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell

SCHEMA_VERSION = 3


def _text(source: str) -> str:
    return dedent(source).strip("\n")


def _nbgrader(grade_id: str | None, *, solution: bool = False, grade: bool = False, locked: bool = False,
              points: float | None = None, task: bool = False) -> dict:
    meta = {"grade": grade, "solution": solution, "locked": locked, "task": task, "schema_version": SCHEMA_VERSION}
    if grade_id is not None:
        meta["grade_id"] = grade_id
    if points is not None:
        meta["points"] = points
    return meta


def given_md(source: str) -> nbformat.NotebookNode:
    """Read-only explanation; its grade_id is assigned when the notebook is built."""
    cell = new_markdown_cell(_text(source))
    cell.metadata["nbgrader"] = _nbgrader(None, locked=True)
    return cell


def given(source: str) -> nbformat.NotebookNode:
    """Read-only code the student runs but does not edit."""
    cell = new_code_cell(_text(source))
    cell.metadata["nbgrader"] = _nbgrader(None, locked=True)
    return cell


def editable(cell_id: str, source: str) -> nbformat.NotebookNode:
    """Code the student may change (settings): no nbgrader metadata, so nothing locks or grades it."""
    cell = new_code_cell(_text(source))
    cell.id = cell_id
    return cell


def solution(grade_id: str, source: str) -> nbformat.NotebookNode:
    """Code the student writes; the source holds the instructor's answer in a solution region."""
    source = _text(source)
    if "### BEGIN SOLUTION" not in source or "### END SOLUTION" not in source:
        raise ValueError(f"solution cell {grade_id!r} has no ### BEGIN SOLUTION ... ### END SOLUTION region")
    cell = new_code_cell(source)
    cell.metadata["nbgrader"] = _nbgrader(grade_id, solution=True)
    return cell


# Every test cell starts by reloading the checks, so a student's cell cannot have replaced them.
RELOAD_CHECKS = """\
import importlib, convcourse.checks
checks = importlib.reload(convcourse.checks)  # reloaded, so nothing a cell above changed in it survives
"""


def tests(grade_id: str, points: float, source: str) -> nbformat.NotebookNode:
    """An autograded, read-only test cell worth ``points``; it passes when it runs without an error."""
    if points <= 0:
        raise ValueError(f"test cell {grade_id!r} needs positive points, got {points}")
    cell = new_code_cell(RELOAD_CHECKS + _text(source))
    cell.metadata["nbgrader"] = _nbgrader(grade_id, grade=True, locked=True, points=points)
    return cell


def answer(grade_id: str, points: float, model_answer: str) -> nbformat.NotebookNode:
    """A manually graded written answer; ``model_answer`` stays in the source notebook only."""
    cell = new_markdown_cell(_text(model_answer))
    cell.metadata["nbgrader"] = _nbgrader(grade_id, grade=True, solution=True, points=points)
    return cell


def build_notebook(prefix: str, cells: list[nbformat.NotebookNode]) -> nbformat.NotebookNode:
    """A notebook of ``cells``: read-only cells get grade_ids ``<prefix>-given-NN``, every cell id = its grade_id."""
    seen: set[str] = set()
    counter = 0
    for cell in cells:
        if "nbgrader" not in cell.metadata:
            seen.add(cell.id)
            continue
        meta = cell.metadata["nbgrader"]
        if "grade_id" not in meta:
            counter += 1
            meta["grade_id"] = f"{prefix}-given-{counter:02d}"
        if meta["grade_id"] in seen:
            raise ValueError(f"duplicate grade_id {meta['grade_id']!r}")
        seen.add(meta["grade_id"])
        cell.id = meta["grade_id"]  # stable cell ids: rebuilding gives byte-identical notebooks
    notebook = nbformat.v4.new_notebook(cells=cells)
    notebook.metadata = {
        "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    nbformat.validate(notebook)
    return notebook

"""A throwaway nbgrader course with one tiny assignment: fast sandbox and grading tests (no torch in it).

Points: test_square 1, test_answer 2, test_square_hidden 1 (autograded, 4 in all) and a manually
graded markdown answer worth 1. The expected scores in the tests are computed from these notebooks
by convcourse.grading.demo.samples, never typed in.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parent.parent
ASSIGNMENT = "tiny"


def _meta(grade_id: str, *, solution: bool = False, grade: bool = False, locked: bool = False,
          points: float | None = None) -> dict:
    nbgrader = {"grade": grade, "grade_id": grade_id, "locked": locked, "schema_version": 3,
                "solution": solution, "task": False}
    if points is not None:
        nbgrader["points"] = points
    return {"nbgrader": nbgrader}


def tiny_notebook() -> nbformat.NotebookNode:
    """The instructor's version: solutions, visible and hidden tests, read-only text, a written answer."""
    cells = [
        new_markdown_cell("# Tiny\nWrite `square` and the answer.", metadata=_meta("intro", locked=True)),
        new_code_cell("import math", metadata=_meta("imports", locked=True)),
        new_code_cell("def square(x):\n    ### BEGIN SOLUTION\n    return x * x\n    ### END SOLUTION",
                      metadata=_meta("square", solution=True)),
        new_code_cell("assert square(3) == 9, 'square(3) should be 9'",
                      metadata=_meta("test_square", grade=True, locked=True, points=1)),
        new_markdown_cell("The answer to everything:", metadata=_meta("answer_intro", locked=True)),
        new_code_cell("### BEGIN SOLUTION\nanswer = 42\n### END SOLUTION", metadata=_meta("answer", solution=True)),
        new_code_cell("assert answer == 42, f'answer is {answer!r}'",
                      metadata=_meta("test_answer", grade=True, locked=True, points=2)),
        new_code_cell("assert math.isclose(square(1.5), 2.25)\n### BEGIN HIDDEN TESTS\nassert square(-2) == 4\n"
                      "### END HIDDEN TESTS", metadata=_meta("test_square_hidden", grade=True, locked=True, points=1)),
        new_markdown_cell("Why is 42 the answer?", metadata=_meta("why_intro", locked=True)),
        new_markdown_cell("YOUR ANSWER HERE", metadata=_meta("why", solution=True, grade=True, points=1)),
    ]
    notebook = new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return notebook


def make_course(folder: Path) -> Path:
    """A course at ``folder``: this project's nbgrader_config.py, source/tiny, release/tiny, a gradebook."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy2(ROOT / "nbgrader_config.py", folder / "nbgrader_config.py")
    source = folder / "source" / ASSIGNMENT
    source.mkdir(parents=True, exist_ok=True)
    nbformat.write(tiny_notebook(), source / f"{ASSIGNMENT}.ipynb")
    from convcourse.grading.course.gradebook import load_config, nbgrader_api

    result = nbgrader_api(load_config(folder)).generate_assignment(ASSIGNMENT, force=True, create=True)  # release/ + gradebook
    if not result["success"]:
        raise RuntimeError(f"generate_assignment failed:\n{result.get('log')}\n{result.get('error')}")
    return folder

"""Students who fetched an assignment before the package was reorganised must not break.

The released notebooks of the last commit of the flat layout are taken from git history, their
solution cells filled in from that commit's source notebooks (what a student who solved them has),
and executed with nbval against today's package.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from student_notebooks import fill_solutions, run_nbval

from convcourse.grading.course.folder import ASSIGNMENTS

ROOT = Path(__file__).resolve().parents[1]
FLAT_LAYOUT = "0c1610c02b9e0e3ff28426d58f2de26d42e0a335"  # the last commit before convcourse/grading/


def from_history(path: str) -> nbformat.NotebookNode:
    """A notebook as committed at FLAT_LAYOUT."""
    text = subprocess.run(["git", "show", f"{FLAT_LAYOUT}:{path}"], cwd=ROOT, capture_output=True, text=True,
                          check=True).stdout
    return nbformat.reads(text, as_version=4)


def solved(assignment: str) -> nbformat.NotebookNode:
    """The old release notebook with its code solution cells as the old source notebook had them."""
    return fill_solutions(from_history(f"release/{assignment}/{assignment}.ipynb"),
                          from_history(f"source/{assignment}/{assignment}.ipynb"))


def history_available() -> bool:
    return subprocess.run(["git", "cat-file", "-e", f"{FLAT_LAYOUT}^{{commit}}"], cwd=ROOT,
                          capture_output=True).returncode == 0


@pytest.mark.slow
@pytest.mark.skipif(not history_available(), reason=f"commit {FLAT_LAYOUT[:7]} is not in this clone's history")
def test_released_notebooks_of_the_flat_layout_run_against_todays_package(tmp_path):
    paths = []
    for assignment in ASSIGNMENTS:
        folder = tmp_path / assignment
        folder.mkdir()
        nbformat.write(solved(assignment), folder / f"{assignment}.ipynb")
        paths.append(folder / f"{assignment}.ipynb")
    # The dataset comes from the environment the root conftest.py prepared; the budget is the smoke budget.
    run_nbval(sys.executable, tmp_path, paths)

"""Students who fetched an assignment before the package was reorganised must not break.

The released notebooks of the last commit of the flat layout are taken from git history, their
solution cells filled in from that commit's source notebooks (what a student who solved them has),
and executed with nbval against today's package.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from convcourse.budget import BUDGET_ENV, SMOKE_STEPS
from convcourse.grading.course import ASSIGNMENTS

ROOT = Path(__file__).resolve().parents[1]
FLAT_LAYOUT = "0c1610c02b9e0e3ff28426d58f2de26d42e0a335"  # the last commit before convcourse/grading/


def from_history(path: str) -> nbformat.NotebookNode:
    """A notebook as committed at FLAT_LAYOUT."""
    text = subprocess.run(["git", "show", f"{FLAT_LAYOUT}:{path}"], cwd=ROOT, capture_output=True, text=True,
                          check=True).stdout
    return nbformat.reads(text, as_version=4)


def solved(assignment: str) -> nbformat.NotebookNode:
    """The old release notebook with its code solution cells as the old source notebook had them."""
    released = from_history(f"release/{assignment}/{assignment}.ipynb")
    answers = {c.metadata["nbgrader"]["grade_id"]: c.source for c in
               from_history(f"source/{assignment}/{assignment}.ipynb").cells
               if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("solution")}
    filled = 0
    for cell in released.cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and meta.get("solution"):
            cell.source, filled = answers[meta["grade_id"]], filled + 1
        # The reference outputs nbval compares were cleared from the release; this test is about running.
        cell.source = cell.source.replace("# NBVAL_CHECK_OUTPUT", "")
    assert filled, f"{assignment}: no solution cell to fill"
    return released


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
        paths.append(str(folder / f"{assignment}.ipynb"))
    # The dataset comes from the environment the root conftest.py prepared; the budget is the smallest
    # that runs every cell, since what is tested is that the old notebooks' imports and calls still work.
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax",
                           "--rootdir", str(tmp_path), *paths], cwd=tmp_path, capture_output=True, text=True,
                          timeout=900, env={**os.environ, BUDGET_ENV: str(SMOKE_STEPS)})
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    cells = sum(1 for path in paths for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")
    assert f"{cells} passed" in done.stdout, done.stdout[-2000:]  # nbval: one test per code cell

"""Helpers for tests that run released notebooks the way a student who solved them has them.

Shared by test_old_release.py (notebooks of an older layout against today's package) and
test_student_install.py (today's notebooks against the installed wheel).
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import nbformat

from convcourse.budget import BUDGET_ENV, SMOKE_STEPS  # these runs test that every cell runs, not what training reaches


def fill_solutions(released: nbformat.NotebookNode, source: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """``released`` with its code solution cells as ``source`` has them, ready to run top to bottom."""
    answers = {c.metadata["nbgrader"]["grade_id"]: c.source for c in source.cells
               if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("solution")}
    filled = 0
    for cell in released.cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and meta.get("solution"):
            cell.source, filled = answers[meta["grade_id"]], filled + 1
        # The reference outputs nbval compares were cleared from the release; these tests are about running.
        cell.source = cell.source.replace("# NBVAL_CHECK_OUTPUT", "")
    assert filled, "no solution cell to fill"
    return released


def code_cells(paths: list[Path]) -> int:
    """Code cells in these notebooks: nbval makes one test of each."""
    return sum(1 for path in paths for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")


def run_nbval(python: str, folder: Path, paths: list[Path], env: dict[str, str] | None = None,
              timeout: int = 900) -> subprocess.CompletedProcess:
    """nbval over ``paths`` by ``python`` in ``folder`` (its kernels: that interpreter); asserts every cell passed."""
    env = {**(os.environ if env is None else env), BUDGET_ENV: str(SMOKE_STEPS)}
    done = subprocess.run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax", "--rootdir",
                           str(folder), *map(str, paths)], cwd=folder, env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert f"{code_cells(paths)} passed" in done.stdout, done.stdout[-2000:]
    return done

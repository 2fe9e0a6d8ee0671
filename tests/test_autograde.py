"""GradingExecute on the tiny notebook: the defences change grades that tricks would otherwise win (~20 s)."""
from __future__ import annotations

import ast

import nbformat
import pytest
from nbgrader.utils import determine_grade
from tiny_course import tiny_notebook
from traitlets.config import Config

from convcourse.grading import sandbox
from convcourse.grading.demo import hostile_cells
from convcourse.grading.demo.points import is_solution_code, is_test
from convcourse.grading.nbgrader.preprocessors import GradingExecute, strip_token, with_token

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not sandbox.sandbox_status().available, reason=sandbox.sandbox_status().reason)]

# A wrong `square` that only a rigged math.isclose lets through the visible test of test_square_hidden.
WRONG_SQUARE = "def square(x):\n    return 0 if x == 1.5 else x * x"
RIG_ISCLOSE = "import math\nmath.isclose = lambda *args, **kwargs: True"


def autograded_points(nb: nbformat.NotebookNode, tmp_path, **traits) -> dict[str, float]:
    """Execute like autograde does and score each test cell the way nbgrader's SaveAutoGrades does."""
    config = Config()
    config.Execute.timeout = traits.pop("timeout", 10)
    if "memory_mb" in traits:
        config.SandboxedKernelManager.memory_mb = traits.pop("memory_mb")
    executor = GradingExecute(config=config, **traits)
    nb, _ = executor.preprocess(nb, {"metadata": {"path": str(tmp_path)}})
    return {cell.metadata.nbgrader["grade_id"]: determine_grade(cell)[0] for cell in nb.cells if is_test(cell)}


def with_cells(nb: nbformat.NotebookNode, after: str, *sources: str) -> nbformat.NotebookNode:
    """``nb`` with code cells inserted after the cell whose grade_id is ``after``."""
    index = next(i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("grade_id") == after)
    nb.cells[index + 1:index + 1] = [nbformat.v4.new_code_cell(source) for source in sources]
    return nb


def test_a_rigged_builtin_wins_points_only_without_the_guard(tmp_path):
    nb = tiny_notebook()
    nb.cells[2].source = WRONG_SQUARE
    honest = autograded_points(nb, tmp_path)
    rigged = with_cells(tiny_notebook(), "imports", RIG_ISCLOSE)
    rigged.cells[3].source = WRONG_SQUARE
    assert honest["test_square_hidden"] == 0
    assert autograded_points(rigged, tmp_path, integrity_checks=False)["test_square_hidden"] == 1  # the trick works...
    assert autograded_points(rigged, tmp_path) == honest  # ...until the guard restores math before each test


def test_swallowed_errors_win_everything_only_without_the_checks(tmp_path):
    blank = tiny_notebook()
    for cell in blank.cells:
        if is_solution_code(cell):
            cell.source = "raise NotImplementedError()"
    attacked = with_cells(blank, "imports", hostile_cells.SWALLOW_AST)
    assert sum(autograded_points(attacked, tmp_path, integrity_checks=False).values()) == 4
    assert sum(autograded_points(attacked, tmp_path).values()) == 0


def test_memory_a_failed_cell_grabbed_is_given_back(tmp_path):
    # The bomb ends in MemoryError at the cap; its traceback would keep the memory and starve later cells.
    nb = with_cells(tiny_notebook(), "imports", hostile_cells.bomb(2048))
    square = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "square")
    square.source = "_scratch = bytearray(700 * 2**20)  # a solution that needs memory\ndel _scratch\n" + square.source
    starved = autograded_points(nb, tmp_path, memory_mb=1024, integrity_checks=False)
    assert starved == {"test_square": 0, "test_answer": 2, "test_square_hidden": 0}
    assert autograded_points(nb, tmp_path, memory_mb=1024) == {"test_square": 1, "test_answer": 2,
                                                                "test_square_hidden": 1}


def test_notebook_time_limit_marks_the_rest_not_run(tmp_path):
    nb = with_cells(tiny_notebook(), "test_square", "import time\ntime.sleep(30)")
    points = autograded_points(nb, tmp_path, timeout=20, notebook_timeout=4)
    assert points == {"test_square": 1, "test_answer": 0, "test_square_hidden": 0}


def test_token_keeps_a_final_expression_as_the_cell_value():
    source = "x = 1\n(x +\n 2)"
    body = ast.parse(with_token(source, "abc123")).body
    assert isinstance(body[-1], ast.Expr) and body[-1].value.id == "__convcourse_value__"
    assert "abc123" in with_token("%time x = 1", "abc123").splitlines()[-1]  # IPython syntax: token goes last


def test_strip_token_reports_and_removes_it():
    cell = nbformat.v4.new_code_cell("", outputs=[nbformat.v4.new_output("stream", name="stdout", text="ok\nabc\n")])
    assert strip_token(cell, "abc") and cell.outputs[0].text == "ok\n"
    assert not strip_token(cell, "abc")

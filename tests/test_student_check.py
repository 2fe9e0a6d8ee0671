"""The check students run before handing in (convcourse.check, ``python -m convcourse check NOTEBOOK``).

Fast tests work on notebooks in memory (no kernel): the shipped released cells are current and hold no
hidden test, a notebook is recognised, locked cells are put back, outputs become results. One slow test
runs the whole check from a notebook cell, the way a student calls it, on a notebook with every kind of
trouble in it.
"""
from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from convcourse import check
from convcourse.budget import BUDGET_ENV
from convcourse.grading.course import released_cells
from convcourse.grading.course.folder import ASSIGNMENTS
from convcourse.grading.course.gradebook import load_config

ROOT = Path(__file__).resolve().parents[1]


def notebook(kind: str, assignment: str) -> nbformat.NotebookNode:
    return nbformat.read(ROOT / kind / assignment / f"{assignment}.ipynb", as_version=4)


def grade_id(cell) -> str | None:
    return cell.metadata.get("nbgrader", {}).get("grade_id")


def test_the_shipped_released_cells_are_those_of_release():
    assert released_cells.stale(ROOT, ASSIGNMENTS) == [], "run `make release` (it writes convcourse/released_cells.json)"
    assert set(check.released()) == set(ASSIGNMENTS)


def test_release_writes_the_shipped_cells_and_release_check_finds_them_stale(tmp_path, monkeypatch, capsys):
    """`make release` on the package's own course writes them; `release --check` exits 1 when they differ."""
    from convcourse.grading import __main__ as cli

    monkeypatch.setattr(released_cells, "PACKAGE_DATA", tmp_path / "released_cells.json")
    monkeypatch.setattr(cli.release, "generate", lambda root, names: root / "release")  # release/ as it is
    monkeypatch.setattr(cli.release, "check", lambda root, names: [])
    assert cli.main(["--root", str(ROOT), "release"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == f"wrote {tmp_path / 'released_cells.json'}"
    assert cli.main(["--root", str(ROOT), "release", "--check"]) == 0
    (tmp_path / "released_cells.json").write_text("{}")
    assert cli.main(["--root", str(ROOT), "release", "--check"]) == 1
    assert "differs: released_cells.json" in capsys.readouterr().out


def test_the_shipped_cells_hold_no_hidden_test():
    text = (ROOT / "convcourse" / "released_cells.json").read_text()
    assert "HIDDEN TESTS" not in text and "BEGIN SOLUTION" not in text
    shipped = {c["grade_id"]: c["source"] for data in check.released().values() for c in data["cells"]}
    hidden = 0
    for assignment in ASSIGNMENTS:
        for cell in notebook("source", assignment).cells:
            for region in re.findall(r"### BEGIN HIDDEN TESTS\n(.*?)### END HIDDEN TESTS", cell.source, re.S):
                lines = [line.strip() for line in region.splitlines() if len(line.strip()) > 3]
                hidden += len(lines)
                assert not [line for line in lines if line in shipped[grade_id(cell)]], grade_id(cell)
    assert hidden, "the course has no hidden tests any more: this test proves nothing"


def test_the_checks_limits_are_the_graders():
    config = load_config(ROOT)
    assert check.CELL_TIMEOUT == config.Execute.timeout
    assert check.NOTEBOOK_TIMEOUT == config.GradingExecute.notebook_timeout


def test_a_notebook_is_recognised_by_its_cells():
    shipped = check.released()
    for assignment in ASSIGNMENTS:
        assert check.identify(notebook("release", assignment), shipped) == assignment
    with pytest.raises(check.CheckError, match="no cell of the course's assignments"):
        check.identify(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1")]), shipped)


def test_edited_and_deleted_locked_cells_are_put_back_in_place():
    nb, cells = notebook("release", "manual_convolution"), check.released()["manual_convolution"]["cells"]
    ids = [grade_id(c) for c in nb.cells]
    original = {grade_id(c): c.source for c in nb.cells}
    nb.cells[ids.index("mc-test-conv2d-visible")].source = "pass"
    nb.cells[ids.index("mc-conv2d-naive")].source = "def conv2d_naive(x, k):\n    return x"  # a solution: kept
    del nb.cells[ids.index("mc-test-pool-by-hand")]
    warnings = check.restore(nb, cells)
    assert [grade_id(c) for c in nb.cells] == ids
    assert len(warnings) == 2 and "deleted (mc-test-pool-by-hand, in Task 2" in warnings[0] \
        and "edited (mc-test-conv2d-visible" in warnings[1]
    restored = {grade_id(c): c.source for c in nb.cells}
    assert restored["mc-test-conv2d-visible"] == original["mc-test-conv2d-visible"]
    assert restored["mc-conv2d-naive"] == "def conv2d_naive(x, k):\n    return x"
    assert check.restore(nb, cells) == []


def error(ename: str, evalue: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_output("error", ename=ename, evalue=evalue, traceback=[])


def test_outputs_become_results_warnings_and_notes():
    nb, cells = notebook("release", "manual_convolution"), check.released()["manual_convolution"]["cells"]
    by_id = {grade_id(c): c for c in nb.cells}
    by_id["mc-test-conv2d-visible"].outputs = [error("CheckFailed", "9 of 9 entries are wrong [flipped-kernel].")]
    by_id["mc-conv-by-hand"].outputs = [error("NotImplementedError", "")]
    by_id["mc-given-03"].outputs = [error("ModuleNotFoundError", "No module named 'seaborn'")]
    by_id["mc-test-maxpool2d-visible"].outputs = [nbformat.v4.new_output(
        "stream", name="stderr", text="x.py:1: HabitWarning: m ends in nn.Softmax [softmax-before-loss]\n")]
    tests, warnings, notes = check.results(nb, cells)
    assert [t.grade_id for t in tests] == [c["grade_id"] for c in cells if c["grade"] and not c["solution"]]
    failed = [t for t in tests if not t.passed]
    assert [(t.grade_id, t.points, t.message) for t in failed] == [
        ("mc-test-conv2d-visible", 2.0, "CheckFailed: 9 of 9 entries are wrong [flipped-kernel]."),
        ("mc-test-maxpool2d-visible", 2.0, "printed to stderr, which the grader scores 0: x.py:1: HabitWarning: m ends "
         "in nn.Softmax [softmax-before-loss]")]  # as nbgrader's determine_grade does
    assert len(warnings) == 1 and "(import matplotlib.pyplot as plt) raised " \
        "ModuleNotFoundError: No module named 'seaborn'" in warnings[0]
    assert notes == ["not answered yet: mc-conv-by-hand (in Task 1: the whole feature map (2 points))",
                     "m ends in nn.Softmax [softmax-before-loss]"]
    report = check.Report("manual_convolution", tests, warnings, notes)
    text = check.render(report, "manual_convolution.ipynb")
    points = {t.grade_id: t.points for t in tests}
    total, lost = sum(points.values()), points["mc-test-conv2d-visible"] + points["mc-test-maxpool2d-visible"]
    assert f"FAILED  mc-test-conv2d-visible ({points['mc-test-conv2d-visible']:g} points) in {failed[0].title}" in text
    assert f"{len(tests) - 2} of {len(tests)} passed, {total - lost:g} of {total:g} points" in text
    assert not report.ok


def test_the_notebook_a_kernel_belongs_to_is_the_one_jupyterlab_names(tmp_path, monkeypatch):
    path = tmp_path / "manual_convolution.ipynb"
    path.write_text("{}")
    monkeypatch.setenv("JPY_SESSION_NAME", str(path))
    assert check.current_notebook() == path
    monkeypatch.delenv("JPY_SESSION_NAME")
    with pytest.raises(check.CheckError, match="pass its name"):
        check.current_notebook()


def test_check_in_a_kernel_with_a_budget_does_nothing(monkeypatch, capsys):
    monkeypatch.setenv(BUDGET_ENV, "20")
    assert check.check("anything.ipynb") is None
    assert "does nothing here" in capsys.readouterr().out


@pytest.mark.parametrize("content, message", [
    (None, "no notebook at"),
    ('{"cells": [', "is not a notebook nbformat can read"),
    (nbformat.writes(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1")])), "no cell of the course's"),
])
def test_bad_input_gets_one_error_line_and_exit_2(tmp_path, capsys, content, message):
    path = tmp_path / "x.ipynb"
    if content is not None:
        path.write_text(content)
    from convcourse.__main__ import main

    assert main(["check", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


def troubled_notebook(folder: Path) -> tuple[Path, list[str]]:
    """A student's renamed manual_convolution (a flipped kernel, an edited and a deleted test, a broken cell, a check()),
    and the warnings the check must give."""
    nb = notebook("release", "manual_convolution")
    answers = {grade_id(c): c.source for c in notebook("source", "manual_convolution").cells}
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("solution") and cell.cell_type == "code":
            cell.source = answers[grade_id(cell)]
    ids = [grade_id(c) for c in nb.cells]
    naive = nb.cells[ids.index("mc-conv2d-naive")]
    naive.source = naive.source.replace("def conv2d_naive(x, k):\n", "def conv2d_naive(x, k):\n    k = k[::-1, ::-1]\n")
    nb.cells[ids.index("mc-test-maxpool2d-visible")].source = "print('all good')"
    del nb.cells[ids.index("mc-test-pool-by-hand")]
    nb.cells.append(nbformat.v4.new_code_cell("undefined_name + 1"))
    nb.cells.append(nbformat.v4.new_code_cell("from convcourse.check import check\ncheck()"))  # a student's own call
    path = folder / "manual_convolution (1).ipynb"
    nbformat.write(nb, path)
    broken = len(nb.cells)  # its number (counted from 1) once the deleted test is back in
    return path, ["the file is named manual_convolution (1).ipynb, but the grader only grades manual_convolution.ipynb",
                  "a locked cell was deleted (mc-test-pool-by-hand", "a locked cell was edited (mc-test-maxpool2d-visible",
                  f"cell {broken} (undefined_name + 1) raised NameError: name 'undefined_name' is not defined"]


def test_the_command_and_the_function_print_the_report(tmp_path, monkeypatch, capsys):
    """The two ways in, wired to check_file and render (the run itself: tests/test_student_install.py, slow)."""
    path, _ = troubled_notebook(tmp_path)
    report = check.Report("manual_convolution", [check.TestResult("mc-test-x", "Task 9", 1.0, True)], [], [])
    monkeypatch.setattr(check, "check_file", lambda got: report if Path(got) == path else None)
    monkeypatch.delenv(BUDGET_ENV, raising=False)
    from convcourse.__main__ import main

    assert main(["check", str(path)]) == 0
    assert capsys.readouterr().out == check.render(report, path) + "\n"
    assert check.check(path) is report
    assert capsys.readouterr().out.splitlines()[1:] == check.render(report, path).splitlines()
    report.warnings.append("something")
    assert main(["check", str(path)]) == 1

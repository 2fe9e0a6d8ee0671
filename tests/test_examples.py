"""Example submissions are derived from the notebooks, with scores computed from their points (< 1 s)."""
from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from tiny_course import ASSIGNMENT, tiny_notebook

from convcourse.grading.demo import classic_mistakes, hostile_cells, points, samples

ROOT = Path(__file__).resolve().parent.parent


def _release(source: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """What nbgrader's ClearSolutions makes of the tiny notebook (enough for these tests)."""
    release = nbformat.reads(nbformat.writes(source), as_version=4)
    for cell in release.cells:
        if points.is_solution_code(cell):
            head = cell.source.split("### BEGIN SOLUTION")[0]
            cell.source = head + "# YOUR CODE HERE\n" + "    " * head.startswith("def") + "raise NotImplementedError()"
        cell.source = cell.source.split("### BEGIN HIDDEN TESTS")[0]
    return release


@pytest.fixture
def ctx() -> samples.Context:
    source = tiny_notebook()
    return samples.Context(ASSIGNMENT, source, _release(source))


def test_points_come_from_the_notebook(ctx):
    assert [(grade_id, points) for _, grade_id, points in points.tests(ctx.source)] == [
        ("test_square", 1.0), ("test_answer", 2.0), ("test_square_hidden", 1.0)]
    assert points.total_points(ctx.source) == 4.0  # the written answer (1 point) is graded by hand


def test_names_follow_bindings_and_reads():
    source = "import numpy as np\ndef f(x):\n    t = x\n    return g(t) + np.pi\ny = f(2) + z"
    bound, read = points.names(source)
    assert bound == {"np", "f", "y"} and read == {"g", "z"}  # x and t are f's own
    assert points.names("%timeit f()") == (set(), {"<unparsable cell>"})


def test_passing_tests_follow_names_through_helpers():
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("def g(x):\n    return x",
                                  metadata={"nbgrader": {"solution": True, "grade_id": "g"}}),
        nbformat.v4.new_code_cell("def f(x):\n    return g(x) + 1"),
        nbformat.v4.new_code_cell("assert f(1) == 2", metadata={"nbgrader": {"grade": True, "grade_id": "t_f"}}),
        nbformat.v4.new_code_cell("assert 1 + 1 == 2", metadata={"nbgrader": {"grade": True, "grade_id": "t_ok"}}),
    ])
    assert points.passing_tests(nb, {"g"}) == {"t_ok"}
    assert points.passing_tests(nb, set()) == {"t_f", "t_ok"}


@pytest.mark.parametrize("case", samples.CASES)
def test_every_case_builds_with_a_score_within_the_points(ctx, case):
    submission = samples.build(ctx, case)
    assert submission.files and 0 <= submission.expected <= points.total_points(ctx.source)
    assert submission.student == case.replace("_", "-")


def test_demo_scores_are_computed(ctx):
    scores = {case: samples.build(ctx, case).expected for case in samples.DEMO_CASES}
    # partial: `square` done, `answer` left as released, so test_answer fails and the square tests pass
    assert scores == {"full": 4.0, "blank": 0.0, "partial": 1.0 + 1.0}


def test_a_kernel_lost_halfway_keeps_the_tests_before_it(ctx):
    nb, index = samples.insert_cell(ctx.source, hostile_cells.OS_EXIT, "middle")
    assert [c.source for c in nb.cells].index(hostile_cells.OS_EXIT) == index
    assert samples.build(ctx, "os_exit").expected == points.points_before(nb, index) == 1.0
    assert samples.build(ctx, "kill_kernel").expected == 4.0  # its last cell: every test ran before it


def test_hostile_notebooks_carry_the_hostile_cell(ctx):
    network = samples.build(ctx, "network").files[f"{ASSIGNMENT}.ipynb"].decode()
    assert "('127.0.0.1', 4242)" in hostile_cells.network(("127.0.0.1", 4242)) and "create_connection" in network
    edited = nbformat.reads(samples.build(ctx, "edited_tests").files[f"{ASSIGNMENT}.ipynb"].decode(), 4)
    assert [c.source for c in edited.cells if points.is_test(c)] == ["pass"] * 3
    deleted = nbformat.reads(samples.build(ctx, "deleted_tests").files[f"{ASSIGNMENT}.ipynb"].decode(), 4)
    assert not points.tests(deleted)


def test_bad_input_gets_clear_errors(ctx, tmp_path):
    with pytest.raises(ValueError, match="unknown example case 'nope'"):
        samples.build(ctx, "nope")
    with pytest.raises(FileNotFoundError, match="no notebook at"):
        samples.context(tmp_path, "missing_assignment")
    stale = samples.Context(ASSIGNMENT, ctx.source, nbformat.v4.new_notebook())
    with pytest.raises(ValueError, match="regenerate release/"):
        samples.build(stale, "partial")


def test_write_replaces_the_submission_folder(ctx, tmp_path):
    old = tmp_path / "submitted" / "full" / ASSIGNMENT / "old.txt"
    old.parent.mkdir(parents=True)
    old.write_text("left over")
    folder = samples.build(ctx, "full").write(tmp_path)
    assert sorted(p.name for p in folder.iterdir()) == [f"{ASSIGNMENT}.ipynb"]


@pytest.mark.parametrize("assignment", ["manual_convolution", "output_dimensions", "cnn_experiments"])
def test_course_notebooks_give_a_partial_score_strictly_between(assignment):
    if not (ROOT / "release" / assignment / f"{assignment}.ipynb").is_file():
        pytest.skip(f"release/{assignment} not generated yet")
    ctx = samples.context(ROOT, assignment)
    partial = samples.build(ctx, "partial").expected
    assert 0 < partial < points.total_points(ctx.source)


# ---------------------------------------------------------------- classic mistakes planted for the class report

COURSE = ("manual_convolution", "output_dimensions", "cnn_experiments")


def test_each_planted_mistake_is_a_named_solution_cell_of_the_course():
    from convcourse.diagnosis import MISTAKES

    cells = {points.nbgrader_meta(c).get("grade_id"): c for a in COURSE
             for c in samples.read_notebook(ROOT / "source" / a / f"{a}.ipynb").cells}
    for grade_id, planted in classic_mistakes.PLANTED.items():
        assert points.is_solution_code(cells[grade_id]) and planted.tag in MISTAKES, grade_id


def test_a_planted_answer_needs_exactly_one_variant_of_its_name():
    from convcourse.diagnosis import Variant

    assert classic_mistakes._variant([Variant(1, "a", tag="t"), Variant(1, "b", tag="t"), Variant(2, "c", tag="u")],
                                     "t") == 1
    for variants in ([], [Variant(1, "a", tag="t"), Variant(2, "b", tag="t")]):
        with pytest.raises(ValueError, match=r"different answers named \[t\]"):
            classic_mistakes._variant(variants, "t")


def test_the_mistakes_case_of_the_tiny_course_is_its_source(ctx):
    assert samples.build(ctx, "mistakes").expected == points.total_points(ctx.source)  # no cell to plant a mistake in
    assert "mistakes" not in samples.DEMO_CASES + samples.HOSTILE_CASES


@pytest.mark.parametrize("assignment", COURSE)
def test_planted_mistakes_fail_their_tests_with_their_names(assignment):
    """Each planted cell, run with the first test cell that reads it, fails with its mistake's name (in-process)."""
    import numpy as np
    import torch
    from torch import nn

    from convcourse import checks, diagnosis

    ctx = samples.context(ROOT, assignment)
    planted_nb, planted = classic_mistakes.plant(ctx.source)
    assert planted and set(planted) <= {points.nbgrader_meta(c).get("grade_id") for c in ctx.source.cells}
    failing = {grade_id for _, grade_id, _ in points.tests(ctx.source)} - points.passing_tests(ctx.source, set(planted))
    expected = samples.build(ctx, "mistakes").expected
    assert 0 < expected < points.total_points(ctx.source)
    cells = [c for c in planted_nb.cells if c.cell_type == "code"]
    for grade_id, tag in planted.items():
        cell = next(c for c in cells if points.nbgrader_meta(c).get("grade_id") == grade_id)
        test_id = classic_mistakes.tested_by(planted_nb, grade_id)
        test = next(c for c in cells if points.nbgrader_meta(c).get("grade_id") == test_id)
        assert test_id in failing
        namespace = {"np": np, "torch": torch, "nn": nn, "checks": checks, "print": lambda *a: None}
        exec(cell.source, namespace)  # noqa: S102 - the course's own cell, with the planted slip
        source = "\n".join(line for line in test.source.splitlines() if not line.startswith(("import importlib", "checks =")))
        with pytest.raises(checks.CheckFailed) as failure:
            exec(source, namespace)  # noqa: S102 - the course's own test cell
        assert tag in diagnosis.names_in(str(failure.value)), str(failure.value)

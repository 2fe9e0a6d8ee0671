"""Deadlines and regrading for real: two `make grade` rounds on the tiny course, penalties, feedback, export, changes.

Round 1 grades four complete submissions whose timestamp.txt puts them an hour before the due date,
a minute after it, 2.5 days after it, and 2.5 days after it with a 3-day extension, under a policy of
10 % a day begun, at most 30 %. Then the instructor gives test_answer 3 points instead of 2 and the
2.5-days-late student an extension too; round 2, without --force, grades all four again for the
new points and prints whose score changed. ~40-60 s on 2 busy cores.
"""
from __future__ import annotations

import csv
import shutil

import nbformat
import pytest
from graded_course import configure
from test_grading import course_dir, run_grade
from tiny_course import ASSIGNMENT, make_course

from convcourse.grading import sandbox
from convcourse.grading.course.deadlines import late_penalties
from convcourse.grading.course.report import autograded_scores
from convcourse.grading.demo import samples

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not sandbox.sandbox_status().available,
                                                  reason=f"sandbox unavailable: {sandbox.sandbox_status().reason}")]
HANDED_IN = {"early": "2026-12-01 22:59:00 UTC", "minute": "2026-12-02 00:00:00 UTC",
             "days": "2026-12-04 11:59:00 UTC", "extended": "2026-12-04 11:59:00 UTC"}


@pytest.fixture(scope="module")
def rounds():
    folder = course_dir("convcourse-deadlines-")
    try:
        root = make_course(folder / "course")
        configure(root, 'c.LatePenalty.penalty_method = "per_day"\nc.LatePenalty.per_day = 0.1\nc.LatePenalty.cap = 0.3\n'
                        'c.Deadlines.due = {"tiny": "2026-12-01 23:59 UTC"}')
        (root / "extensions.csv").write_text("student,assignment,extension\nextended,tiny,3\n")
        full = samples.build(samples.context(root, ASSIGNMENT), "full")
        for student, when in HANDED_IN.items():
            (full.write(root, student) / "timestamp.txt").write_text(when + "\n")
        first = run_grade(root, "--jobs", "2")
        state = {"scores": autograded_scores(root), "penalties": late_penalties(root),
                 "feedback": (root / "feedback" / "minute" / ASSIGNMENT / f"{ASSIGNMENT}.html").read_text()}
        path = root / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
        notebook = nbformat.read(path, as_version=4)
        next(c for c in notebook.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "test_answer"
             ).metadata["nbgrader"]["points"] = 3
        nbformat.write(notebook, path)
        (root / "extensions.csv").write_text("student,assignment,extension\nextended,tiny,3\ndays,tiny,3\n")
        second = run_grade(root, "--jobs", "2")
        yield root, first.stdout, state, second.stdout
    finally:
        shutil.rmtree(folder)


def test_penalties_follow_the_timestamps_the_due_date_and_the_extension(rounds):
    _, output, state, _ = rounds
    assert state["scores"] == dict.fromkeys([(s, ASSIGNMENT) for s in HANDED_IN], (4.0, 4.0)), output
    # a minute late: a day begun, 10 % of 4 points; 2.5 days late: 30 %, the cap; with 3 days more: on time
    assert state["penalties"] == pytest.approx({("minute", ASSIGNMENT): 0.4, ("days", ASSIGNMENT): 1.2})


def test_the_penalty_shows_in_the_table_feedback_and_grades_csv(rounds):
    root, output, state, _ = rounds
    lines = {line.split()[0]: line for line in output.splitlines() if line.split()[:1] and line.split()[0] in HANDED_IN}
    assert lines["minute"].endswith("4 / 4 late -0.4") and lines["early"].endswith(" 4 / 4"), output
    assert "Late submission penalty" in state["feedback"]
    rows = {row["student_id"]: row for row in csv.DictReader((root / "grades.csv").open())}  # nbgrader's own export
    assert float(rows["days"]["late_submission_penalty"]) == pytest.approx(0.0)  # after round 2: extended too


def test_changed_points_regrade_without_force_and_name_each_change(rounds):
    root, _, _, output = rounds
    assert "grading 4 submission(s)" in output and "4 of them graded again because the tests or points of tiny" in output
    for student in ("early", "minute", "extended"):
        assert f"changed: {student}/tiny: 4 / 4 -> 5 / 5" in output, output
    assert autograded_scores(root)[("days", ASSIGNMENT)] == (5.0, 5.0)
    # the new points and the new extension: 10 % of 5 for 'minute', nothing for 'days' now
    assert late_penalties(root) == pytest.approx({("minute", ASSIGNMENT): 0.5})


def test_the_long_export_carries_the_penalty(rounds):
    from convcourse.grading.__main__ import main

    root = rounds[0]
    assert main(["--root", str(root), "export", "--format", "long"]) == 0
    rows = [r for r in csv.DictReader((root / "exports" / "grades-long.csv").open()) if r["student"] == "minute"]
    assert [r["question"] for r in rows] == ["test_square", "test_answer", "test_square_hidden", "why"]
    assert sum(float(r["late_penalty"]) for r in rows) == pytest.approx(0.5)
    assert rows[-1]["score"] == "0"  # the written answer left as released: nbgrader scores it 0 without a grader

"""`python -m convcourse.grading export`: grades per question for Canvas, Moodle and as a long table, from a gradebook.

The gradebooks are written through nbgrader's API (tests/graded_course.py), nothing is graded: ~10 s,
most of it nbgrader creating the tiny course's gradebook once. The Canvas layout is checked against
the rules of Canvas's importer (canvas-lms app/models/gradebook_importer.rb), the Moodle layout
against its grade import (docs.moodle.org, "Grade import": an identifier column, a column per item).
"""
from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path

import pytest
from graded_course import DUE, FULL, configure, copy_course, submit

from convcourse.grading.__main__ import main
from convcourse.grading.course import export, platforms

QUESTIONS = ["test_square", "test_answer", "test_square_hidden", "why"]  # the tiny notebook's graded cells, in order


@pytest.fixture
def course(tiny_course_built, tmp_path):
    root = copy_course(tiny_course_built, tmp_path / "course")
    configure(root, 'c.LatePenalty.penalty_method = "per_day"\nc.LatePenalty.per_day = 0.25\n'
                    'c.Deadlines.due = {"tiny": "2026-12-01 23:59 UTC"}')
    submit(root, "alice", FULL, manual={"why": 0.5}, first_name="Alice", last_name="Liddell", email="alice@uni.example",
           timestamp=DUE - dt.timedelta(hours=1))
    # 'why' not graded by hand yet; a day and a minute late: two days begun, half of the 1 point
    submit(root, "bob", {"test_square": 1.0, "test_answer": 0.0}, timestamp=DUE + dt.timedelta(days=1, minutes=1))
    return root


def read(path: Path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))


def run(root: Path, *args: str) -> int:
    return main(["--root", str(root), "export", *args])


def test_long_format_has_a_row_per_graded_cell_with_manual_grades_and_the_penalty(course, capsys):
    assert run(course, "--format", "long") == 0
    rows = read(course / "exports" / "grades-long.csv")
    assert tuple(rows[0]) == export.LONG_HEADER
    by_key = {(r[0], r[3]): r for r in rows[1:]}
    assert [r[3] for r in rows[1:] if r[0] == "alice"] == QUESTIONS
    assert by_key[("alice", "why")][4:6] == ["0.5", "1"]  # the manual grade
    assert by_key[("bob", "why")][4] == ""  # still to grade by hand: not a zero
    assert by_key[("bob", "test_answer")][4:7] == ["0", "2", "0"]
    assert by_key[("bob", "test_square")][4:7] == ["1", "1", "0.5"]  # bob's only point carries the penalty
    assert "1 answer(s) still wait for a manual grade" in capsys.readouterr().out


def test_penalty_shares_add_up_to_the_notebook_penalty(course):
    submit(course, "carol", FULL, manual={"why": 1.0}, penalty=1.5)
    rows = [r for r in export.question_rows(course) if r.student == "carol"]
    assert sum(r.late_penalty for r in rows) == pytest.approx(1.5)
    assert sum(r.points for r in rows) == pytest.approx(5.0 - 1.5)
    assert rows[1].late_penalty == pytest.approx(1.5 * 2 / 5)  # test_answer: 2 of the 5 points


def canvas_student_columns(header: list[str]) -> int:
    """How many leading columns Canvas's importer reads as the student's (its header rules), or fail."""
    assert "Student" in header[0] and "ID" in header[1]
    assert header[2] == "SIS User ID" and header[3] == "SIS Login ID"
    assert "Section" in header[4]
    return 5


def test_canvas_layout_is_what_its_importer_reads(course):
    assert run(course, "--format", "canvas") == 0
    rows = read(course / "exports" / "grades-canvas.csv")
    header, points, *students = rows
    first = canvas_student_columns(header)
    assert header[:first] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
    assert header[first:first + 4] == [f"tiny: {q}" for q in QUESTIONS]
    totals = header[first + 4:]
    assert totals == ["tiny Final Points", "Final Points"]
    assert all(any(word in t for word in platforms.CANVAS_READ_ONLY) for t in totals)  # skipped on import
    assert not any(word in h for h in header[first:first + 4] for word in platforms.CANVAS_READ_ONLY)
    assert "Points Possible" in points[0] and points[first:] == ["1", "2", "1", "1", "(read only)", "(read only)"]
    alice, bob = students
    assert alice[:first] == ["Liddell, Alice", "", "", "alice", ""]  # no roster: the course's id as SIS Login ID
    assert alice[first:] == ["1", "2", "1", "0.5", "4.5", "4.5"]
    assert bob[first:] == ["0.5", "0", "0", "", "0.5", "0.5"]  # after the late penalty; 'why' left for Canvas


def test_moodle_layout_with_a_roster_of_emails(course, tmp_path):
    roster = tmp_path / "moodle.csv"
    roster.write_text("student,Email address,ID number\nalice,alice@uni.example,1001\nbob,bob@uni.example,1002\n"
                      "dora,dora@uni.example,1003\n")
    assert run(course, "--format", "moodle", "--roster", str(roster), "--out", str(tmp_path / "m.csv")) == 0
    header, *students = read(tmp_path / "m.csv")
    assert header == ["First name", "Last name", "ID number", "Email address", "Username",
                      *[f"tiny: {q}" for q in QUESTIONS], "tiny total", "total"]
    table = {row[3]: row for row in students}
    assert table["alice@uni.example"][:5] == ["Alice", "Liddell", "1001", "alice@uni.example", ""]
    assert table["bob@uni.example"][5:] == ["0.5", "0", "0", "", "0.5", "0.5"]
    assert table["dora@uni.example"][5:] == ["0"] * 6  # on the roster, nothing handed in


def test_a_canvas_export_serves_as_the_roster(course, tmp_path):
    roster = tmp_path / "canvas-export.csv"
    roster.write_text("Student,ID,SIS User ID,SIS Login ID,Section,Homework 1 (301)\n"
                      "    Points Possible,,,,,10\n"
                      '"Liddell, Alice",4411,S-17,alice,Group A,9\n"Builder, Bob",4412,S-18,bob,Group B,7\n')
    assert run(course, "--format", "canvas", "--roster", str(roster), "--roster-key", "SIS Login ID") == 0
    students = read(course / "exports" / "grades-canvas.csv")[2:]
    assert [row[:5] for row in students] == [["Liddell, Alice", "4411", "S-17", "alice", "Group A"],
                                             ["Builder, Bob", "4412", "S-18", "bob", "Group B"]]


def test_the_course_roster_file_is_used_by_default(course):
    (course / "roster.csv").write_text("student,SIS User ID\nalice,S-17\nbob,S-18\n")
    assert run(course, "--format", "canvas") == 0
    assert [row[2] for row in read(course / "exports" / "grades-canvas.csv")[2:]] == ["S-17", "S-18"]


@pytest.mark.parametrize("text, key, expected", [
    ("student,SIS User ID\nalice,S-17\n", "student", "1 graded student(s) are not in it (bob)"),
    ("login,SIS User ID\nalice,S-17\nbob,S-18\n", "student", "has no column 'student' (its columns: login, SIS User ID)"),
    ("student,name\nalice,A\nbob,B\n", "student", "needs one of 'ID', 'SIS User ID', 'SIS Login ID'"),
    ("student,ID\nalice,1\nbob,2\nalice,3\n", "student", "has student 'alice' twice"),
])
def test_a_bad_roster_is_one_error_and_leaves_the_last_export_alone(course, tmp_path, capsys, text, key, expected):
    out = tmp_path / "grades.csv"
    out.write_text("the previous export\n")
    roster = tmp_path / "roster.csv"
    roster.write_text(text)
    assert run(course, "--format", "canvas", "--roster", str(roster), "--roster-key", key, "--out", str(out)) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("error: ") == 1 and expected in err, err
    assert out.read_text() == "the previous export\n" and list(tmp_path.glob(".grades.csv.*")) == []


def test_an_unknown_format_or_assignment_is_refused(course, capsys):
    with pytest.raises(SystemExit) as stopped:
        run(course, "--format", "blackboard")
    assert stopped.value.code == 2 and "invalid choice: 'blackboard'" in capsys.readouterr().err
    assert run(course, "--format", "long", "--assignment", "nope") == 2
    assert "error: no assignment nope in the gradebook (it has: tiny)" in capsys.readouterr().err
    assert not (course / "exports").exists()


def test_an_export_interrupted_midway_leaves_nothing_half_written(tmp_path):
    out = tmp_path / "grades.csv"
    out.write_text("the previous export\n")

    def failing_rows():
        yield ["a", "row"]
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        export.write_csv(out, ["x", "y"], failing_rows())
    assert out.read_text() == "the previous export\n" and list(tmp_path.iterdir()) == [out]
    export.write_csv(out, ["x", "y"], [["1", "2"]])
    assert read(out) == [["x", "y"], ["1", "2"]] and (out.stat().st_mode & 0o777) == 0o600  # grades: private


def test_nothing_to_export_before_any_submission(tiny_course_built, tmp_path, capsys):
    root = copy_course(tiny_course_built, tmp_path / "course")
    assert run(root, "--format", "moodle") == 2
    assert "error: nothing to export: the gradebook has no submission yet" in capsys.readouterr().err


def test_the_penalty_shows_in_the_exports_as_the_late_policy_sets_it(course, capsys):
    configure(course, 'c.LatePenalty.penalty_method = "zero"\nc.Deadlines.due = {"tiny": "2026-12-01 12:00 UTC"}')
    submit(course, "carol", FULL, timestamp=dt.datetime(2026, 12, 1, 12, 5))  # 5 minutes late
    assert run(course, "--format", "long") == 0
    assert "changed: carol/tiny: late penalty 0 -> 4 points" in capsys.readouterr().out
    carol = [r for r in read(course / "exports" / "grades-long.csv") if r[0] == "carol"]
    assert [r[6] for r in carol] == ["1", "2", "1", "0"] and [r[4] for r in carol] == ["1", "2", "1", ""]


def test_the_autograded_scores_of_the_grade_table_count_test_cells_only(course):
    from convcourse.grading.course.report import autograded_scores

    submit(course, "carol", {}, manual={"why": 1.0})  # a blank hand-in with a graded answer: 0 of the 4 test points
    assert autograded_scores(course) == {("alice", "tiny"): (4.0, 4.0), ("bob", "tiny"): (1.0, 4.0),
                                         ("carol", "tiny"): (0.0, 4.0)}
    assert autograded_scores(course.parent / "no-course") == {}

"""Due dates, extensions and late penalties: the policy, the files that set them, and the penalties in the gradebook.

Submissions are recorded through nbgrader's API with the timestamps nbgrader would read from their
timestamp.txt (tests/graded_course.py): before the due date, just after it, days after it, with and
without an extension. Nothing is graded here (~15 s); tests/test_grades_e2e.py grades for real.
"""
from __future__ import annotations

import datetime as dt
import os

import pytest
from graded_course import DUE, FULL, configure, copy_course, submit
from tiny_course import ASSIGNMENT

from convcourse.grading.course import deadlines
from convcourse.grading.course.deadlines import DeadlineError, apply_penalties, parse_time, read_extensions
from convcourse.grading.course.report import table
from convcourse.grading.nbgrader.late_penalty import DAY, LatePenalty, late_share

PER_DAY = 'c.LatePenalty.penalty_method = "per_day"\nc.LatePenalty.per_day = 0.1\nc.LatePenalty.cap = 0.3\n'
DUE_TEXT = 'c.Deadlines.due = {"tiny": "2026-12-01 23:59 UTC"}'


@pytest.mark.parametrize("method, seconds, expected", [
    ("per_day", 0, 0.0),  # on time
    ("per_day", 1, 0.1),  # a second late: a day begun
    ("per_day", DAY, 0.1),
    ("per_day", DAY + 1, 0.2),
    ("per_day", 2.5 * DAY, 0.3),
    ("per_day", 9 * DAY, 0.3),  # the cap
    ("zero", 1, 1.0),
    ("none", 9 * DAY, 0.0),
])
def test_late_share(method, seconds, expected):
    assert late_share(method, seconds, per_day=0.1, cap=0.3) == pytest.approx(expected)


def test_a_grace_period_counts_as_on_time():
    assert late_share("zero", 299, grace_minutes=5) == 0.0 and late_share("zero", 301, grace_minutes=5) == 1.0


def test_the_plugin_is_what_nbgrader_calls_and_refuses_a_share_above_one():
    from traitlets import TraitError

    plugin = LatePenalty(penalty_method="per_day", per_day=0.25, cap=0.5)
    assert plugin.late_submission_penalty("alice", 4.0, 3 * DAY) == pytest.approx(2.0)
    with pytest.raises(TraitError, match="between 0 and 1"):
        LatePenalty(per_day=1.5)


@pytest.mark.parametrize("text, utc", [
    ("2026-12-01 23:59 Europe/Berlin", dt.datetime(2026, 12, 1, 22, 59)),
    ("2026-07-01 23:59 Europe/Berlin", dt.datetime(2026, 7, 1, 21, 59)),  # summer time
    ("2026-12-01T23:59+01:00", dt.datetime(2026, 12, 1, 22, 59)),
    ("2026-12-01 23:59 +01:00", dt.datetime(2026, 12, 1, 22, 59)),
    ("2026-12-01T23:59Z", dt.datetime(2026, 12, 1, 23, 59)),
    ("2026-12-01 23:59 UTC", dt.datetime(2026, 12, 1, 23, 59)),
])
def test_times_are_read_with_their_zone(text, utc):
    assert parse_time(text, "here") == utc


@pytest.mark.parametrize("text, expected", [
    ("2026-12-01 23:59", "has no time zone"),
    ("2026-12-01 23:59 Mars/Olympus", "cannot read"),
    ("next friday", "cannot read"),
])
def test_a_time_without_a_usable_zone_is_refused(text, expected):
    with pytest.raises(DeadlineError, match=expected):
        parse_time(text, "here")


def test_extensions_in_days_or_as_the_students_own_due_date(tmp_path):
    path = tmp_path / "extensions.csv"
    path.write_text("student,assignment,extension\nalice,tiny,2\nbob,tiny,0.5\n\ncarol,tiny,2026-12-03 23:59 UTC\n")
    assert read_extensions(path, {"tiny": DUE}) == {("alice", "tiny"): dt.timedelta(days=2),
                                                   ("bob", "tiny"): dt.timedelta(hours=12),
                                                   ("carol", "tiny"): dt.timedelta(days=2)}


@pytest.mark.parametrize("text, expected", [
    ("name,assignment,days\nalice,tiny,2\n", "no column student, extension"),
    ("student,assignment,extension\nalice,tiny,soon\n", "line 2: 'soon' is neither a number of days nor"),
    ("student,assignment,extension\nalice,tiny,-1\n", "line 2: an extension of -1 days"),
    ("student,assignment,extension\nalice,tiny,2\nalice,tiny,3\n", "line 3: a second extension for alice/tiny"),
    ("student,assignment,extension\nalice,huge,2\n", "line 2: no assignment 'huge' in the course"),
    ("student,assignment,extension\nalice,tiny,\n", "line 2: student, assignment and extension must all be given"),
    ("student,assignment,extension\nalice,tiny,2026-11-30 12:00 UTC\n", "is not after the assignment's due date"),
])
def test_a_malformed_extensions_file_says_where(tmp_path, text, expected):
    path = tmp_path / "extensions.csv"
    path.write_text(text)
    with pytest.raises(DeadlineError, match=expected):
        read_extensions(path, {"tiny": DUE})


def test_a_date_extension_needs_a_due_date(tmp_path):
    path = tmp_path / "extensions.csv"
    path.write_text("student,assignment,extension\nalice,tiny,2026-12-03 23:59 UTC\n")
    with pytest.raises(DeadlineError, match="the assignment has no due date to extend"):
        read_extensions(path, {"tiny": None})


# ---------------------------------------------------------------------------- in the gradebook


@pytest.fixture
def course(tiny_course_built, tmp_path):
    """Four full submissions: an hour early, a minute late, 2.5 days late, and 2.5 days late with an extension."""
    root = copy_course(tiny_course_built, tmp_path / "course")
    configure(root, PER_DAY + DUE_TEXT)
    for student, late in (("early", -3600), ("minute", 60), ("days", 2.5 * DAY), ("extended", 2.5 * DAY)):
        submit(root, student, FULL, timestamp=DUE + dt.timedelta(seconds=late))
    (root / "extensions.csv").write_text("student,assignment,extension\nextended,tiny,2\n")
    return root


def penalties(root) -> dict[str, float]:
    return {student: penalty for (student, _), penalty in deadlines.late_penalties(root).items()}


def test_penalties_before_just_after_and_days_after_the_due_date_with_and_without_an_extension(course):
    changes = apply_penalties(course)
    # 4 points each: a minute late is a day begun (10 %), 2.5 days three (30 %, the cap); the extension leaves half a day
    assert penalties(course) == pytest.approx({"minute": 0.4, "days": 1.2, "extended": 0.4})
    assert sorted(c.line() for c in changes) == ["days/tiny: late penalty 0 -> 1.2 points",
                                                 "extended/tiny: late penalty 0 -> 0.4 points",
                                                 "minute/tiny: late penalty 0 -> 0.4 points"]
    assert apply_penalties(course) == []  # nothing new: nothing changed


def test_a_new_due_date_or_extension_re_applies_the_penalties(course):
    apply_penalties(course)
    configure(course, 'c.Deadlines.due = {"tiny": "2026-12-03 00:00 UTC"}')  # a day later for everyone
    (course / "extensions.csv").write_text("student,assignment,extension\nminute,tiny,1\n")
    changes = {c.student: (round(c.before, 6), round(c.after, 6)) for c in apply_penalties(course)}
    # now 1.5 days late (two days begun) and the extension has gone to 'minute', who is on time with it
    assert changes == {"minute": (0.4, 0.0), "days": (1.2, 0.8), "extended": (0.4, 0.8)}
    assert penalties(course) == pytest.approx({"days": 0.8, "extended": 0.8})


def test_a_manual_grade_given_later_is_penalised_too(course):
    apply_penalties(course)
    submit(course, "days", FULL, manual={"why": 1.0}, timestamp=DUE + dt.timedelta(days=2.5))
    apply_penalties(course)
    assert penalties(course)["days"] == pytest.approx(0.3 * 5)


def test_the_zero_policy_and_an_unknown_policy(course):
    configure(course, 'c.LatePenalty.penalty_method = "zero"')
    apply_penalties(course)
    assert penalties(course) == pytest.approx({"minute": 4.0, "days": 4.0, "extended": 4.0})
    configure(course, 'c.LatePenalty.penalty_method = "halve"')
    with pytest.raises(DeadlineError, match="the late policy"):
        apply_penalties(course)


def test_a_due_date_for_an_assignment_the_course_does_not_have(course):
    configure(course, 'c.Deadlines.due = {"tiny": "2026-12-01 23:59 UTC", "huge": "2026-12-01 23:59 UTC"}')
    with pytest.raises(DeadlineError, match="names no assignment of the course: huge"):
        apply_penalties(course)


def test_without_an_extensions_file_nbgraders_own_extensions_stay(course):
    from nbgrader.api import Gradebook

    (course / "extensions.csv").unlink()
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        gradebook.grant_extension(ASSIGNMENT, "days", days=3)
    apply_penalties(course)
    assert "days" not in penalties(course)


def test_the_grade_table_shows_the_penalty(course):
    apply_penalties(course)
    text = table({("days", "tiny"): (4.0, 4.0), ("early", "tiny"): (4.0, 4.0)}, ["tiny"], deadlines.late_penalties(course))
    assert "4 / 4 late -1.2" in text.splitlines()[1] and text.splitlines()[2].endswith(" 4 / 4")


def test_a_round_stops_at_a_malformed_extensions_file_before_grading(course, capsys, monkeypatch):
    from convcourse.grading import sandbox
    from convcourse.grading.__main__ import main

    monkeypatch.setattr(sandbox, "sandbox_status", lambda: sandbox.Status(False, "not needed: nothing is graded"))
    monkeypatch.setenv("CONVCOURSE_DATASET", "digits")
    for name in ("OMP_NUM_THREADS", "PATH"):  # what a round sets in this process: back as it was afterwards
        monkeypatch.setenv(name, os.environ.get(name, ""))
        if name != "PATH":
            monkeypatch.delenv(name)
    (course / "extensions.csv").write_text("student,assignment,extension\ndays,tiny,next week\n")
    assert main(["--root", str(course), "grade", "--allow-unsandboxed", "--jobs", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("error: ") == 1 and "extensions.csv, line 2: 'next week' is neither a number of days" in err, err
    assert not (course / "autograded" / ".convcourse-graded.json").exists()  # no round ran

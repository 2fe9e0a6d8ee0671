"""Synthetic grades in a tiny course's gradebook, written through nbgrader's API: export and deadline tests, no grading.

The tiny course (tests/tiny_course.py) has three test cells (test_square 1, test_answer 2,
test_square_hidden 1) and a written answer ``why`` (1), all in notebook ``tiny``.
"""
from __future__ import annotations

import datetime as dt
import shutil
import warnings
from pathlib import Path

from nbgrader.api import Gradebook
from tiny_course import ASSIGNMENT

DUE = dt.datetime(2026, 12, 1, 23, 59)  # naive UTC, as nbgrader stores it
FULL = {"test_square": 1.0, "test_answer": 2.0, "test_square_hidden": 1.0}


def copy_course(built: Path, folder: Path) -> Path:
    """A fresh copy of a built course (its nbgrader_config.py finds its root from where it lies)."""
    return Path(shutil.copytree(built, folder))


def submit(root: Path, student: str, auto: dict[str, float], *, manual: dict[str, float] | None = None,
           timestamp: dt.datetime | None = None, penalty: float | None = None, **names: str) -> None:
    """Record a graded submission: autograder scores of test cells, manual grades, when it was handed in."""
    with warnings.catch_warnings(), Gradebook(f"sqlite:///{Path(root) / 'gradebook.db'}") as gradebook:
        warnings.simplefilter("ignore")  # nbgrader's own session handling: harmless SQLAlchemy warnings
        gradebook.update_or_create_student(student, **names)
        submission = gradebook.update_or_create_submission(ASSIGNMENT, student, timestamp=timestamp)
        notebook = submission.notebooks[0]
        for grade in notebook.grades:
            if grade.cell_type == "code":
                grade.auto_score, grade.needs_manual_grade = auto.get(grade.name, 0.0), False
            else:
                grade.auto_score, grade.needs_manual_grade = None, True
            if manual and grade.name in manual:
                grade.manual_score, grade.needs_manual_grade = manual[grade.name], False
        notebook.late_submission_penalty = penalty
        gradebook.db.commit()


def configure(root: Path, text: str) -> None:
    """Append lines to the course's nbgrader_config.py (later settings win)."""
    path = Path(root) / "nbgrader_config.py"
    path.write_text(path.read_text() + "\n" + text + "\n")

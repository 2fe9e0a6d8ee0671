"""The course's nbgrader configuration and gradebook: nbgrader's API on a course, and merging one job's grades in.

Every gradebook write of a grade round happens here, in the main process, one job at a time, into
the gradebook the round opens once (:func:`opened`).
"""
from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import sys
import warnings
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Mapping

GRADEBOOK = "gradebook.db"  # in the course folder, where nbgrader_config.py's db_url points


def load_config(course_root: Path):
    """The traitlets config of a course's nbgrader_config.py, as nbgrader itself would load it."""
    from traitlets.config.loader import PyFileConfigLoader

    return PyFileConfigLoader("nbgrader_config.py", path=str(course_root)).load_config()


def with_venv_on_path(environ: Mapping[str, str]) -> dict[str, str]:
    """A copy of ``environ`` whose PATH has this Python's bin folder (nbgrader runs `alembic` from PATH)."""
    bin_dir = str(Path(sys.executable).parent)
    path = environ.get("PATH", "")
    return {**environ, "PATH": path if bin_dir in path.split(os.pathsep) else f"{bin_dir}{os.pathsep}{path}"}


def venv_on_path() -> None:
    """This process's PATH gets this Python's bin folder (for nbgrader's gradebook creation)."""
    os.environ["PATH"] = with_venv_on_path(os.environ)["PATH"]


def nbgrader_api(config, **coursedir: str):
    """nbgrader's Python API with a course's loaded config (:func:`load_config`; CourseDirectory overrides)."""
    venv_on_path()
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory

    course = CourseDirectory(config=config)
    for name, value in coursedir.items():
        setattr(course, name, value)
    return NbGraderAPI(course, config=config)


def assignment_rows(db: Path, name: str) -> str:
    """SHA-256 of an assignment's rows in a gradebook (its notebooks and cells; '' when it has none or no gradebook)."""
    if not Path(db).is_file():
        return ""
    query = """
        SELECT a.name, a.duedate, a.course_id, n.name, n.kernelspec, b.name, b.type,
               g.max_score, g.cell_type, t.max_score, t.cell_type, s.id IS NOT NULL
        FROM assignment a JOIN notebook n ON n.assignment_id = a.id
        LEFT JOIN base_cell b ON b.notebook_id = n.id LEFT JOIN grade_cells g ON g.id = b.id
        LEFT JOIN task_cells t ON t.id = b.id LEFT JOIN solution_cells s ON s.id = b.id
        WHERE a.name = ?
        UNION ALL
        SELECT a.name, NULL, NULL, n.name, NULL, c.name, c.cell_type, c.locked, c.checksum, NULL, NULL, NULL
        FROM assignment a JOIN notebook n ON n.assignment_id = a.id JOIN source_cell c ON c.notebook_id = n.id
        WHERE a.name = ?"""
    try:
        with closing(sqlite3.connect(f"{Path(db).resolve().as_uri()}?mode=ro", uri=True)) as connection:
            rows = sorted(map(repr, connection.execute(query, (name, name))))
    except sqlite3.Error:
        return ""  # no tables yet, or not a gradebook nbgrader can read either: sync
    return hashlib.sha256("\n".join(rows).encode()).hexdigest() if rows else ""


@contextmanager
def opened(gradebook: Path):
    """nbgrader's Gradebook on ``gradebook``, open for as long as a round merges into it.

    One engine for the round: SQLAlchemy compiles nbgrader's ORM statements once per engine, ~0.3 s
    of every merge when each opened the gradebook anew.
    """
    from nbgrader.api import Gradebook

    with _quiet_sqlalchemy(), Gradebook(f"sqlite:///{gradebook}") as live:
        yield live


def merge(live, course_root: Path, workdir: Path, student: str, assignment: str) -> tuple[float, float] | None:
    """Copy the scores of one submission graded in the scratch course ``workdir`` into the course: the gradebook
    ``live`` (:func:`opened`), autograded and feedback folders; return the submission's autograded (score,
    maximum), None if it has none.

    When nbgrader refused the submission before recording it (no notebook at all), it is recorded
    with zero points, the way nbgrader scores a notebook missing from a submission.
    """
    timestamp, notebooks = job_scores(workdir / GRADEBOOK, student, assignment)
    live.update_or_create_student(student)
    recorded = live.update_or_create_submission(assignment, student, timestamp=timestamp)
    if notebooks is None:
        notebooks = {nb.name: ({g.name: (0.0, False) for g in nb.grades}, {}, 0.0) for nb in recorded.notebooks}
    for name, (grades, comments, penalty) in notebooks.items():
        for grade_id, (auto_score, needs_manual) in grades.items():
            grade = live.find_grade(grade_id, name, assignment, student)
            grade.auto_score, grade.needs_manual_grade = auto_score, needs_manual
        for comment_id, text in comments.items():
            live.find_comment(comment_id, name, assignment, student).auto_comment = text
        live.find_submission_notebook(name, assignment, student).late_submission_penalty = penalty
    live.db.commit()
    score = autograded_points(live.find_submission(assignment, student)) if notebooks else None
    for folder in ("autograded", "feedback"):  # feedback the job could not make is left to make: the old is stale
        _replace(workdir / folder / student / assignment, Path(course_root) / folder / student / assignment)
    return score


# A job's one submission in nbgrader's tables: its notebooks (n, sn), and of a grade or comment (g), its cell (b).
_NOTEBOOKS = """FROM submitted_notebook sn JOIN notebook n ON sn.notebook_id = n.id
    JOIN submitted_assignment sa ON sn.assignment_id = sa.id JOIN assignment a ON sa.assignment_id = a.id
    WHERE a.name = ? AND sa.student_id = ?"""
_CELLS = "JOIN base_cell b ON g.cell_id = b.id JOIN submitted_notebook sn ON g.notebook_id = sn.id " + \
    _NOTEBOOKS.removeprefix("FROM submitted_notebook sn ")


def job_scores(db: Path, student: str, assignment: str) -> tuple[str | None, dict | None]:
    """What a job's autograde recorded for its one submission: (timestamp, {notebook: (grades, comments,
    late penalty)}), or (None, None) when nbgrader recorded nothing.

    Read with SQL from nbgrader's tables, not through its ORM: a job's gradebook is a new file every
    time, and a new engine compiles every ORM statement again (~0.2 s a job).
    """
    ids = (assignment, student)
    with closing(sqlite3.connect(f"{Path(db).resolve().as_uri()}?mode=ro", uri=True)) as job:
        found = job.execute("SELECT sa.timestamp FROM submitted_assignment sa JOIN assignment a "
                            "ON sa.assignment_id = a.id WHERE a.name = ? AND sa.student_id = ?", ids).fetchone()
        if found is None:
            return None, None
        notebooks = {name: ({}, {}, penalty)
                     for name, penalty in job.execute(f"SELECT n.name, sn.late_submission_penalty {_NOTEBOOKS}", ids)}
        for notebook, cell, score, manual in job.execute(
                f"SELECT n.name, b.name, g.auto_score, g.needs_manual_grade FROM grade g {_CELLS}", ids):
            notebooks[notebook][0][cell] = (score, bool(manual))
        for notebook, cell, text in job.execute(f"SELECT n.name, b.name, g.auto_comment FROM comment g {_CELLS}", ids):
            notebooks[notebook][1][cell] = text
    return found[0], notebooks


def autograded_points(submission) -> tuple[float, float]:
    """Points of the autograded test cells of one submission (written answers are graded by hand)."""
    got = top = 0.0
    for notebook in submission.notebooks:
        solutions = {cell.name for cell in notebook.notebook.solution_cells}
        for grade in notebook.grades:
            if grade.cell.cell_type == "code" and grade.name not in solutions:
                got += grade.auto_score or 0.0
                top += grade.max_score
    return got, top


@contextmanager
def _quiet_sqlalchemy():
    """nbgrader's own session handling triggers harmless SQLAlchemy 'not in session' warnings; hide them."""
    from sqlalchemy.exc import SAWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SAWarning)
        yield


def _replace(source: Path, destination: Path) -> None:
    if destination.exists():
        shutil.rmtree(destination)
    if source.is_dir():
        shutil.copytree(source, destination, symlinks=True)

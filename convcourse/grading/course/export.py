"""Grades per question out of the gradebook: the long format, and the wide layouts Canvas and Moodle import.

Every number comes from nbgrader's gradebook as nbgrader computes it (a manual grade wins over the
autograder's, extra credit added; the late penalty of each submitted notebook as the late-submission
plugin set it). The long format has one :class:`QuestionScore` per graded cell of each submission;
the wide layouts (:mod:`convcourse.grading.course.platforms`) have one row per student and one column
per graded cell, plus totals.
"""
from __future__ import annotations

import csv
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import nbformat

from convcourse.grading.course.folder import GradingError, assignments
from convcourse.grading.course.gradebook import GRADEBOOK, read_rows

LONG_HEADER = ("student", "assignment", "notebook", "question", "score", "max_score", "late_penalty")
# nbgrader's Grade.score in SQL, for a row ``gr`` of its grade table: the manual score if there is one, else the
# autograder's, plus extra credit; else 0.
GRADE_SCORE = """CASE WHEN gr.manual_score IS NOT NULL THEN gr.manual_score + COALESCE(gr.extra_credit, 0)
                      WHEN gr.auto_score IS NOT NULL THEN gr.auto_score + COALESCE(gr.extra_credit, 0) ELSE 0 END"""


@dataclass(frozen=True)
class Question:
    """One graded cell of an assignment (nbgrader grade or task cell), with its points."""

    assignment: str
    notebook: str
    question: str  # the cell's nbgrader grade_id
    max_score: float


@dataclass(frozen=True)
class QuestionScore:
    """One row of the long format: one graded cell of one student's submission.

    ``score`` is nbgrader's score of the cell (manual grade if any, else the autograder's, plus extra
    credit); None while a manually graded answer still waits for its grade. ``late_penalty`` is this
    cell's share of its notebook's late penalty (nbgrader's ``late_submission_penalty``, shared out in
    proportion to the cells' scores), so ``score - late_penalty`` summed over a notebook is the
    notebook's score after the penalty, as nbgrader's own ``grades.csv`` counts it.
    """

    student: str
    assignment: str
    notebook: str
    question: str
    score: float | None
    max_score: float
    late_penalty: float

    @property
    def points(self) -> float | None:
        """What the cell counts for after the late penalty (None while it waits for a manual grade)."""
        return None if self.score is None else max(0.0, self.score - self.late_penalty)

    def csv_row(self) -> list[str]:
        """The row under :data:`LONG_HEADER` (an empty score: still to be graded by hand)."""
        return [self.student, self.assignment, self.notebook, self.question, number(self.score),
                number(self.max_score), number(self.late_penalty)]


class ExportError(GradingError):
    """The export cannot be written as asked (the message says why); nothing was written."""


def number(value: float | None) -> str:
    """A score as the platforms read it: up to 4 decimals, no trailing zeros, '' for none."""
    if value is None:
        return ""
    rounded = round(float(value), 4) + 0.0  # + 0.0: never '-0'
    return format(rounded, ".12g")


def _rows(root: Path, query: str) -> list[tuple]:
    """The rows of a read-only query on the course's gradebook (nbgrader's own tables)."""
    path = Path(root) / GRADEBOOK
    if not path.is_file():
        raise ExportError(f"no gradebook at {path}: grade first (python -m convcourse.grading grade)")
    return read_rows(path, query)


def questions(root: Path, names: Iterable[str] | None = None) -> list[Question]:
    """The graded cells of the course's assignments (all in the gradebook, or ``names``), in course and cell order."""
    found = _rows(root, """
        SELECT a.name, n.name, b.name, COALESCE(g.max_score, t.max_score)
        FROM base_cell b JOIN notebook n ON n.id = b.notebook_id JOIN assignment a ON a.id = n.assignment_id
        LEFT JOIN grade_cells g ON g.id = b.id LEFT JOIN task_cells t ON t.id = b.id
        WHERE g.id IS NOT NULL OR t.id IS NOT NULL""")
    cells = [Question(a, nb, q, float(top)) for a, nb, q, top in found]
    order = _assignment_order(root, {c.assignment for c in cells})
    if names is not None:
        wanted = list(dict.fromkeys(names))
        unknown = sorted(set(wanted) - set(order))
        if unknown:
            raise ExportError(f"no assignment {', '.join(unknown)} in the gradebook (it has: {', '.join(order) or 'none'})")
        order = [a for a in order if a in wanted]
    chosen = [c for c in cells if c.assignment in order]
    positions = {key: _cell_order(root, *key) for key in {(c.assignment, c.notebook) for c in chosen}}
    return sorted(chosen, key=lambda c: (order.index(c.assignment), c.notebook,
                                         positions[(c.assignment, c.notebook)].get(c.question, 1 << 30), c.question))


def _assignment_order(root: Path, names: set[str]) -> list[str]:
    """The course's order (:func:`assignments`), then any other gradebook assignment alphabetically."""
    known = [a for a in assignments(root) if a in names]
    return known + sorted(names - set(known))


def _cell_order(root: Path, assignment: str, notebook: str) -> dict[str, int]:
    """grade_id -> position in the source notebook ({} when source/ no longer has it)."""
    path = Path(root) / "source" / assignment / f"{notebook}.ipynb"
    if not path.is_file():
        return {}
    cells = nbformat.read(path, as_version=4).cells
    ids = [cell.metadata.get("nbgrader", {}).get("grade_id") for cell in cells]
    return {grade_id: i for i, grade_id in enumerate(ids) if grade_id}


def question_rows(root: Path, names: Iterable[str] | None = None) -> list[QuestionScore]:
    """Every graded cell of every submission in the gradebook (of ``names`` only, if given), in course order."""
    cells = questions(root, names)
    wanted = {(c.assignment, c.notebook, c.question): i for i, c in enumerate(cells)}
    found = _rows(root, f"""
        SELECT s.student_id, a.name, n.name, b.name, {GRADE_SCORE}, COALESCE(g.max_score, t.max_score, 0),
               gr.needs_manual_grade, COALESCE(sn.late_submission_penalty, 0)
        FROM grade gr JOIN submitted_notebook sn ON sn.id = gr.notebook_id
        JOIN submitted_assignment s ON s.id = sn.assignment_id JOIN assignment a ON a.id = s.assignment_id
        JOIN notebook n ON n.id = sn.notebook_id JOIN base_cell b ON b.id = gr.cell_id
        LEFT JOIN grade_cells g ON g.id = b.id LEFT JOIN task_cells t ON t.id = b.id""")
    found = [row for row in found if (row[1], row[2], row[3]) in wanted]
    totals: dict[tuple[str, str, str], float] = {}
    for student, assignment, notebook, _, score, *_ in found:
        totals[(student, assignment, notebook)] = totals.get((student, assignment, notebook), 0.0) + score
    rows = []
    for student, assignment, notebook, question, score, top, pending, penalty in found:
        total = totals[(student, assignment, notebook)]
        share = penalty * score / total if total > 0 else 0.0
        rows.append(QuestionScore(student, assignment, notebook, question, None if pending else float(score),
                                  float(top), share))
    return sorted(rows, key=lambda r: (r.student, wanted[(r.assignment, r.notebook, r.question)]))


def students(root: Path) -> dict[str, tuple[str, str, str]]:
    """{student id: (first name, last name, email)} of every student in the gradebook ('' where nbgrader has none)."""
    found = _rows(root, "SELECT id, first_name, last_name, email FROM student")
    return {sid: (first or "", last or "", email or "") for sid, first, last, email in found}


def handed_in(root: Path) -> list[str]:
    """The assignments with at least one submission in the gradebook, in course order: what an export covers by default."""
    found = {name for (name,) in _rows(root, """
        SELECT DISTINCT a.name FROM submitted_assignment s JOIN assignment a ON a.id = s.assignment_id""")}
    if not found:
        raise ExportError("nothing to export: the gradebook has no submission yet")
    return _assignment_order(root, found)


def write_long(root: Path, out: Path, names: Iterable[str] | None = None) -> tuple[Path, list[str]]:
    """The long format (:data:`LONG_HEADER`, a row per graded cell of each submission) to ``out``; and notes."""
    rows = question_rows(root, handed_in(root) if names is None else names)
    pending = sum(row.score is None for row in rows)
    notes = [f"{pending} answer(s) still wait for a manual grade (formgrader): their score is left empty"] if pending else []
    return write_csv(out, LONG_HEADER, (row.csv_row() for row in rows)), notes


def write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[str]]) -> Path:
    """Write a CSV file whole or not at all: into a temporary file beside ``path``, then renamed over it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)  # mode 0600: grades
    try:
        with os.fdopen(handle, "w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            writer.writerow(header)
            writer.writerows(rows)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path

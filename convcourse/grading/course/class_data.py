"""What the class report is made of, read from the gradebook and the autograded notebooks (never recomputed).

Scores, late penalties and timestamps come from nbgrader's gradebook. From each autograded notebook
come the solution cells a student left as released (nbgrader's own test: the cell's checksum equals
the released one's) and the stable names of the classic mistakes the test cells printed
(``convcourse.diagnosis.MISTAKES``, e.g. ``[flipped-kernel]``).
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from convcourse.diagnosis import names_in
from convcourse.grading.course.folder import GradingError, assignments
from convcourse.grading.course.gradebook import GRADEBOOK
from convcourse.grading.course.released_cells import titles


@dataclass
class Question:
    """One graded cell: a test (autograded) or a written answer (graded by hand)."""

    grade_id: str
    notebook: str
    title: str  # the heading of its section in the released notebook
    written: bool
    max_score: float
    scores: dict[str, float | None] = field(default_factory=dict)  # student -> score; None: waits for a manual grade


@dataclass
class Submission:
    """One student's submission of an assignment, as the gradebook has it."""

    student: str
    score: float
    max_score: float
    late_penalty: float
    timestamp: str


@dataclass
class AssignmentData:
    """Everything the report shows of one assignment."""

    name: str
    questions: list[Question]
    submissions: list[Submission]
    answers: dict[str, str]  # solution cell grade_id -> its section title
    blank: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))  # solution cell -> students
    mistakes: dict[tuple[str, str], set[str]] = field(default_factory=lambda: defaultdict(set))  # (test, name)
    unread: list[str] = field(default_factory=list)  # students whose autograded notebook could not be read


def read_class(root: Path) -> list[AssignmentData]:
    """Every assignment of the course at ``root`` with at least one graded submission; GradingError if none."""
    from nbgrader.api import Gradebook

    root = Path(root)
    if not (root / GRADEBOOK).is_file():
        raise GradingError(f"no gradebook at {root / GRADEBOOK}: grade the submissions first (make grade)")
    found = []
    with Gradebook(f"sqlite:///{root / GRADEBOOK}") as gradebook:
        known = {a.name for a in gradebook.assignments}
        for name in [a for a in assignments(root) if a in known]:
            data = _assignment(root, gradebook, name)
            if data.submissions:
                found.append(data)
    if not found:
        raise GradingError(f"the gradebook at {root / GRADEBOOK} holds no graded submission yet: run make grade first")
    return found


def _assignment(root: Path, gradebook, name: str) -> AssignmentData:
    from nbgrader.utils import compute_checksum

    assignment = gradebook.find_assignment(name)
    released = {}
    for notebook in assignment.notebooks:
        path = root / "release" / name / f"{notebook.name}.ipynb"
        released[notebook.name] = titles(nbformat.read(path, as_version=4)) if path.is_file() else {}
    questions, answers, checksums = [], {}, {}
    for notebook in assignment.notebooks:
        solutions = {cell.name for cell in notebook.solution_cells}
        named = released[notebook.name]
        for cell in notebook.grade_cells:
            questions.append(Question(cell.name, notebook.name, named.get(cell.name, ""), cell.name in solutions,
                                      float(cell.max_score)))
        for cell in notebook.source_cells:
            if cell.name in solutions:
                answers[cell.name], checksums[notebook.name, cell.name] = named.get(cell.name, ""), cell.checksum
    data = AssignmentData(name, questions, [], answers)
    by_id = {(q.notebook, q.grade_id): q for q in questions}
    for submission in gradebook.assignment_submissions(name):
        student = submission.student_id
        penalty = sum(nb.late_submission_penalty or 0.0 for nb in submission.notebooks)
        stamp = submission.timestamp.isoformat(sep=" ", timespec="minutes") if submission.timestamp else ""
        data.submissions.append(Submission(student, float(submission.score), float(submission.max_score), penalty, stamp))
        for notebook in submission.notebooks:
            for grade in notebook.grades:
                waiting = grade.score is None or (grade.needs_manual_grade and grade.manual_score is None)
                by_id[notebook.name, grade.name].scores[student] = None if waiting else float(grade.score)
            _read_notebook(root / "autograded" / student / name / f"{notebook.name}.ipynb", student, notebook.name,
                           checksums, compute_checksum, data)
    data.submissions.sort(key=lambda s: s.student)
    return data


def _read_notebook(path: Path, student: str, notebook: str, checksums: dict, compute_checksum,
                   data: AssignmentData) -> None:
    """Blank answers and named mistakes of one autograded notebook, added to ``data``."""
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception:  # noqa: BLE001 - missing (nbgrader refused it) or unreadable: the scores still count
        data.unread.append(student)
        return
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        grade_id = meta.get("grade_id")
        if (notebook, grade_id) in checksums and compute_checksum(cell) == checksums[notebook, grade_id]:
            data.blank[grade_id].add(student)
        if meta.get("grade") and not meta.get("solution") and cell.cell_type == "code":
            shown = "\n".join(_text(output) for output in cell.get("outputs", []))
            for name in names_in(shown):
                data.mistakes[grade_id, name].add(student)


def _text(output) -> str:
    """What a student sees of one output: an error's name, message and traceback, or the text of a stream."""
    if output.get("output_type") == "error":
        return "\n".join([output.get("ename", ""), output.get("evalue", ""), *output.get("traceback", [])])
    return output.get("text", "") if output.get("output_type") == "stream" else ""

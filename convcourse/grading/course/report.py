"""What a grade round leaves behind: feedback HTML, grades.csv, and the autograded score table.

Everything here reads or converts through nbgrader itself (its API, its CSV export plugin, its
gradebook), with the course's nbgrader_config.py as loaded once for the round (:class:`Course`).
"""
from __future__ import annotations

import sys
from pathlib import Path

from convcourse.grading.course.folder import Course
from convcourse.grading.course.gradebook import GRADEBOOK, autograded_points


def feedback(course: Course, pairs: list[tuple[str, str]]) -> None:
    """nbgrader generate_feedback for each (student, assignment) just graded."""
    if not pairs:
        return
    api = course.api()
    for student, assignment in pairs:
        result = api.generate_feedback(assignment, student, force=True)
        if not result["success"]:
            print(f"feedback for {student}/{assignment} failed: {result.get('error', '')[-500:]}", file=sys.stderr)


def export(course: Course) -> Path:
    """nbgrader export: every grade in the gradebook to grades.csv."""
    from nbgrader.api import Gradebook
    from nbgrader.plugins import CsvExportPlugin

    plugin = CsvExportPlugin(config=course.config)
    plugin.to = str(course.root / "grades.csv")
    with Gradebook(f"sqlite:///{course.gradebook}") as gradebook:
        plugin.export(gradebook)
    return Path(plugin.to)


def autograded_scores(root: Path) -> dict[tuple[str, str], tuple[float, float]]:
    """{(student, assignment): (autograded score, autograded maximum)} from the gradebook's test cells."""
    from nbgrader.api import Gradebook

    scores = {}
    with Gradebook(f"sqlite:///{Path(root) / GRADEBOOK}") as gradebook:
        for assignment in gradebook.assignments:
            for submission in gradebook.assignment_submissions(assignment.name):
                scores[(submission.student_id, assignment.name)] = autograded_points(submission)
    return scores


def table(scores: dict[tuple[str, str], tuple[float, float]], names: list[str]) -> str:
    """Students down, assignments across, ``score / max`` in each cell."""
    students = sorted({student for student, _ in scores})
    width = max([len("student")] + [len(s) for s in students])
    columns = [max(len(a), 9) for a in names]
    lines = ["  ".join(["student".ljust(width)] + [a.rjust(w) for a, w in zip(names, columns)])]
    for student in students:
        cells = [f"{scores[(student, a)][0]:g} / {scores[(student, a)][1]:g}" if (student, a) in scores else "-"
                 for a in names]
        lines.append("  ".join([student.ljust(width)] + [c.rjust(w) for c, w in zip(cells, columns)]))
    return "\n".join(lines)

"""What a grade round leaves behind: feedback HTML, grades.csv, and the autograded score table.

Everything here reads or converts through nbgrader itself (its API, its CSV export plugin, its
gradebook), on the course at ``root`` with that course's nbgrader_config.py.
"""
from __future__ import annotations

import sys
from pathlib import Path

from convcourse.grading.course.gradebook import GRADEBOOK, load_config, nbgrader_api


def feedback(root: Path, pairs: list[tuple[str, str]]) -> None:
    """nbgrader generate_feedback for each (student, assignment) just graded."""
    if not pairs:
        return
    api = nbgrader_api(root)
    for student, assignment in pairs:
        result = api.generate_feedback(assignment, student, force=True)
        if not result["success"]:
            print(f"feedback for {student}/{assignment} failed: {result.get('error', '')[-500:]}", file=sys.stderr)


def export(root: Path) -> Path:
    """nbgrader export: every grade in the gradebook to grades.csv."""
    from nbgrader.api import Gradebook
    from nbgrader.plugins import CsvExportPlugin

    plugin = CsvExportPlugin(config=load_config(root))
    plugin.to = str(Path(root) / "grades.csv")
    with Gradebook(f"sqlite:///{Path(root) / GRADEBOOK}") as gradebook:
        plugin.export(gradebook)
    return Path(plugin.to)


def autograded_scores(root: Path) -> dict[tuple[str, str], tuple[float, float]]:
    """{(student, assignment): (autograded score, autograded maximum)} from the gradebook's test cells."""
    from nbgrader.api import Gradebook

    scores = {}
    with Gradebook(f"sqlite:///{Path(root) / GRADEBOOK}") as gradebook:
        for assignment in gradebook.assignments:
            for submission in gradebook.assignment_submissions(assignment.name):
                scores[(submission.student_id, assignment.name)] = _test_points(submission)
    return scores


def submission_score(root: Path, student: str, assignment: str) -> tuple[float, float] | None:
    """(autograded score, maximum) of one submission, or None when the gradebook has none."""
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(f"sqlite:///{Path(root) / GRADEBOOK}") as gradebook:
        try:
            return _test_points(gradebook.find_submission(assignment, student))
        except MissingEntry:
            return None


def _test_points(submission) -> tuple[float, float]:
    """Points of the autograded test cells of one submission (written answers are graded by hand)."""
    got = top = 0.0
    for notebook in submission.notebooks:
        solutions = {cell.name for cell in notebook.notebook.solution_cells}
        for grade in notebook.grades:
            if grade.cell.cell_type == "code" and grade.name not in solutions:
                got += grade.auto_score or 0.0
                top += grade.max_score
    return got, top


def table(scores: dict[tuple[str, str], tuple[float, float]], names: list[str],
          penalties: dict[tuple[str, str], float] | None = None) -> str:
    """Students down, assignments across, ``score / max`` in each cell (``late -x``: a late penalty takes x points)."""
    penalties = penalties or {}
    students = sorted({student for student, _ in scores})

    def cell(student: str, assignment: str) -> str:
        if (student, assignment) not in scores:
            return "-"
        late = penalties.get((student, assignment))
        got, top = scores[(student, assignment)]
        return f"{got:g} / {top:g}" + (f" late -{late:.3g}" if late else "")

    cells = {student: [cell(student, a) for a in names] for student in students}
    width = max([len("student")] + [len(s) for s in students])
    columns = [max([len(a), 9] + [len(cells[s][i]) for s in students]) for i, a in enumerate(names)]
    lines = ["  ".join(["student".ljust(width)] + [a.rjust(w) for a, w in zip(names, columns)])]
    for student in students:
        lines.append("  ".join([student.ljust(width)] + [c.rjust(w) for c, w in zip(cells[student], columns)]))
    return "\n".join(lines)

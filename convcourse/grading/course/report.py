"""What a grade round leaves behind: feedback HTML, grades.csv, and the autograded score table.

Everything here reads or converts through nbgrader itself (its API, its CSV export plugin, its
gradebook's tables), with the course's nbgrader_config.py as loaded once for the round (:class:`Course`).
"""
from __future__ import annotations

import sys
from pathlib import Path

from convcourse.grading.course.folder import Course
from convcourse.grading.course.gradebook import GRADEBOOK, read_rows


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


# Per submission: the autograder's points and the maximum of its test cells (code grade cells that are no solution
# cells: written answers and manually graded code are graded by hand), as nbgrader's tables hold them; the rule of
# gradebook.autograded_points, for a whole class in one query (milliseconds, where walking nbgrader's objects took
# seconds for a few hundred submissions).
_TEST_POINTS = """
    SELECT s.student_id, a.name,
           COALESCE(SUM(CASE WHEN g.cell_type = 'code' AND c.id IS NULL THEN COALESCE(gr.auto_score, 0) END), 0),
           COALESCE(SUM(CASE WHEN g.cell_type = 'code' AND c.id IS NULL THEN g.max_score END), 0)
    FROM submitted_assignment s JOIN assignment a ON a.id = s.assignment_id
    LEFT JOIN submitted_notebook n ON n.assignment_id = s.id LEFT JOIN grade gr ON gr.notebook_id = n.id
    LEFT JOIN grade_cells g ON g.id = gr.cell_id LEFT JOIN solution_cells c ON c.id = gr.cell_id
    GROUP BY s.id"""


def autograded_scores(root: Path) -> dict[tuple[str, str], tuple[float, float]]:
    """{(student, assignment): (autograded score, autograded maximum)} from the gradebook's test cells ({} without one)."""
    db = Path(root) / GRADEBOOK
    if not db.is_file():
        return {}
    return {(student, name): (float(got), float(top)) for student, name, got, top in read_rows(db, _TEST_POINTS)}


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

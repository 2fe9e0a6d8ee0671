"""The wide layouts of the learning platforms' gradebook imports: a row per student, a column per graded cell, totals.

Canvas (its importer, canvas-lms ``app/models/gradebook_importer.rb``, and Instructure's guide "How do I
import grades in the Gradebook?"): the header starts "Student", "ID", "SIS User ID", "SIS Login ID",
"Section"; a student is found by ID (Canvas's own user id), else SIS User ID, else SIS Login ID, else
by name. Every further column is an assignment: one whose header names no Canvas assignment creates
one, with the points of the "Points Possible" row, the first row after the header. Columns whose
header contains "Final Points", "Current Score" and the like are read-only totals the import skips:
the totals here are named so, and the questions' columns must not be.

Moodle (its grade import from CSV, docs.moodle.org "Grade import"): the teacher maps one column to the
user identifier (email address, ID number or username) and each grade column to a grade item, or to a
new one; columns left unmapped are ignored, so the totals can stay in the file.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from convcourse.grading.course.export import (
    ExportError,
    Question,
    QuestionScore,
    handed_in,
    number,
    question_rows,
    questions,
    students,
    write_csv,
)


@dataclass(frozen=True)
class Platform:
    """A platform's gradebook import: who a row is, which columns can say so, how its totals are named."""

    name: str
    identity: tuple[str, ...]  # the columns before the grades, named as the platform names them
    keys: tuple[str, ...]  # the identity columns the platform finds a student by: a roster must have one
    default_key: str  # without a roster, this one holds the course's student id
    total: str  # header of an assignment's total: total.format(assignment)
    course_total: str
    points_row: str  # first cell of the row of maximum points after the header ('' for none)


CANVAS = Platform("canvas", ("Student", "ID", "SIS User ID", "SIS Login ID", "Section"),
                  ("ID", "SIS User ID", "SIS Login ID"), "SIS Login ID", "{} Final Points", "Final Points",
                  "Points Possible")
MOODLE = Platform("moodle", ("First name", "Last name", "ID number", "Email address", "Username"),
                  ("ID number", "Email address", "Username"), "Username", "{} total", "total", "")
PLATFORMS = {p.name: p for p in (CANVAS, MOODLE)}
# Canvas skips a column whose header contains one of these (gradebook_importer.rb, NON_ASSIGNMENT_COLUMN_HEADERS).
CANVAS_READ_ONLY = ("Current Score", "Current Points", "Current Grade", "Final Score", "Final Points", "Final Grade",
                    "Override Score", "Override Grade", "Override Status")


def read_roster(path: Path, key: str, platform: Platform) -> dict[str, dict[str, str]]:
    """{course student id: that student's row} of a roster CSV whose column ``key`` holds the course's student ids.

    Rows without an id (e.g. the "Points Possible" row of a Canvas export used as the roster) are skipped.
    """
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:  # -sig: a spreadsheet's byte-order mark
            reader = csv.DictReader(handle)
            header = [name.strip() for name in reader.fieldnames or []]
            table = [{name.strip(): (value or "").strip() for name, value in row.items() if name} for row in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise ExportError(f"cannot read the roster {path}: {error}") from None
    if key not in header:
        raise ExportError(f"the roster {path} has no column {key!r} (its columns: {', '.join(header) or 'none'}); "
                          "name the one holding the course's student ids with --roster-key")
    if not set(platform.keys) & set(header):
        raise ExportError(f"the roster {path} has no column {platform.name} finds students by: "
                          f"it needs one of {', '.join(repr(k) for k in platform.keys)}")
    roster: dict[str, dict[str, str]] = {}
    for row in table:
        student = row.get(key, "")
        if not student:
            continue
        if student in roster:
            raise ExportError(f"the roster {path} has student {student!r} twice (column {key!r})")
        roster[student] = row
    return roster


def identities(platform: Platform, students: dict[str, tuple[str, str, str]],
               roster: dict[str, dict[str, str]] | None) -> dict[str, list[str]]:
    """{student id: the identity columns' values}: from the roster, else the course's id and the gradebook's names."""
    if roster is not None:
        missing = sorted(set(students) - set(roster))
        if missing:
            shown = ", ".join(missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
            raise ExportError(f"the roster does not match the gradebook: {len(missing)} graded student(s) are not in it "
                              f"({shown}); their grades would be lost")
    result = {}
    for student in sorted(set(students) | set(roster or {})):
        first, last, email = students.get(student, ("", "", ""))
        fallback = {"Student": f"{last}, {first}" if first and last else student, "First name": first,
                    "Last name": last, "Email address": email}
        if roster is None:
            fallback[platform.default_key] = student
        given = (roster or {}).get(student, {})
        result[student] = [given.get(column) or fallback.get(column, "") for column in platform.identity]
    return result


def labels(cells: list[Question]) -> list[str]:
    """Column headers of the questions: 'assignment: question', with the notebook where an assignment has several."""
    notebooks: dict[str, set[str]] = {}
    for cell in cells:
        notebooks.setdefault(cell.assignment, set()).add(cell.notebook)
    return [f"{c.assignment}/{c.notebook}: {c.question}" if len(notebooks[c.assignment]) > 1
            else f"{c.assignment}: {c.question}" for c in cells]


def wide_table(platform: Platform, cells: list[Question], rows: list[QuestionScore],
               people: dict[str, list[str]]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of ``platform``'s layout: points after the late penalty per question, then the totals.

    A question still waiting for its manual grade is left empty (the import leaves it alone); an
    assignment a student did not hand in scores 0, as in nbgrader's own export.
    """
    names = list(dict.fromkeys(c.assignment for c in cells))
    header = [*platform.identity, *labels(cells), *(platform.total.format(a) for a in names), platform.course_total]
    if platform is CANVAS:
        clashes = [label for label in labels(cells) if any(word in label for word in CANVAS_READ_ONLY)]
        if clashes:
            raise ExportError(f"Canvas would skip the column(s) {', '.join(clashes)}: their names contain one of "
                              f"its read-only headers ({', '.join(CANVAS_READ_ONLY)})")
    got = {(r.student, r.assignment, r.notebook, r.question): r for r in rows}
    handed_in = {(r.student, r.assignment) for r in rows}
    table = []
    if platform.points_row:
        table.append([platform.points_row, *[""] * (len(platform.identity) - 1), *(number(c.max_score) for c in cells),
                      *["(read only)"] * (len(names) + 1)])
    for student, identity in people.items():
        points, totals = [], dict.fromkeys(names, 0.0)
        for cell in cells:
            row = got.get((student, cell.assignment, cell.notebook, cell.question))
            value = (row.points if row is not None else None) if (student, cell.assignment) in handed_in else 0.0
            points.append(number(value))
            totals[cell.assignment] += value or 0.0
        table.append([*identity, *points, *(number(totals[a]) for a in names), number(sum(totals.values()))])
    return header, table


def write_wide(root: Path, platform: Platform, out: Path, *, roster: Path | None = None, key: str = "student",
               names: list[str] | None = None) -> tuple[Path, list[str]]:
    """``platform``'s layout of the assignments ``names`` (default: all handed in) to ``out``; and notes for the user."""
    chosen = handed_in(root) if names is None else names
    known = students(root)
    people = identities(platform, known, read_roster(roster, key, platform) if roster is not None else None)
    rows = question_rows(root, chosen)
    header, table = wide_table(platform, questions(root, chosen), rows, people)
    notes = []
    pending = sum(row.score is None for row in rows)
    if pending:
        notes.append(f"{pending} answer(s) still wait for a manual grade (formgrader): their cells are left empty")
    absent = len(set(people) - known.keys())
    if absent:
        notes.append(f"{absent} student(s) of the roster have no submission at all: 0 points each")
    return write_csv(out, header, table), notes

"""Due dates, per-student extensions and late penalties in the gradebook, where nbgrader looks for them.

Due dates come from ``c.Deadlines.due`` in ``nbgrader_config.py`` (one date with its time zone per
assignment); an assignment it does not name keeps the due date the gradebook has (formgrader's, or
``nbgrader db assignment add --duedate``). Extensions come from a CSV file, ``extensions.csv`` in the
course folder (``c.Deadlines.extensions`` names another), with the columns ``student,assignment,extension``:
the extension is a number of days (``2``, ``0.5``) or the student's own due date with its time zone.
When the file exists it is the whole truth: a submission it does not name has no extension.
:func:`sync` writes both into the gradebook before a round grades (nbgrader measures lateness from
``timestamp.txt`` against them); :func:`apply_penalties` asks the course's late-submission plugin
again for every submitted notebook, so a changed due date, extension, policy or manual grade changes
the penalty without a regrade.
"""
from __future__ import annotations

import csv
import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from traitlets import Dict, TraitError, Unicode
from traitlets.config import Config, Configurable

from convcourse.grading.course.export import GRADE_SCORE
from convcourse.grading.course.folder import GradingError, assignments
from convcourse.grading.course.gradebook import GRADEBOOK, load_config, read_rows

EXTENSION_COLUMNS = ("student", "assignment", "extension")


class Deadlines(Configurable):
    """The course's due dates and the file of its extensions (``c.Deadlines`` in nbgrader_config.py)."""

    due = Dict(value_trait=Unicode(), default_value={},
               help="due date per assignment, with its time zone: {'manual_convolution': '2026-12-01 23:59 Europe/Berlin'}"
               ).tag(config=True)
    extensions = Unicode("extensions.csv", help="CSV of extensions (student,assignment,extension), in the course folder"
                         ).tag(config=True)


class DeadlineError(GradingError):
    """A due date, the extensions file or the late policy cannot be used as written (the message says where)."""


@dataclass(frozen=True)
class PenaltyChange:
    """A notebook whose late penalty :func:`apply_penalties` changed."""

    student: str
    assignment: str
    notebook: str
    before: float
    after: float

    def line(self) -> str:
        """How the round reports it."""
        return (f"{self.student}/{self.assignment}: late penalty {self.before:g} -> {self.after:g} points"
                + (f" ({self.notebook}.ipynb)" if self.notebook != self.assignment else ""))


def parse_time(text: str, where: str) -> dt.datetime:
    """A date and time with its zone ('2026-12-01 23:59 Europe/Berlin', '2026-12-01T23:59+01:00') as naive UTC.

    Naive UTC is how nbgrader stores due dates and timestamps; a time without a zone is refused,
    since nbgrader would silently take it for UTC.
    """
    text = text.strip()
    head, _, zone = text.rpartition(" ")
    try:
        if head and not zone[:1].isdigit() and not zone.startswith(("+", "-")):
            moment = dt.datetime.fromisoformat(head).replace(tzinfo=ZoneInfo(zone))
        else:
            moment = dt.datetime.fromisoformat(text.replace(" +", "+").replace(" -", "-") if head else text)
    except (ValueError, ZoneInfoNotFoundError) as error:
        raise DeadlineError(f"{where}: cannot read {text!r} as a date and time with its time zone ({error}); "
                            "write e.g. '2026-12-01 23:59 Europe/Berlin' or '2026-12-01T23:59+01:00'") from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise DeadlineError(f"{where}: {text!r} has no time zone; write e.g. '{text} Europe/Berlin' or '{text}+01:00'")
    return moment.astimezone(dt.timezone.utc).replace(tzinfo=None)


def _loaded(root: Path, config: Config | None) -> Config:
    """The course's nbgrader config: ``config`` as the round loaded it, or loaded now."""
    return config if config is not None else load_config(root)


def due_dates(root: Path, config: Config | None = None) -> dict[str, dt.datetime]:
    """{assignment: due date (naive UTC)} of ``c.Deadlines.due`` (``config``: the course's, if already loaded)."""
    try:
        configured = Deadlines(config=_loaded(root, config)).due
    except TraitError as error:
        raise DeadlineError(f"nbgrader_config.py: c.Deadlines.due: {error}") from None
    return {name: parse_time(text, f"nbgrader_config.py: c.Deadlines.due[{name!r}]") for name, text in configured.items()}


def extensions_path(root: Path, config: Config | None = None) -> Path:
    """Where the course's extensions file is (it need not exist)."""
    return Path(root) / Deadlines(config=_loaded(root, config)).extensions


def read_extensions(path: Path, due: dict[str, dt.datetime | None]) -> dict[tuple[str, str], dt.timedelta]:
    """{(student, assignment): extension} of an extensions file, against the assignments' due dates ``due``."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            header = [name.strip() for name in reader.fieldnames or []]
            lines = [(number, {k.strip(): (v or "").strip() for k, v in row.items() if k})
                     for number, row in enumerate(reader, start=2)]
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise DeadlineError(f"cannot read the extensions file {path}: {error}") from None
    missing = [c for c in EXTENSION_COLUMNS if c not in header]
    if missing:
        raise DeadlineError(f"{path}: no column {', '.join(missing)} (the header must be "
                            f"{','.join(EXTENSION_COLUMNS)}; it is {','.join(header) or 'empty'})")
    granted: dict[tuple[str, str], dt.timedelta] = {}
    for number, row in lines:
        where = f"{path}, line {number}"
        student, assignment, value = (row.get(c, "") for c in EXTENSION_COLUMNS)
        if not any(row.values()):
            continue
        if not student or not assignment or not value:
            raise DeadlineError(f"{where}: student, assignment and extension must all be given")
        if assignment not in due:
            raise DeadlineError(f"{where}: no assignment {assignment!r} in the course (it has: {', '.join(due)})")
        if (student, assignment) in granted:
            raise DeadlineError(f"{where}: a second extension for {student}/{assignment}")
        granted[(student, assignment)] = _extension(value, due[assignment], where)
    return granted


def _extension(value: str, due: dt.datetime | None, where: str) -> dt.timedelta:
    """An extension cell: days, or the student's own due date (later than the assignment's)."""
    try:
        days = float(value)
    except ValueError:
        days = None
    if days is not None:
        if not 0 < days < 3650:
            raise DeadlineError(f"{where}: an extension of {value} days; give a positive number of days or a date")
        return dt.timedelta(days=days)
    try:
        own = parse_time(value, where)
    except DeadlineError:
        raise DeadlineError(f"{where}: {value!r} is neither a number of days nor the student's own due date with "
                            "its time zone (e.g. 2, 0.5 or '2026-12-03 23:59 Europe/Berlin')") from None
    if due is None:
        raise DeadlineError(f"{where}: {value!r} is a date, but the assignment has no due date to extend")
    if own <= due:
        raise DeadlineError(f"{where}: {value} is not after the assignment's due date ({due:%Y-%m-%d %H:%M} UTC)")
    return own - due


def _connect(root: Path):
    from nbgrader.api import Gradebook

    return Gradebook(f"sqlite:///{Path(root) / GRADEBOOK}")


def sync(root: Path, config: Config | None = None) -> None:
    """Write the configured due dates and the extensions file into the gradebook (DeadlineError if malformed)."""
    from nbgrader.api import Assignment, SubmittedAssignment

    root, config = Path(root), _loaded(root, config)
    configured = due_dates(root, config)
    late_plugin(root, config)  # a bad policy stops the round here, not inside every job
    path = extensions_path(root, config)
    if (not configured and not path.is_file()) or not (root / GRADEBOOK).is_file():
        return
    with _connect(root) as gradebook:
        known = {a.name: a for a in gradebook.assignments}
        unknown = sorted(set(configured) - set(known) - set(assignments(root)))
        if unknown:
            raise DeadlineError(f"nbgrader_config.py: c.Deadlines.due names no assignment of the course: {', '.join(unknown)}")
        for name, when in configured.items():
            if name in known and known[name].duedate != when:
                known[name].duedate = when
        if path.is_file():
            granted = read_extensions(path, {name: a.duedate for name, a in known.items()})
            table = SubmittedAssignment.__table__
            # Columns, not objects: nbgrader's objects compute their scores in subqueries, a scan of all grades each.
            for sid, student, name, extension in (
                    gradebook.db.query(SubmittedAssignment.id, SubmittedAssignment.student_id, Assignment.name,
                                       SubmittedAssignment.extension)
                    .join(Assignment, SubmittedAssignment.assignment_id == Assignment.id)):
                if extension != granted.get((student, name)):
                    gradebook.db.execute(table.update().where(table.c.id == sid)
                                         .values(extension=granted.get((student, name))))
        gradebook.db.commit()


def late_plugin(root: Path, config: Config | None = None):
    """The course's late-submission plugin (``c.AssignLatePenalties.plugin_class``), configured as autograde has it."""
    from nbgrader.preprocessors import AssignLatePenalties

    try:
        config = _loaded(root, config)
        return AssignLatePenalties(config=config).plugin_class(config=config)
    except (TraitError, ImportError) as error:
        raise DeadlineError(f"nbgrader_config.py: the late policy: {error}") from None


def seconds_late(timestamp: dt.datetime | None, due: dt.datetime | None, extension: dt.timedelta | None) -> float:
    """How late a submission is, as nbgrader's ``SubmittedAssignment.total_seconds_late`` counts it."""
    if timestamp is None or due is None:
        return 0.0
    return max(0.0, (timestamp - (due + extension if extension is not None else due)).total_seconds())


def apply_penalties(root: Path, config: Config | None = None) -> list[PenaltyChange]:
    """Sync the deadlines, then set every submitted notebook's late penalty as the plugin gives it now; what changed."""
    from nbgrader.api import Assignment, Notebook, SubmittedAssignment, SubmittedNotebook

    config = _loaded(root, config)
    sync(root, config)
    db = Path(root) / GRADEBOOK
    if not db.is_file():
        return []
    plugin, changes = late_plugin(root, config), []
    scores = dict(read_rows(db, f"""SELECT sn.id, COALESCE(SUM({GRADE_SCORE}), 0)
                                    FROM submitted_notebook sn LEFT JOIN grade gr ON gr.notebook_id = sn.id GROUP BY sn.id"""))
    table = SubmittedNotebook.__table__
    with _connect(root) as gradebook:
        found = (gradebook.db.query(SubmittedNotebook.id, SubmittedNotebook.late_submission_penalty, Notebook.name,
                                    SubmittedAssignment.student_id, SubmittedAssignment.timestamp,
                                    SubmittedAssignment.extension, Assignment.name, Assignment.duedate)
                 .join(SubmittedAssignment, SubmittedNotebook.assignment_id == SubmittedAssignment.id)
                 .join(Notebook, SubmittedNotebook.notebook_id == Notebook.id)
                 .join(Assignment, SubmittedAssignment.assignment_id == Assignment.id).all())
        for nid, before, notebook, student, timestamp, extension, assignment, due in found:
            late, score = seconds_late(timestamp, due, extension), scores.get(nid, 0.0)
            penalty = plugin.late_submission_penalty(student, score, late) if late > 0 else None
            penalty = None if penalty is None else min(max(0.0, float(penalty)), score)  # as AssignLatePenalties bounds it
            if abs((penalty or 0.0) - (before or 0.0)) > 1e-9:
                changes.append(PenaltyChange(student, assignment, notebook, before or 0.0, penalty or 0.0))
                gradebook.db.execute(table.update().where(table.c.id == nid).values(late_submission_penalty=penalty))
        gradebook.db.commit()
    return changes


def late_penalties(root: Path) -> dict[tuple[str, str], float]:
    """{(student, assignment): points its late penalty takes} of the submissions that have one."""
    if not (Path(root) / GRADEBOOK).is_file():
        return {}
    found = read_rows(Path(root) / GRADEBOOK, """
        SELECT s.student_id, a.name, SUM(COALESCE(n.late_submission_penalty, 0))
        FROM submitted_notebook n JOIN submitted_assignment s ON s.id = n.assignment_id
        JOIN assignment a ON a.id = s.assignment_id GROUP BY s.id HAVING SUM(COALESCE(n.late_submission_penalty, 0)) > 0""")
    return {(student, assignment): penalty for student, assignment, penalty in found}

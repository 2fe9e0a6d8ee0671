"""A course run through nbgrader's exchange by separate accounts: one instructor, two students.

Everything lives in one scratch folder in /var/tmp: the exchange (mode 1777, as nbgrader documents
for a shared ``c.Exchange.root``) and each account's home for this run (mode 700, as on a
JupyterHub), so runs leave nothing behind and never see each other's files. Each account has its own
``~/.jupyter/nbgrader_config.py``: the students name the course and the exchange, the instructor
the exchange (the course's own ``nbgrader_config.py`` names the course). The instructor's course is
a copy of this checkout's config and one assignment, in the instructor's home.
"""
from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

import nbformat
from accounts import ROOT, Account, account, give, login_env, python, run_as

from convcourse.grading.demo import samples

ASSIGNMENT = "output_dimensions"  # the cheapest to grade
COURSE_ID = "convcourse"
GRADING_ENV = {"CONVCOURSE_DATASET": "digits", "CONVCOURSE_CELL_TIMEOUT": "30", "CONVCOURSE_NOTEBOOK_TIMEOUT": "300"}


@dataclass
class Cycle:
    """The accounts, their homes and the exchange of one run."""

    scratch: Path
    instructor: Account
    students: tuple[Account, Account]
    homes: dict[str, Path] = field(default_factory=dict)

    @property
    def exchange(self) -> Path:
        """nbgrader's ``c.Exchange.root``."""
        return self.scratch / "exchange"

    @property
    def course(self) -> Path:
        """The instructor's course folder (``nbgrader_config.py``, ``source/``, then ``submitted/``...)."""
        return self.homes[self.instructor.name] / "course"

    def env(self, who: Account, **extra: str) -> dict[str, str]:
        """The login environment of ``who`` with this run's home."""
        return login_env(who, HOME=str(self.homes[who.name]), **GRADING_ENV, **extra)

    def run(self, who: Account, *argv: str, cwd: Path | None = None, check: bool = True, stdin: str | None = None):
        """Run a command as ``who`` (in the course folder for the instructor, the home for a student)."""
        where = cwd or (self.course if who == self.instructor else self.homes[who.name])
        return run_as(who, list(argv), self.env(who), cwd=where, check=check, input=stdin)

    def nbgrader(self, who: Account, *argv: str):
        """A plain ``nbgrader`` command as ``who``."""
        return self.run(who, python(), "-m", "nbgrader", *argv)

    def write_as(self, who: Account, path: Path, text: str) -> None:
        """``who`` writes ``text`` to ``path`` (their own file, with their umask)."""
        self.run(who, python(), "-c", "import sys; open(sys.argv[1], 'w').write(sys.stdin.read())", str(path),
                 stdin=text)


def start() -> Cycle:
    """Accounts, homes, exchange and course made; the assignment generated and released by the instructor."""
    scratch = Path(tempfile.mkdtemp(prefix="convcourse-exchange-", dir="/var/tmp"))
    scratch.chmod(0o755)
    cycle = Cycle(scratch, account("ccinstructor"), (account("ccstudent1"), account("ccstudent2")))
    cycle.exchange.mkdir()
    cycle.exchange.chmod(0o1777)
    for who in (cycle.instructor, *cycle.students):
        home = scratch / who.name
        (home / ".jupyter").mkdir(parents=True)
        settings = [f"c.Exchange.root = {str(cycle.exchange)!r}"]
        if who != cycle.instructor:
            settings.insert(0, f"c.CourseDirectory.course_id = {COURSE_ID!r}")
        (home / ".jupyter" / "nbgrader_config.py").write_text("c = get_config()  # noqa: F821\n" + "\n".join(settings) + "\n")
        give(home, who)
        home.chmod(0o700)
        cycle.homes[who.name] = home
    course = cycle.course
    (course / "source").mkdir(parents=True)
    shutil.copy2(ROOT / "nbgrader_config.py", course)
    shutil.copytree(ROOT / "source" / ASSIGNMENT, course / "source" / ASSIGNMENT)
    give(course, cycle.instructor)
    course.chmod(0o700)
    cycle.nbgrader(cycle.instructor, "generate_assignment", ASSIGNMENT, "--force")
    cycle.nbgrader(cycle.instructor, "release_assignment", ASSIGNMENT)
    return cycle


SHOW_NETWORK = "import socket\nprint('interfaces', [name for _, name in socket.if_nameindex()])"


def solutions(*more_cells: str) -> dict[str, samples.Submission]:
    """What the students hand in: ``full`` (every test passes) and ``partial``, with their exact scores.

    ``partial`` ends with a harmless cell that prints the network interfaces it sees: proof of the sandbox
    (and then ``more_cells``, equally harmless to the score).
    """
    ctx = samples.context(ROOT, ASSIGNMENT)
    made = {case: samples.build(ctx, case) for case in ("full", "partial")}
    partial = nbformat.reads(made["partial"].files[f"{ASSIGNMENT}.ipynb"].decode(), as_version=4)
    for cell in (SHOW_NETWORK, *more_cells):
        partial, _ = samples.insert_cell(partial, cell, "last")
    made["partial"] = replace(made["partial"], files={f"{ASSIGNMENT}.ipynb": nbformat.writes(partial).encode()})
    return made


def hand_in(cycle: Cycle, student: Account, submission: samples.Submission) -> str:
    """The student writes the notebook into the fetched folder and submits it; returns nbgrader's timestamp."""
    notebook = cycle.homes[student.name] / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    cycle.write_as(student, notebook, submission.files[f"{ASSIGNMENT}.ipynb"].decode())
    cycle.nbgrader(student, "submit", ASSIGNMENT)
    cache = cycle.homes[student.name] / ".local" / "share" / "jupyter" / "nbgrader_cache" / COURSE_ID
    stamps = sorted((p / "timestamp.txt").read_text() for p in cache.glob(f"{student.name}+{ASSIGNMENT}+*"))
    return stamps[-1]

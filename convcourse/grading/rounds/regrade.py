"""Regrading on change: which graded submissions a round grades again for their assignment's sake, and what changed.

A submission is graded again when its own files changed (:func:`submission_digest`) and also
when what its assignment is graded with changed since it was graded: the test cells, hidden tests and
points as nbgrader keeps them in the gradebook (synced from source/ at the start of each round) and the
assignment's other source files, which autograde copies next to every submission. The due date is
left out: a new due date or extension re-applies the late penalties without a regrade
(:func:`convcourse.grading.course.deadlines.apply_penalties`). A change of nbgrader_config.py or of
convcourse itself regrades nothing; ``--force`` does.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

from convcourse.grading.course.gradebook import GRADEBOOK, assignment_rows

TESTS_KEY = "tests"  # in the round's state of each submission: the tests_digest it was graded with


def submission_digest(folder: Path) -> str:
    """SHA-256 over the names and bytes of the regular files of a submission (what changed since last time)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in Path(folder).rglob("*") if p.is_file() and not p.is_symlink()):
        relative = path.relative_to(folder).as_posix()
        if ".ipynb_checkpoints" in relative:
            continue
        digest.update(relative.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def tests_digest(root: Path, name: str) -> str:
    """SHA-256 of what an assignment's submissions are graded with: its gradebook cells and points, its other files."""
    root = Path(root)
    digest = hashlib.sha256(assignment_rows(root / GRADEBOOK, name, with_duedate=False).encode())
    folder = root / "source" / name
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix != ".ipynb"):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def new_tests(state: dict, pairs: list[tuple[str, str]], tests: dict[str, str]) -> set[tuple[str, str]]:
    """The (student, assignment) pairs last graded with other tests than ``tests`` {assignment: digest}.

    A submission graded before this was recorded is taken as graded with today's tests (its entry in
    ``state`` records them from now on): there is no telling what it was graded with.
    """
    changed = set()
    for student, assignment in pairs:
        last = state.get(f"{student}/{assignment}")
        if not isinstance(last, dict):
            continue
        if TESTS_KEY not in last:
            last[TESTS_KEY] = tests[assignment]
        elif last[TESTS_KEY] != tests[assignment]:
            changed.add((student, assignment))
    return changed


def score_change(student: str, assignment: str, before: tuple[float, float] | None,
                 after: tuple[float, float] | None) -> str | None:
    """'alice/tiny: 3 / 4 -> 4 / 4' for a graded submission whose autograded score or maximum changed, else None."""
    if before is None or after is None or before == after:
        return None
    return f"{student}/{assignment}: {before[0]:g} / {before[1]:g} -> {after[0]:g} / {after[1]:g}"

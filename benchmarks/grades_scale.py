"""Seconds the grade bookkeeping of issue 22 costs a class: what a round adds before and after its jobs, and an export.

    .venv/bin/python benchmarks/grades_scale.py [--students 200]

Copies the course (source/, nbgrader_config.py) into a scratch folder, syncs its gradebook and records
a graded submission of every assignment for each student through nbgrader's API (no grading: random
autograder scores, half of them handed in 1-3 days late), under a 10 %-a-day late policy with a due
date and an extensions file. Then it times, on that gradebook: the scores a round reads before it
syncs (``autograded_scores``), the deadline sync and the penalties re-applied after a round (first
when every late one changes, then when none does), the tests digests of every assignment, the long
rows, and the Canvas export. The last line is ``grades_scale students=<n> submissions=<m> <step>=<s> ...``.
"""
from __future__ import annotations

import argparse
import datetime as dt
import random
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

from convcourse.grading.course import platforms
from convcourse.grading.course.deadlines import apply_penalties, sync
from convcourse.grading.course.export import question_rows
from convcourse.grading.course.folder import assignments, load_course, sync_gradebook
from convcourse.grading.course.report import autograded_scores
from convcourse.grading.rounds.regrade import tests_digest

ROOT = Path(__file__).resolve().parent.parent
DUE = dt.datetime(2026, 12, 1, 23, 59)
POLICY = ('\nc.LatePenalty.penalty_method = "per_day"\nc.LatePenalty.per_day = 0.1\n'
          'c.Deadlines.due = {names}\n')


def record(root: Path, names: list[str], students: int) -> int:
    """Graded submissions of every assignment for ``students`` students; how many."""
    from nbgrader.api import Gradebook

    chance = random.Random(22)
    with warnings.catch_warnings(), Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gradebook:
        warnings.simplefilter("ignore")
        for number in range(students):
            student = f"s{number:04d}"
            gradebook.add_student(student)
            for name in names:
                late = chance.random() < 0.5
                stamp = DUE + dt.timedelta(days=chance.uniform(1, 3)) if late else DUE - dt.timedelta(hours=2)
                submission = gradebook.add_submission(name, student, timestamp=stamp)
                for notebook in submission.notebooks:
                    for grade in notebook.grades:
                        grade.auto_score = chance.choice([0.0, grade.max_score])
                        grade.needs_manual_grade = grade.cell_type != "code"
            gradebook.db.commit()
    return students * len(names)


def timed(figures: dict, step: str, call):
    began = time.perf_counter()
    result = call()
    figures[step] = time.perf_counter() - began
    return result


def main(argv: list[str] | None = None) -> int:
    """Build the class's gradebook, time each step, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=200)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="convcourse-grades-scale-") as scratch:
        root = Path(scratch) / "course"
        shutil.copytree(ROOT / "source", root / "source")
        names = assignments(root)
        config = (ROOT / "nbgrader_config.py").read_text()
        (root / "nbgrader_config.py").write_text(config + POLICY.format(names={n: "2026-12-01 23:59 UTC" for n in names}))
        (root / "extensions.csv").write_text("student,assignment,extension\ns0000,%s,2\n" % names[0])
        sync_gradebook(load_course(root))
        began = time.perf_counter()
        submissions = record(root, names, args.students)
        print(f"recorded {submissions} submissions in {time.perf_counter() - began:.1f} s", file=sys.stderr)
        figures: dict[str, float] = {}
        timed(figures, "scores_before_sync", lambda: autograded_scores(root))
        timed(figures, "deadline_sync", lambda: sync(root))
        changed = timed(figures, "penalties_first", lambda: apply_penalties(root))
        again = timed(figures, "penalties_again", lambda: apply_penalties(root))
        timed(figures, "tests_digests", lambda: [tests_digest(root, n) for n in names])
        rows = timed(figures, "long_rows", lambda: question_rows(root))
        timed(figures, "canvas_export", lambda: platforms.write_wide(root, platforms.CANVAS, root / "canvas.csv"))
        print(f"{len(changed)} penalties set, then {len(again)} changed; {len(rows)} long rows", file=sys.stderr)
    print(f"grades_scale students={args.students} submissions={submissions} "
          + " ".join(f"{step}={seconds:.2f}" for step, seconds in figures.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Seconds per student (the three notebooks) to autograde, serial (1 worker) and parallel (one per core).

    .venv/bin/python benchmarks/grading_speed.py [--students 2] [--jobs N]

Copies the course (source/, nbgrader_config.py) into a scratch folder, regenerates its release,
hands in the full solution of every assignment for each student, then times ``grade`` twice on the
same submissions: with one worker, and with ``--jobs`` workers (default: one per core). The kernels
use $CONVCOURSE_DATA (real MNIST) unless CONVCOURSE_DATASET=digits, and the training budget of
nbgrader_config.py ($CONVCOURSE_MAX_STEPS, 20 steps unless set). Every score is checked to be full.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from convcourse.budget import BudgetError, grading_budget
from convcourse.grading import release, samples, sandbox
from convcourse.grading.course import GradingError, assignments, ensure_data
from convcourse.grading.pipeline import grade
from convcourse.grading.report import autograded_scores

ROOT = Path(__file__).resolve().parent.parent


def course_copy(destination: Path) -> Path:
    """The course's config and source/ in ``destination``, with its release generated."""
    destination.mkdir()
    shutil.copy2(ROOT / "nbgrader_config.py", destination)
    shutil.copytree(ROOT / "source", destination / "source", ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    release.generate(destination, tuple(assignments(destination)))
    return destination


def hand_in(root: Path, students: int) -> dict[tuple[str, str], float]:
    """The full solution of every assignment for ``students`` students; their expected scores."""
    expected = {}
    for assignment in assignments(root):
        full = samples.build(samples.context(root, assignment), "full")
        for number in range(1, students + 1):
            student = f"student{number:02d}"
            full.write(root, student)
            expected[(student, assignment)] = full.expected
    return expected


def timed_round(root: Path, workers: int, expected: dict) -> tuple[float, dict[str, list[float]]]:
    """Wall seconds of one forced grade round, and each job's seconds by assignment."""
    started = time.monotonic()
    report = grade(root, workers=workers, force=True, log=lambda *_: None)
    elapsed = time.monotonic() - started
    scores = autograded_scores(root)
    wrong = {key: (scores.get(key), want) for key, want in expected.items() if scores.get(key, (None,))[0] != want}
    if wrong:
        raise SystemExit(f"benchmark invalid, scores differ from the full marks: {wrong}")
    per_assignment = defaultdict(list)
    for result in report.graded:
        per_assignment[result.job.assignment].append(result.seconds)
    return elapsed, per_assignment


def main(argv: list[str] | None = None) -> int:
    """Print seconds per student, serial and parallel."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=2, help="students in the class (default 2)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="workers of the parallel round")
    args = parser.parse_args(argv)
    if args.students < 1 or args.jobs < 1:
        parser.error("--students and --jobs must be at least 1")
    try:
        return _measure(args)
    except (GradingError, sandbox.SandboxUnavailable, release.ReleaseError, BudgetError) as error:
        parser.exit(2, f"error: {error}\n")  # the course's own problem, as `python -m convcourse.grading` says it


def _measure(args: argparse.Namespace) -> int:
    # What would stop the grade rounds, checked before a minute goes into copying and releasing the course.
    grading_budget()
    ensure_data()
    data = ("digits stand-in" if os.environ.get("CONVCOURSE_DATASET") == "digits"
            else f"MNIST from {os.environ.get('CONVCOURSE_DATA') or 'the per-user cache'}")
    print(f"{args.students} students x {len(assignments(ROOT))} notebooks (full solutions), {data}, "
          f"CONVCOURSE_MAX_STEPS={os.environ.get('CONVCOURSE_MAX_STEPS') or '20 (nbgrader_config.py)'}, "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start")
    with tempfile.TemporaryDirectory(prefix="convcourse-bench-") as scratch:
        root = course_copy(Path(scratch) / "course")
        expected = hand_in(root, args.students)
        for label, workers in (("serial", 1), ("parallel", args.jobs)):
            elapsed, jobs = timed_round(root, workers, expected)
            notebooks = ", ".join(f"{a} {sum(s) / len(s):.1f} s" for a, s in jobs.items())
            print(f"{label:>8} ({workers} worker{'s' * (workers > 1)}): {elapsed:6.1f} s in all, "
                  f"{elapsed / args.students:6.1f} s per student   [mean per notebook: {notebooks}]", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

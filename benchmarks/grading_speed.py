"""Seconds per notebook to autograde: plain nbgrader (the anchor), ``make grade`` serial, and in parallel.

    .venv/bin/python benchmarks/grading_speed.py [--students 2] [--jobs N]

Copies the course (source/, nbgrader_config.py) into a scratch folder, regenerates its release and
hands in the full solution of every assignment for each student. Then, on the same submissions:

* plain: ``nbgrader autograde <assignment> --force`` for each assignment in a second copy whose
  nbgrader_config.py leaves nbgrader as it ships (its own Execute, no sandbox, no convcourse);
* serial: ``grade`` (what ``make grade`` runs: warm kernels, unless CONVCOURSE_COLD_KERNELS=1) with one worker;
* parallel: ``grade`` with ``--jobs`` workers (default: one per core).

The kernels use $CONVCOURSE_DATA (real MNIST) unless CONVCOURSE_DATASET=digits, and the grading
training budget (convcourse.budget.GRADING_STEPS unless $CONVCOURSE_MAX_STEPS is set) in all three.
Every score is checked to be full. The last line is
``seconds_per_notebook plain=<a> serial=<b> parallel=<c>``.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from convcourse.budget import BUDGET_ENV, BudgetError, grading_budget
from convcourse.grading import sandbox
from convcourse.grading.course import release
from convcourse.grading.course.folder import GradingError, assignments, ensure_data, load_course, sync_gradebook
from convcourse.grading.course.gradebook import with_venv_on_path
from convcourse.grading.course.report import autograded_scores
from convcourse.grading.demo import samples
from convcourse.grading.rounds.pipeline import grade

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


PLAIN_CONFIG = """c = get_config()  # noqa: F821 - nbgrader as it ships: no convcourse, no sandbox
c.CourseDirectory.course_id = "convcourse-plain"
c.CourseDirectory.root = {root!r}
c.Execute.timeout = 600
"""


def plain_copy(course: Path, destination: Path) -> Path:
    """The same source/ and submitted/ under a stock nbgrader configuration."""
    destination.mkdir()
    (destination / "nbgrader_config.py").write_text(PLAIN_CONFIG.format(root=str(destination)))
    for folder in ("source", "submitted"):
        shutil.copytree(course / folder, destination / folder)
    return destination


def timed_plain(root: Path, names: list[str]) -> float:
    """Wall seconds of ``nbgrader generate_assignment`` then ``nbgrader autograde --force``, each assignment."""
    env = {**with_venv_on_path(os.environ), BUDGET_ENV: str(grading_budget())}
    for name in names:  # the gradebook entries autograde needs; not timed, as for the other two
        _nbgrader(["generate_assignment", name, "--force"], root, env)
    started = time.monotonic()
    for name in names:
        _nbgrader(["autograde", name, "--force"], root, env)
    return time.monotonic() - started


def _nbgrader(args: list[str], root: Path, env: dict) -> None:
    done = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=root, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"nbgrader {' '.join(args)} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")


def timed_round(root: Path, workers: int, expected: dict) -> tuple[float, dict[str, list[float]]]:
    """Wall seconds of one forced grade round, and each job's seconds by assignment."""
    started = time.monotonic()
    report = grade(root, workers=workers, force=True, log=lambda *_: None, live=False)
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
    """Print seconds per notebook: plain nbgrader, serial and parallel grading."""
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
          f"{BUDGET_ENV}={grading_budget()}, "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start")
    per_notebook = {}
    with tempfile.TemporaryDirectory(prefix="convcourse-bench-") as scratch:
        root = course_copy(Path(scratch) / "course")
        expected = hand_in(root, args.students)
        sync_gradebook(load_course(root))  # the gradebook entries autograde needs; untimed, as for plain
        plain = plain_copy(root, Path(scratch) / "plain")
        elapsed = timed_plain(plain, assignments(root))
        wrong = {key: (got, expected[key]) for key, got in autograded_scores(plain).items() if got[0] != expected[key]}
        if wrong:
            raise SystemExit(f"benchmark invalid, plain nbgrader's scores differ from the full marks: {wrong}")
        per_notebook["plain"] = elapsed / len(expected)
        print(f"{'plain':>8} (nbgrader autograde, no sandbox): {elapsed:6.1f} s in all, "
              f"{per_notebook['plain']:6.1f} s per notebook", flush=True)
        for label, workers in (("serial", 1), ("parallel", args.jobs)):
            elapsed, jobs = timed_round(root, workers, expected)
            per_notebook[label] = elapsed / len(expected)
            notebooks = ", ".join(f"{a} {sum(s) / len(s):.1f} s" for a, s in jobs.items())
            print(f"{label:>8} ({workers} worker{'s' * (workers > 1)}): {elapsed:6.1f} s in all, "
                  f"{per_notebook[label]:6.1f} s per notebook   [mean job time per notebook: {notebooks}]", flush=True)
    print("seconds_per_notebook " + " ".join(f"{k}={v:.2f}" for k, v in per_notebook.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""One real grade round over a generated class: N students x every assignment, sandboxed, as `make grade` runs it.

    CONVCOURSE_DATA=../shared/data .venv/bin/python benchmarks/class_round.py [--students 100] [--jobs 2]

Copies the course (nbgrader_config.py, source/, release/) into a scratch folder and hands in, for each
of ``--students`` students, one submission of every assignment, cycling through the demo's cases (a
full, a partial and a blank answer: :mod:`convcourse.grading.demo.samples`, whose expected scores are
computed from the notebooks). Then it runs one round (:func:`convcourse.grading.rounds.pipeline.grade`)
and checks every score against the expected one. It prints the round's own figures and, last,
``class_round students=<n> submissions=<m> seconds=<s> per_minute=<r> grader_share=<g> wrong=<w>``:
``grader_share`` is the share of the round's wall time the grader's own process spent preparing and
merging jobs (the part no worker shares), ``wrong`` the submissions whose score was not the expected one.
"""
from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
from pathlib import Path

from convcourse.grading.course.folder import load_course
from convcourse.grading.course.report import autograded_scores
from convcourse.grading.demo import samples
from convcourse.grading.rounds import pipeline

ROOT = Path(__file__).resolve().parent.parent


def hand_in_class(root: Path, assignments: tuple[str, ...], students: int) -> dict[tuple[str, str], float]:
    """Every student's submissions in ``submitted/``; the score each must get."""
    built = {a: [samples.build(samples.context(root, a), case) for case in samples.DEMO_CASES] for a in assignments}
    expected = {}
    for number in range(students):
        name = f"student{number:04d}"
        for assignment, cases in built.items():
            submission = cases[number % len(cases)]
            submission.write(root, name)
            expected[(name, assignment)] = submission.expected
    return expected


def cpu() -> str:
    """The CPU's model name (Linux), else the platform's word for it."""
    try:
        return next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                    if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or "unknown CPU"


def main(argv: list[str] | None = None) -> int:
    """Grade a generated class once; print its submissions per minute."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=100, help="students in the class (default 100)")
    parser.add_argument("--jobs", type=int, default=None, help="parallel workers (default: one per core)")
    args = parser.parse_args(argv)
    if args.students < 1 or (args.jobs is not None and args.jobs < 1):
        parser.error("--students and --jobs must be at least 1")
    with tempfile.TemporaryDirectory(prefix="convcourse-round-") as folder:
        root = Path(folder) / "course"
        root.mkdir()
        shutil.copy2(ROOT / "nbgrader_config.py", root)
        for part in ("source", "release"):
            shutil.copytree(ROOT / part, root / part, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
        course = load_course(root)
        expected = hand_in_class(root, course.assignments, args.students)
        print(f"{cpu()}, {os.cpu_count()} cores: grading {len(expected)} submissions of {args.students} students",
              flush=True)
        report = pipeline.grade(course, workers=args.jobs, log=lambda line: None, live=False)
        scores = autograded_scores(root)
        wrong = [pair for pair, score in expected.items() if scores.get(pair, (None,))[0] != score]
        for student, assignment in wrong[:10]:
            print(f"unexpected: {student}/{assignment}: got {scores.get((student, assignment), (None,))[0]}, "
                  f"expected {expected[(student, assignment)]:g}")
        per_assignment = {}
        for result in report.graded:
            per_assignment.setdefault(result.job.assignment, []).append(result.seconds)
        for assignment, seconds in per_assignment.items():
            print(f"  {assignment}: {len(seconds)} jobs, mean {sum(seconds) / len(seconds):.2f} s a job")
        graded = len(report.graded)
        print(f"class_round students={args.students} submissions={graded} seconds={report.seconds:.0f} "
              f"per_minute={60 * graded / report.seconds:.1f} grader_share={report.grader_seconds / report.seconds:.3f} "
              f"wrong={len(wrong)}")
    return 1 if wrong else 0


if __name__ == "__main__":
    raise SystemExit(main())

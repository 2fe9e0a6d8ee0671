"""The grader's own seconds per submission as the class grows: prepare, pack, unpack and merge, no kernels.

    .venv/bin/python benchmarks/class_scale.py [--sizes 10 300 1000] [--samples 5]

Copies the course (nbgrader_config.py and source/), syncs its gradebook, then grows the class in the
gradebook to each size: every student with a submission of every assignment, made by nbgrader's own
ORM, so the gradebook holds the rows real rounds leave. At each size it times, for ``--samples``
submissions, what the grader does alone for one submission of a round on a Dask cluster: build the
job's scratch course (``jobs.prepare``), pack it for the worker, unpack the worker's result, and
merge the scores into the course (``gradebook.merge``, into the gradebook opened once, as a round
does). What a worker does in between is not timed: the job's scores are written into its scratch
gradebook with nbgrader's ORM, as autograde writes them (no notebook runs). The median of the
samples is the figure. The last line is ``grader_seconds_per_submission n10=<a> n300=<b> n1000=<c>``.
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
import warnings
from pathlib import Path

from convcourse.grading.course.folder import Course, load_course, sync_gradebook
from convcourse.grading.course.gradebook import GRADEBOOK, merge, opened
from convcourse.grading.rounds.cluster import pack, unpack
from convcourse.grading.rounds.jobs import RESULT, prepare

ROOT = Path(__file__).resolve().parent.parent


def student(number: int) -> str:
    return f"student{number:04d}"


def grow_class(course: Course, start: int, stop: int) -> None:
    """Students ``start`` .. ``stop - 1``, each with a submission of every assignment, in the course's gradebook."""
    from nbgrader.api import Gradebook

    with warnings.catch_warnings(), Gradebook(f"sqlite:///{course.gradebook}") as gradebook:
        warnings.simplefilter("ignore")  # nbgrader's own session handling: SQLAlchemy's harmless warnings
        for number in range(start, stop):
            gradebook.update_or_create_student(student(number))
            for assignment in course.assignments:
                gradebook.add_submission(assignment, student(number))


def hand_in(course: Course, name: str, assignment: str) -> None:
    """A submission folder for ``name``: the source notebook, as prepare copies what is there."""
    folder = course.root / "submitted" / name / assignment
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy2(course.root / "source" / assignment / f"{assignment}.ipynb", folder)


def job_scores(workdir: Path, name: str, assignment: str) -> None:
    """The worker's part, untimed: full marks recorded in the job's scratch gradebook, as autograde records them."""
    from nbgrader.api import Gradebook

    with warnings.catch_warnings(), Gradebook(f"sqlite:///{workdir / GRADEBOOK}") as gradebook:
        warnings.simplefilter("ignore")
        gradebook.update_or_create_student(name)
        submission = gradebook.update_or_create_submission(assignment, name)
        for notebook in submission.notebooks:
            for grade in notebook.grades:
                grade.auto_score = grade.max_score
        gradebook.db.commit()
    (workdir / "autograded" / name / assignment).mkdir(parents=True, exist_ok=True)


def one_submission(course: Course, live, name: str, assignment: str, scratch: Path) -> float:
    """The grader's seconds for one submission of a cluster round (the worker's part not counted)."""
    began = time.perf_counter()
    job = prepare(course, name, assignment, scratch / "grader", timeout=600)
    packed = pack(job.workdir)
    grader = time.perf_counter() - began
    worker = scratch / "worker"
    unpack(packed, worker)
    job_scores(worker, name, assignment)
    result = pack(worker, RESULT)
    began = time.perf_counter()
    unpack(result, job.workdir)
    merge(live, course.root, job.workdir, name, assignment)
    grader += time.perf_counter() - began
    shutil.rmtree(scratch)
    return grader


def main(argv: list[str] | None = None) -> int:
    """Print the grader's seconds per submission for each class size."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 300, 1000], help="class sizes, ascending")
    parser.add_argument("--samples", type=int, default=5, help="submissions timed at each size (default 5)")
    args = parser.parse_args(argv)
    if sorted(args.sizes) != args.sizes or args.sizes[0] < 1 or args.samples < 1:
        parser.error("--sizes must be ascending and positive, --samples at least 1")
    figures = {}
    with tempfile.TemporaryDirectory(prefix="convcourse-class-") as folder:
        root = Path(folder) / "course"
        root.mkdir()
        shutil.copy2(ROOT / "nbgrader_config.py", root)
        shutil.copytree(ROOT / "source", root / "source", ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
        course = load_course(root)
        sync_gradebook(course)
        grown = 0
        for size in args.sizes:
            began = time.perf_counter()
            grow_class(course, grown, size)
            grown = size
            seconds = []
            with opened(course.gradebook) as live:  # as a round opens it: once
                for sample in range(args.samples):
                    name = student(sample * size // args.samples)
                    assignment = course.assignments[sample % len(course.assignments)]
                    hand_in(course, name, assignment)
                    seconds.append(one_submission(course, live, name, assignment, Path(folder) / "jobs"))
            figures[size] = statistics.median(seconds)
            print(f"n={size}: gradebook {course.gradebook.stat().st_size / 2**20:.1f} MiB, grader "
                  f"{figures[size]:.3f} s per submission (samples {', '.join(f'{s:.3f}' for s in seconds)}; "
                  f"class grown in {time.perf_counter() - began:.0f} s)", flush=True)
    print("grader_seconds_per_submission " + " ".join(f"n{size}={value:.4f}" for size, value in figures.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""run_jobs: a worker is a slot for notebooks, freed when a job's kernels are done, not when the job ends."""
from __future__ import annotations

import time
from pathlib import Path

from convcourse.grading.rounds import jobs

TAIL = 1.0  # seconds a job goes on after its notebooks (its feedback page); room for a fork on a loaded machine


def _start(scratch: Path):
    def start(name: str) -> jobs.Job:
        workdir = scratch / name
        workdir.mkdir()
        return jobs.Job("student", name, workdir, timeout=30)
    return start


def _releasing(job: jobs.Job) -> int:
    (job.workdir / "began").write_text(repr(time.time()))
    time.sleep(0.2)  # its notebooks
    jobs.release_slot()
    time.sleep(TAIL)
    (job.workdir / "ended").write_text(repr(time.time()))
    return 0


def _holding(job: jobs.Job) -> int:
    (job.workdir / "began").write_text(repr(time.time()))
    time.sleep(0.2 + TAIL)
    (job.workdir / "ended").write_text(repr(time.time()))
    return 0


def _run(tmp_path: Path, grade, workers: int = 1) -> dict[str, tuple[float, float]]:
    times = {}

    def done(result: jobs.Result) -> None:
        assert result.ok, result.problem
        workdir = result.job.workdir
        times[result.job.assignment] = (float((workdir / "began").read_text()), float((workdir / "ended").read_text()))

    jobs.run_jobs(["a", "b", "c"], workers, _start(tmp_path), grade, on_done=done)
    return times


def test_the_next_job_starts_when_the_last_one_releases_its_slot(tmp_path):
    times = _run(tmp_path, _releasing)
    assert times["a"][0] < times["b"][0] < times["a"][1]  # b began during a's tail
    assert times["b"][0] < times["c"][0] < times["b"][1]
    assert times["c"][0] > times["a"][0] + 0.2 and times["b"][0] > times["a"][0] + 0.2  # never two at their notebooks


def test_a_job_that_never_releases_its_slot_holds_it_until_it_ends(tmp_path):
    times = _run(tmp_path, _holding)
    assert times["a"][1] <= times["b"][0] and times["b"][1] <= times["c"][0]


def test_a_job_killed_at_its_time_limit_frees_its_slot(tmp_path):
    def start(name: str) -> jobs.Job:
        (tmp_path / name).mkdir()
        return jobs.Job("student", name, tmp_path / name, timeout=0.5 if name == "a" else 30)

    def grade(job: jobs.Job) -> int:
        time.sleep(60 if job.assignment == "a" else 0)
        return 0

    began = time.monotonic()
    results = jobs.run_jobs(["a", "b"], 1, start, grade)
    assert time.monotonic() - began < 10
    assert [(r.job.assignment, r.killed, r.ok) for r in results] == [("a", True, False), ("b", False, True)]

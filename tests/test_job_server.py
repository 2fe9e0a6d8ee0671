"""The fork server of a Dask worker's jobs: a job per fork, the course pickled to it, its log, its time limit, its end
with the worker (~10 s)."""
from __future__ import annotations

import os
import shutil
import sys

import nbformat
import pytest
from tiny_course import ASSIGNMENT, make_course

from convcourse.grading import sandbox
from convcourse.grading.course.folder import load_course
from convcourse.grading.course.gradebook import GRADEBOOK
from convcourse.grading.rounds import jobs
from convcourse.grading.rounds.job_server import JobServer

pytestmark = pytest.mark.skipif(not sandbox.sandbox_status().available, reason="jobs refuse to run without the sandbox")


@pytest.fixture(scope="module")
def server():
    started = JobServer()
    yield started
    started.process.stdin.close()  # as when the worker goes away
    assert started.process.wait(timeout=10) == 0


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    return load_course(make_course(tmp_path_factory.mktemp("served") / "course"))


def nothing_submitted(folder):
    """A job whose scratch course holds no submission: nbgrader refuses it."""
    folder.mkdir()
    return jobs.Job("nobody", ASSIGNMENT, folder, timeout=60)


def test_a_failed_job_fails_with_nbgraders_reason_in_its_log(server, course, tmp_path):
    job = nothing_submitted(tmp_path / "job")
    assert server.run(course, job) == 1
    assert "nobody" in (job.workdir / jobs.LOG_FILE).read_text()


def test_a_job_past_its_time_limit_is_killed_and_the_next_one_runs(server, course, tmp_path):
    stuck = jobs.Job("nobody", ASSIGNMENT, tmp_path / "stuck", timeout=1)
    submitted = stuck.workdir / "submitted" / "nobody" / ASSIGNMENT
    submitted.mkdir(parents=True)
    notebook = nbformat.read(course.root / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
    notebook.cells.insert(0, nbformat.v4.new_code_cell("import time\ntime.sleep(60)"))
    nbformat.write(notebook, submitted / f"{ASSIGNMENT}.ipynb")
    shutil.copy(course.gradebook, stuck.workdir / GRADEBOOK)
    assert server.run(course, stuck) is None
    assert server.run(course, nothing_submitted(tmp_path / "next")) == 1


def test_a_jobs_log_keeps_what_was_written_before_nbgrader_ran(course, tmp_path):
    job = nothing_submitted(tmp_path / "job")
    pid = os.fork()
    if pid == 0:  # as a forked job starts: its log captured once, then whatever it runs writes there
        sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__  # file descriptors 1 and 2, not pytest's capture
        jobs.capture_log(job.workdir)
        print("written first", flush=True)
        os._exit(jobs.autograde(course, job))
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 1
    log = (job.workdir / jobs.LOG_FILE).read_text()
    assert log.startswith("written first") and "nobody" in log

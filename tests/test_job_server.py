"""The fork server of a Dask worker's jobs: a job per fork, its log, its time limit, its end with the worker (~3 s)."""
from __future__ import annotations

import pytest

from convcourse.grading import sandbox
from convcourse.grading.rounds.job_server import JobServer

pytestmark = pytest.mark.skipif(not sandbox.sandbox_status().available, reason="jobs refuse to run without the sandbox")


@pytest.fixture(scope="module")
def server():
    started = JobServer()
    yield started
    started.process.stdin.close()  # as when the worker goes away
    assert started.process.wait(timeout=10) == 0


def test_a_broken_job_fails_with_its_reason_in_its_log(server, tmp_path):
    (tmp_path / "nbgrader_config.py").write_text("raise RuntimeError('this course is broken')\n")
    assert server.run(tmp_path, "student", "assignment", {}, timeout=60) == 1
    assert "this course is broken" in (tmp_path / "job.log").read_text()


def test_a_job_past_its_time_limit_is_killed_and_the_next_one_runs(server, tmp_path):
    slow, broken = tmp_path / "slow", tmp_path / "broken"
    slow.mkdir(), broken.mkdir()
    (slow / "nbgrader_config.py").write_text("import time\ntime.sleep(60)\n")
    (broken / "nbgrader_config.py").write_text("raise RuntimeError('next')\n")
    assert server.run(slow, "student", "assignment", {}, timeout=1) is None
    assert server.run(broken, "student", "assignment", {"CONVCOURSE_EXTRA": "x"}, timeout=60) == 1

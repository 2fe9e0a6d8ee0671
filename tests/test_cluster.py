"""Grading through a real Dask cluster on loopback: a scheduler and two workers, one killed mid-job.

The same submissions of the tiny course are graded twice, locally and through the cluster: every
score, grades.csv and the feedback files must agree, and each submission must be merged exactly once
although the worker running one of them dies mid-job. About 45 s on 2 cores.
"""
from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from test_grading import GRADING_ENV, course_dir, run_grade
from tiny_course import ASSIGNMENT, make_course

from convcourse.grading import sandbox
from convcourse.grading.course.report import autograded_scores
from convcourse.grading.demo import samples
from convcourse.grading.rounds.cluster import pack, unpack

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not sandbox.sandbox_status().available,
                                                  reason=f"sandbox unavailable: {sandbox.sandbox_status().reason}")]
distributed = pytest.importorskip("distributed")
CASES = ("full", "blank", "partial", "loop")  # the loop holds its job for the cell time limit: time to kill it


def start(*args: str, log: Path, tmp: Path) -> subprocess.Popen:
    """A `dask ...` process in a session of its own (so it can be killed with its children, like a machine)."""
    return subprocess.Popen([sys.executable, "-m", "dask", *args], stdout=log.open("w"), stderr=subprocess.STDOUT,
                            start_new_session=True, env={**os.environ, **GRADING_ENV, "TMPDIR": str(tmp)})


def kill(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(timeout=30)


@pytest.fixture
def cluster(tmp_path):
    """A scheduler on 127.0.0.1 and two single-thread workers without nannies: killing one kills it for good."""
    info = tmp_path / "scheduler.json"
    # The machines' TMPDIR: a killed one leaves its scratch folders (job, kernel template) behind, as a real one would.
    scratch = Path(tempfile.mkdtemp(prefix="cc-cluster-"))  # short: Unix socket paths are at most 107 bytes
    processes = [start("scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                       "--scheduler-file", str(info), log=tmp_path / "scheduler.log", tmp=scratch)]
    deadline = time.monotonic() + 60
    while not info.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    address = json.loads(info.read_text())["address"]
    workers = [start("worker", address, "--nthreads", "1", "--no-nanny", "--no-dashboard", "--name", f"w{i}",
                     "--local-directory", str(tmp_path / f"w{i}"), log=tmp_path / f"w{i}.log", tmp=scratch)
               for i in range(2)]
    processes += workers
    with distributed.Client(address, timeout="30s") as client:
        client.wait_for_workers(2, timeout=60)
    try:
        yield address, dict(zip(("w0", "w1"), workers))
    finally:
        for process in processes:
            kill(process)
        shutil.rmtree(scratch, ignore_errors=True)


def test_pack_keeps_files_and_refuses_links(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "f.txt").write_text("x")
    (tmp_path / "a" / "link").symlink_to("/etc/passwd")
    unpack(pack(tmp_path / "a"), tmp_path / "out")
    assert (tmp_path / "out" / "b" / "f.txt").read_text() == "x" and not (tmp_path / "out" / "link").exists()


def submit(root: Path) -> list[samples.Submission]:
    ctx = samples.context(root, ASSIGNMENT)
    made = [samples.build(ctx, case) for case in CASES]
    for submission in made:
        submission.write(root)
    return made


def csv_rows(root: Path) -> list[dict]:
    with open(root / "grades.csv") as handle:
        return sorted(({k: v for k, v in row.items() if k != "timestamp"} for row in csv.DictReader(handle)),
                      key=lambda row: (row["student_id"], row["assignment"]))


def test_a_cluster_grades_like_local_workers_even_when_a_worker_dies(cluster, tmp_path):
    address, workers = cluster
    folder = course_dir("convcourse-cluster-")
    try:
        local, remote = make_course(folder / "local"), make_course(folder / "remote")
        made = submit(local)
        submit(remote)
        run_grade(local, "--jobs", "2")

        grading = subprocess.Popen([sys.executable, "-m", "convcourse.grading", "--root", str(remote), "grade",
                                    "--scheduler", address], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   text=True, env={**os.environ, **GRADING_ENV})
        victim = None
        with distributed.Client(address, timeout="30s") as client:
            deadline = time.monotonic() + 120
            while victim is None and time.monotonic() < deadline and grading.poll() is None:
                for worker, keys in client.processing().items():
                    if any("-loop-" in str(key) for key in keys):
                        victim = client.scheduler_info()["workers"][worker]["name"]
                time.sleep(0.2)
        assert victim is not None, "the loop's job was never seen running"
        kill(workers[victim])
        output, _ = grading.communicate(timeout=600)
        assert grading.returncode == 0, output[-3000:]

        assert "on the Dask cluster at" in output
        assert "a kernel started cold" not in output  # each worker forked its kernels from a template of its own
        assert f"kernels: {len(made)} forked warm from the template, 0 started cold" in output, output[-3000:]
        lines = [line for line in output.splitlines() if line.startswith("  ") and f"/{ASSIGNMENT}: " in line]
        assert sorted(line.split(":")[0].strip() for line in lines) == sorted(f"{s.student}/{ASSIGNMENT}" for s in made)
        local_scores, remote_scores = autograded_scores(local), autograded_scores(remote)
        assert remote_scores == local_scores
        assert {key: score for key, (score, _) in remote_scores.items()} == \
               {(s.student, ASSIGNMENT): s.expected for s in made}
        assert csv_rows(remote) == csv_rows(local)
        for submission in made:
            feedback = remote / "feedback" / submission.student / ASSIGNMENT / f"{ASSIGNMENT}.html"
            assert feedback.is_file(), feedback
    finally:
        shutil.rmtree(folder, ignore_errors=True)

"""Grading through a Dask scheduler with 1, then 2 workers on this machine: how a round scales with workers.

    .venv/bin/python benchmarks/cluster_scaling.py [--students 1] [--workers 1 2] [--cores-per-worker 1]

Starts `dask scheduler` on 127.0.0.1 and the given numbers of single-thread workers (no nanny), each
standing for a machine of ``--cores-per-worker`` cores (its kernels' OMP_NUM_THREADS: without it, two
workers on one machine would each run torch on all its cores and only share them), and
grades the same full-solution submissions (every assignment, ``--students`` students) through them
with ``grade(..., scheduler=ADDRESS)``. Prints each round's seconds, the grader's own serial seconds
per submission (preparing, packing, merging: the part more workers cannot shorten), and as its last
line ``cluster_seconds workers1=<a> workers2=<b> speedup=<a/b>``. Same data and training budget rules
as benchmarks/grading_speed.py.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from grading_speed import course_copy, hand_in

from convcourse.grading.course.report import autograded_scores
from convcourse.grading.rounds.pipeline import grade


def start_cluster(folder: Path, workers: int, cores: int) -> tuple[str, list[subprocess.Popen]]:
    """A loopback scheduler and ``workers`` single-thread workers of ``cores`` torch threads; (address, processes)."""
    info = folder / f"scheduler-{workers}.json"
    dask = [sys.executable, "-m", "dask"]
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "start_new_session": True}
    processes = [subprocess.Popen([*dask, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                                   "--scheduler-file", str(info)], **quiet)]
    while not info.exists():
        time.sleep(0.2)
    address = json.loads(info.read_text())["address"]
    threads = {name: str(cores) for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    processes += [subprocess.Popen([*dask, "worker", address, "--nthreads", "1", "--no-nanny", "--no-dashboard",
                                    "--local-directory", str(folder / f"w{workers}-{i}")], **quiet,
                                   env={**os.environ, **threads})
                  for i in range(workers)]
    from distributed import Client

    with Client(address, timeout="30s") as client:
        client.wait_for_workers(workers, timeout=120)
    return address, processes


def stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def main(argv: list[str] | None = None) -> int:
    """Print the seconds of one round per worker count, and the speed-up."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=1, help="students in the class (default 1)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts (default 1 2)")
    parser.add_argument("--cores-per-worker", type=int, default=1, help="torch threads of each worker's kernels")
    args = parser.parse_args(argv)
    if args.cores_per_worker < 1:
        parser.error("--cores-per-worker must be at least 1")
    print(f"{os.cpu_count()} cores, {args.cores_per_worker} per worker, load average {os.getloadavg()[0]:.1f} at start",
          flush=True)
    seconds = {}
    with tempfile.TemporaryDirectory(prefix="convcourse-cluster-bench-") as scratch:
        root = course_copy(Path(scratch) / "course")
        expected = hand_in(root, args.students)
        for count in args.workers:
            address, processes = start_cluster(Path(scratch), count, args.cores_per_worker)
            try:
                started = time.monotonic()
                report = grade(root, force=True, scheduler=address, log=lambda *_: None, live=False)
                seconds[count] = time.monotonic() - started
            finally:
                stop(processes)
            scores = autograded_scores(root)
            wrong = {k: (scores.get(k), v) for k, v in expected.items() if scores.get(k, (None,))[0] != v}
            if wrong:
                raise SystemExit(f"benchmark invalid, scores differ from the full marks: {wrong}")
            print(f"{count} worker(s): {seconds[count]:6.1f} s for {len(expected)} submissions; the grader's own "
                  f"share {report.grader_seconds / len(expected):.2f} s per submission", flush=True)
    line = " ".join(f"workers{count}={value:.1f}" for count, value in seconds.items())
    if len(seconds) > 1:
        first, last = seconds[args.workers[0]], seconds[args.workers[-1]]
        line += f" speedup={first / last:.2f}"
    print(f"cluster_seconds {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

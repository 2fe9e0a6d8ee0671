"""A fork server for a Dask worker's grading jobs: nbgrader imported and the sandbox probed once, one fork per job.

Local grading forks its jobs from the grader, which has imported nbgrader already. A Dask worker
cannot: it is multi-threaded (forking it is unsafe) and, started by a nanny, daemonic (so
``multiprocessing`` may not start children from it). So each worker starts this small server once
(``python -m convcourse.grading.rounds.job_server``, single-threaded, it reads requests from stdin), and the
server forks a child per job that runs :func:`convcourse.grading.rounds.jobs.on_worker` with the round's
course, pickled into the request. Replies are ``ID EXIT-STATUS`` lines on stdout; a job past its time
limit is killed and reported as ``ID killed``. When the worker goes away (stdin closes) the server kills
its jobs and ends.
"""
from __future__ import annotations

import base64
import contextlib
import importlib
import itertools
import json
import os
import pickle
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from convcourse.grading.course.gradebook import GRADEBOOK
from convcourse.grading.rounds import preload

KILLED = "killed"
# What a job imports, loaded before the first fork (a job's config names the convcourse ones).
PRELOAD = ("nbgrader.apps", "nbgrader.converters", "convcourse.grading.nbgrader.preprocessors",
           "convcourse.grading.nbgrader.kernel_manager", "convcourse.grading.rounds.jobs")


class JobServer:
    """The worker's side: one server process, any number of threads asking it for jobs."""

    def __init__(self) -> None:
        self.process = subprocess.Popen([sys.executable, "-m", __name__], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True, bufsize=1)
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._done: dict[int, str] = {}
        self._arrived = threading.Condition(self._lock)
        threading.Thread(target=self._read, daemon=True, name="convcourse job server replies").start()

    def _read(self) -> None:
        for line in self.process.stdout:
            number, _, status = line.strip().partition(" ")
            with self._arrived:
                self._done[int(number)] = status
                self._arrived.notify_all()
        with self._arrived:  # the server is gone: nobody will answer the jobs still waiting
            self._done[0] = "gone"
            self._arrived.notify_all()

    def alive(self) -> bool:
        """Whether the server still runs."""
        return self.process.poll() is None

    def run(self, course, job, template: str = "") -> int | None:
        """Run one job of ``course`` (:class:`~convcourse.grading.course.folder.Course`, a :class:`~.jobs.Job`), its
        kernels forked from ``template`` ('': cold); its exit status, or None when it was killed at its timeout
        (RuntimeError if the server died)."""
        number = next(self._ids)
        task = base64.b64encode(pickle.dumps((course, job, template))).decode()
        request = {"id": number, "task": task, "timeout": job.timeout}
        with self._arrived:
            self.process.stdin.write(json.dumps(request) + "\n")
            self.process.stdin.flush()
            while number not in self._done and 0 not in self._done:
                self._arrived.wait(1.0)
            status = self._done.pop(number, None)
        if status is None:
            raise RuntimeError("the grading job server of this worker died")
        return None if status == KILLED else int(status)


def _child(course, job, template: str) -> None:
    """In the forked child: the job's log, then the job itself; never returns."""
    from convcourse.grading.rounds import jobs

    code = 1
    try:
        jobs.capture_log(job.workdir)  # stdout was the server's reply pipe: nothing of the job lands there
        code = jobs.on_worker(course, job, template)
    except BaseException:  # noqa: BLE001 - the worker reads job.log
        import traceback

        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def serve() -> None:
    """Read requests from stdin, fork a child per request, report each end on stdout."""
    running: dict[int, tuple[int, float]] = {}  # pid -> (request id, deadline)
    pending, open_input, preloaded = b"", True, False
    while open_input or running:
        ready, _, _ = select.select([0] if open_input else [], [], [], 0.1)
        if ready:  # raw reads: a buffered reader could hold a request that select() no longer reports
            chunk = os.read(0, 1 << 16)
            pending += chunk
            if not chunk:
                open_input = False
                for pid in running:  # the worker is gone: so are its jobs
                    os.kill(pid, signal.SIGKILL)
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            request = json.loads(line)
            course, job, template = pickle.loads(base64.b64decode(request["task"]))
            if not preloaded:  # with the first job's scratch copy of the gradebook: the course's is on the grader
                with contextlib.redirect_stdout(sys.stderr):  # stdout carries the replies
                    preload.pay_once(course, Path(job.workdir) / GRADEBOOK)
                preloaded = True
            sys.stdout.flush()
            pid = os.fork()
            if pid == 0:
                _child(course, job, template)
            running[pid] = (request["id"], time.monotonic() + float(request["timeout"]))
        for pid, (number, deadline) in list(running.items()):
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                del running[pid]
                _reply(number, KILLED, open_input)
                continue
            done, status = os.waitpid(pid, os.WNOHANG)
            if done == pid:
                del running[pid]
                _reply(number, str(os.waitstatus_to_exitcode(status)), open_input)


def _reply(number: int, status: str, open_input: bool) -> None:
    if open_input:
        sys.stdout.write(f"{number} {status}\n")
        sys.stdout.flush()


def main() -> int:
    """Preload what every job imports and probe the sandbox once, then serve."""
    for name in PRELOAD:  # imported once, here, for every forked job: what they import is not this server's business
        importlib.import_module(name)
    from convcourse.grading import sandbox

    sandbox.sandbox_status()  # cached for every job
    serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())

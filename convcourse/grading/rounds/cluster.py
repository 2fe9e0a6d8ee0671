"""Grading jobs on a Dask cluster: the same scratch courses as local grading, shipped to workers and back.

``python -m convcourse.grading grade --scheduler tcp://HOST:8786`` (or ``$CONVCOURSE_SCHEDULER``) runs
each submission's job on a ``dask.distributed`` worker instead of a local process. Nothing assumes a
shared file system: the grader sends every worker the round's course (:class:`Course`: the config as
loaded, with its limits, and the forwarded settings) once, and packs each job's scratch course (the
assignment's job gradebook, the submission: tens of KiB, whatever the class) into bytes; the worker
unpacks it into its own temporary folder, runs
``nbgrader autograde`` there in a child forked from the worker's job server
(:mod:`convcourse.grading.rounds.job_server`; sandboxed and time-limited exactly as locally, its kernels
forked from the worker's own kernel template, :mod:`convcourse.grading.nbgrader.kernel_template`), and sends
back packed what the job added (:data:`~convcourse.grading.rounds.jobs.RESULT`: its gradebook, autograded
notebook, feedback and log). The grader unpacks it where the local job would have left it and
merges it into the one gradebook, one job at a time, through the same code as local grading.

A worker that dies mid-job loses nothing: the scheduler runs the task again on another worker, and
the grader merges a job only when its task's result arrives, so each submission is merged once.
Tasks are pure (packed course in, packed result out), so running one twice is harmless.
"""
from __future__ import annotations

import atexit
import io
import os
import shutil
import socket
import tarfile
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

from convcourse.grading import sandbox, settings
from convcourse.grading.course.folder import Course
from convcourse.grading.nbgrader import kernel_python, kernel_template
from convcourse.grading.rounds import jobs
from convcourse.grading.rounds.job_server import JobServer
from convcourse.grading.rounds.jobs import Job, Result, job_result, killed_result

SCHEDULER_ENV = settings.SCHEDULER.name


def pack(folder: Path, only: tuple[str, ...] = ()) -> bytes:
    """A folder's regular files and folders (or those of its entries named in ``only``) as gzipped tar bytes
    (links and devices are left out)."""
    buffer = io.BytesIO()
    # Level 1: a job's gradebook and notebooks shrink almost as much as at gzip's default 9, several times faster.
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=1) as tar:
        for path in sorted(Path(folder).rglob("*")):
            parts = path.relative_to(folder).parts
            if path.is_symlink() or not (path.is_file() or path.is_dir()) or (only and parts[0] not in only):
                continue
            tar.add(path, arcname=path.relative_to(folder).as_posix(), recursive=False)
    return buffer.getvalue()


def unpack(data: bytes, folder: Path) -> None:
    """Unpack :func:`pack`'s bytes into ``folder``, refusing anything that would land outside it."""
    folder.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        tar.extractall(folder, filter="data")  # the data filter refuses absolute paths, .., links and devices


class WorkerUnfit(RuntimeError):
    """This worker cannot grade (no sandbox, no MNIST): better no grade than a wrong one."""


_template: kernel_template.Template | None = None
_template_lock = threading.Lock()


def worker_template(course: Course) -> str:
    """On a worker: the folder of its kernel template (started by the first job, kept for the worker's life),
    which its jobs' kernel managers fork from; '' when kernels must start cold there."""
    global _template
    with _template_lock:
        if _template is not None and _template.process.poll() is not None:
            _template = None  # it died: start another
        if _template is None:
            if kernel_template.disabled({**os.environ, **course.forwarded}) or not sandbox.sandbox_status().available:
                return ""
            try:
                _template = kernel_template.start_template(kernel_python.hidden(course), wait=False)
            except (OSError, kernel_template.WarmKernelError):
                return ""
            atexit.register(kernel_template.stop_template, _template)
        return str(_template.folder)


_server: JobServer | None = None
_server_lock = threading.Lock()


def _job_server() -> JobServer:
    """This worker's job fork server (started by its first job, restarted if it died)."""
    global _server
    with _server_lock:
        if _server is None or not _server.alive():
            _server = JobServer()
        return _server


def grade_packed(packed: bytes, course: Course, student: str, assignment: str, timeout: float
                 ) -> tuple[bytes, bool, bool, float]:
    """On a worker: autograde one packed scratch course of ``course``; (packed result, ok, killed, seconds)."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="convcourse-worker-") as scratch:
        workdir = Path(scratch) / "job"
        unpack(packed, workdir)
        status = _job_server().run(course, Job(student, assignment, workdir, timeout), worker_template(course))
        if status == jobs.UNFIT:  # the task fails: the grader records nothing, the next round retries
            log_file = workdir / jobs.LOG_FILE
            log = log_file.read_text(errors="replace") if log_file.exists() else ""
            raise WorkerUnfit(f"worker {socket.gethostname()}: {log.strip()[-1500:]}")
        return pack(workdir, jobs.RESULT), status == 0, status is None, time.monotonic() - started


def run_jobs_on_cluster(course: Course, tasks: list, address: str, start: Callable[[object], Job],
                        on_done: Callable[[Result], None] | None = None, *, in_flight: int | None = None
                        ) -> list[Result]:
    """Like :func:`convcourse.grading.rounds.jobs.run_jobs`, with each job of ``course`` run on the Dask cluster
    at ``address``.

    The course goes to every worker once (scattered), not with every task. At most ``in_flight``
    jobs (default: twice the cluster's worker threads) are packed and queued at a time, so the
    grader's scratch space holds a few courses, not the whole class.
    """
    from distributed import Client, as_completed

    pending, results = list(tasks), []
    with Client(address, timeout="30s") as client:
        threads = sum(client.nthreads().values()) or 1
        limit = in_flight or 2 * threads
        running: dict = {}
        queue = as_completed()
        shipped = client.scatter(course, broadcast=True)

        def submit() -> None:
            job = start(pending.pop(0))
            future = client.submit(grade_packed, pack(job.workdir), shipped, job.student, job.assignment, job.timeout,
                                   key=f"grade-{job.student}-{job.assignment}-{time.time_ns()}")
            running[future.key] = job
            queue.add(future)

        while pending and len(running) < limit:
            submit()
        for future in queue:
            job = running.pop(future.key)
            result = _collect(job, future)
            results.append(result)
            if on_done is not None:
                on_done(result)
            shutil.rmtree(job.workdir, ignore_errors=True)
            while pending and len(running) < limit:
                submit()
    return results


def _collect(job: Job, future) -> Result:
    """Unpack a finished task's result over the job's scratch course, as the local job would have left it, and read it."""
    try:
        packed, ok, killed, seconds = future.result()
    except Exception as error:  # noqa: BLE001 - the task itself failed (not the notebook): report, grade later
        return Result(job, False, False, 0.0, f"the cluster could not run this job: {type(error).__name__}: {error}",
                      killed=True)
    unpack(packed, job.workdir)
    if killed:
        return killed_result(job, seconds)
    return job_result(job, ok, seconds)

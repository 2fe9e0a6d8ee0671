"""Autograde many submissions at once without sharing a gradebook: one working copy per job, merged one by one.

nbgrader grades one submission at a time against one SQLite gradebook. Here every
(student, assignment) submission gets its own scratch course (its assignment's job gradebook, which
holds that assignment and no student, so a job is the size of one submission whatever the size of
the class; the submission's regular files; the assignment's non-notebook source files), and ``nbgrader autograde``
(then ``generate_feedback``) runs there in a forked worker process (forked, so nbgrader's slow imports
are paid once) with the round's :class:`~convcourse.grading.course.folder.Course` config pointed at
the scratch course (:meth:`Course.job_config`): no job reads ``nbgrader_config.py`` or the grader's
environment again. Afterwards :func:`~convcourse.grading.course.gradebook.merge` copies the scores of that one
submission into the real gradebook and its autograded notebook and feedback into the real course, in
the parent, one job at a time. A job that crashes or runs out of time changes nothing in the real course.
"""
from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import shutil
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from convcourse.grading.course.folder import Course, GradingError, ensure_data
from convcourse.grading.course.gradebook import GRADEBOOK, nbgrader_api
from convcourse.grading.nbgrader import kernel_python
from convcourse.grading.nbgrader.kernel_template import COLD_START, WARM_START

SCRATCH_PREFIX = "convcourse-grade-"
STARTUP_SLACK = 120  # seconds a job may take beyond its notebooks' time limits
UNFIT = 3  # exit status of a job on a machine that cannot grade (:func:`main`)
LOG_FILE = "job.log"  # in the job's scratch course: everything the job printed
RESULT = (GRADEBOOK, "autograded", "feedback", LOG_FILE)  # what a job adds to its scratch course: all it brings back


@dataclass(frozen=True)
class Job:
    """One submission to autograde in its own scratch course."""

    student: str
    assignment: str
    workdir: Path
    timeout: float


@dataclass(frozen=True)
class Result:
    """How a job went: ``ok`` means nbgrader finished without error; ``graded`` that a score exists."""

    job: Job
    ok: bool
    graded: bool
    seconds: float
    problem: str
    killed: bool = False
    cold: str = ""  # why a kernel of this job started cold although the round had a warm template ('' if none did)
    warm: int = 0  # kernels of this job forked from a template


def copy_regular_files(source: Path, destination: Path, *, skip_notebooks: bool = False) -> None:
    """Copy files and folders only: a student's symlink or device file must not make root read elsewhere."""
    destination.mkdir(parents=True, exist_ok=True)
    if not source.is_dir():
        return
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source)
        if path.is_symlink() or ".ipynb_checkpoints" in relative.parts:
            continue
        if path.is_dir():
            (destination / relative).mkdir(parents=True, exist_ok=True)
        elif path.is_file() and not (skip_notebooks and path.suffix == ".ipynb"):
            (destination / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, destination / relative)


def prepare(course: Course, student: str, assignment: str, scratch: Path, timeout: float) -> Job:
    """Build the scratch course for one submission: its assignment's job gradebook (no student: the size of the
    class does not matter), the assignment's non-notebook source files, the submission's regular files."""
    root = course.root
    workdir = scratch / f"{student}--{assignment}"
    workdir.mkdir(parents=True)
    shutil.copyfile(course.job_gradebook(assignment), workdir / GRADEBOOK)
    copy_regular_files(root / "source" / assignment, workdir / "source" / assignment, skip_notebooks=True)
    copy_regular_files(root / "submitted" / student / assignment, workdir / "submitted" / student / assignment)
    return Job(student, assignment, workdir, timeout)


def capture_log(workdir: Path) -> None:
    """In a job's process, before anything else: stdin from /dev/null, stdout and stderr into the job's log.

    The one place a job's output is sent, for local jobs and a worker's alike (the grader reads it afterwards).
    """
    log = os.open(Path(workdir) / LOG_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    null = os.open(os.devnull, os.O_RDONLY)
    for fd, target in ((null, 0), (log, 1), (log, 2)):
        os.dup2(fd, target)
    os.close(log)
    os.close(null)


def autograde(course: Course, job: Job, *, isolate: bool | None = None, template: str = "") -> int:
    """Run nbgrader's autograde on the job's scratch course; 0 when it succeeded (its output: stdout).

    ``isolate``: the round's sandbox decision (None: the kernel manager probes); ``template``: the
    folder of the kernel template its kernels fork from ('': they start cold).
    """
    workdir, student, assignment = job.workdir, job.student, job.assignment
    code = 1
    try:
        os.chdir(workdir)
        _no_disk_syncs()
        api = nbgrader_api(course.job_config(workdir, hide=kernel_python.hidden(course, workdir), isolate=isolate,
                                             template=template))
        result = api.autograde(assignment, student, force=True, create=True)
        print(result.get("log", ""), result.get("error", ""), sep="\n", flush=True)
        code = 0 if result.get("success") else 1
        release_slot()  # its kernels are gone: the round may start the next job while this one writes feedback
        if (Path(workdir) / "autograded" / student / assignment).is_dir():
            # Here, in the worker, not in the grader afterwards: a class's feedback is made in parallel.
            made = api.generate_feedback(assignment, student, force=True)
            print(made.get("log", ""), made.get("error", ""), sep="\n", flush=True)
    except BaseException:  # noqa: BLE001 - whatever happened, the parent reads it from job.log
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    return code


def _no_disk_syncs() -> None:
    """No fsync per commit in this process: its only gradebook is the job's scratch copy, and nbgrader commits
    each grade on its own (a crash of the job still leaves a consistent file; only a crash of the machine would not)."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    if not event.contains(Engine, "connect", _synchronous_off):
        event.listen(Engine, "connect", _synchronous_off)


def _synchronous_off(connection, _record) -> None:
    connection.execute("PRAGMA synchronous=OFF")


_slot: int | None = None  # in a job forked by run_jobs: the pipe on which it says that its kernels are done


def release_slot() -> None:
    """In a job: its notebooks have run and their kernels are gone, so :func:`run_jobs` may start the next job
    while this one finishes (feedback page, exit). Does nothing in a job :func:`run_jobs` did not fork."""
    global _slot
    if _slot is not None:
        slot, _slot = _slot, None
        try:
            os.write(slot, b"\0")
        except OSError:  # the round has gone; the job's exit says the rest
            pass
        finally:
            os.close(slot)


def _work(grade: Callable[[Job], int], job: Job, slot: int) -> None:
    """In the forked worker process: ``grade`` the job with its output in its log, and exit with its status."""
    global _slot
    _slot = slot
    capture_log(job.workdir)
    os._exit(grade(job))


@dataclass
class _Running:
    """A job's process as :func:`run_jobs` follows it."""

    job: Job
    started: float
    slot: int | None  # the read end of its slot's pipe until the job releases the slot (or ends)

    def release(self) -> None:
        """The job released its slot (a byte) or ended (end of file): it no longer counts as a worker."""
        if self.slot is not None:
            os.close(self.slot)
            self.slot = None


def run_jobs(tasks: list, workers: int, start: Callable[[object], Job], grade: Callable[[Job], int],
             on_done: Callable[[Result], None] | None = None) -> list[Result]:
    """Run ``start(task)``'s jobs, ``grade(job)`` each, in forked processes, up to ``workers`` of them running
    notebooks at a time; kill any that outlive its timeout.

    ``start`` builds each job's scratch course just before it runs (in this process, one at a time),
    so the scratch space used is a few courses, not the whole class; ``on_done`` gets each result
    here too, in the order they finish, before the job's scratch course is deleted. A worker is a slot
    for notebooks: a job frees it when its kernels are done (:func:`release_slot`), so the next job's
    start overlaps the last one's feedback page, and up to ``2 * workers`` processes exist at once. A free
    worker also starts its next job before the finished one is merged: merging is this process's work.
    """
    context = multiprocessing.get_context("fork")
    pending, running, results = list(tasks), {}, []
    while pending or running:
        finished = []
        for process, state in list(running.items()):
            elapsed = time.monotonic() - state.started
            if process.is_alive() and elapsed > state.job.timeout:
                process.kill()
                process.join()
                finished.append(killed_result(state.job, elapsed))
            elif not process.is_alive():
                process.join()
                finished.append(job_result(state.job, process.exitcode == 0, elapsed))
            else:
                continue
            state.release()
            del running[process]
        while (pending and sum(state.slot is not None for state in running.values()) < max(1, workers)
               and len(running) < 2 * max(1, workers)):
            job = start(pending.pop(0))
            sys.stdout.flush()  # or the fork would carry unwritten output into the worker
            sys.stderr.flush()
            slot, job_end = os.pipe()
            process = context.Process(target=_work, args=(grade, job, job_end), name=f"grade {job.student}/{job.assignment}")
            try:
                process.start()
            except BaseException:
                os.close(slot)
                raise
            finally:
                os.close(job_end)
            running[process] = _Running(job, time.monotonic(), slot)
        for result in finished:
            results.append(result)
            if on_done is not None:
                on_done(result)
            shutil.rmtree(result.job.workdir, ignore_errors=True)
        if running and not finished:
            deadline = min(state.started + state.job.timeout for state in running.values())
            slots = {state.slot: state for state in running.values() if state.slot is not None}
            ready = multiprocessing.connection.wait([*(p.sentinel for p in running), *slots],
                                                    timeout=max(0.0, min(1.0, deadline - time.monotonic())))
            for fd in ready:
                if fd in slots:
                    slots[fd].release()
    return results


def killed_result(job: Job, seconds: float) -> Result:
    """A job stopped at its time limit: no score recorded (its gradebook may be half-written)."""
    return Result(job, False, False, seconds, f"killed after {job.timeout:.0f} s (job time limit)", killed=True)


def job_result(job: Job, ok: bool, seconds: float) -> Result:
    """How a finished job went, read from its scratch course (and its log when it failed)."""
    graded = (job.workdir / "autograded" / job.student / job.assignment).is_dir()
    folder = job.workdir / "submitted" / job.student / job.assignment
    log = job.workdir / LOG_FILE
    text = log.read_text(errors="replace") if log.exists() else ""
    problem = "" if ok else diagnose(folder, job.assignment) or _problem(text)
    return Result(job, ok, graded, seconds, problem, cold=_cold_start(text), warm=text.count(WARM_START))


def _cold_start(log: str) -> str:
    """The kernel manager's reason for a cold start in a job's log, if it had to fall back to one."""
    return next((line.split(COLD_START, 1)[1].strip(" :") for line in log.splitlines() if COLD_START in line), "")


def diagnose(folder: Path, assignment: str) -> str:
    """What is wrong with a submission folder nbgrader could not grade, in the student's terms ('' if unclear)."""
    import nbformat

    expected = f"{assignment}.ipynb"
    notebooks = sorted(p.name for p in Path(folder).glob("*.ipynb"))
    if expected not in notebooks:
        found = f"found {', '.join(notebooks)}" if notebooks else "found no notebook at all"
        return f"no {expected} in the submission ({found}); scored 0"
    try:
        nbformat.read(Path(folder) / expected, as_version=4)
    except Exception as error:  # noqa: BLE001 - any reason it cannot be read is the answer
        return f"{expected} cannot be read as a notebook ({type(error).__name__}: {str(error)[:120]}); scored 0"
    return ""


def _problem(log: str) -> str:
    """The most telling line of a failed job's log (the last exception, or nbgrader's last error)."""
    lines = log.splitlines()
    for line in reversed(lines):
        stripped = line.strip()
        if stripped and ("Error:" in stripped or "Exception:" in stripped) and not stripped.startswith("File "):
            return stripped[:300]
    errors = [line for line in lines if "ERROR" in line]
    return (errors[-1] if errors else "nbgrader failed without a message; see job.log")[:300]


def on_worker(course: Course, job: Job, template: str = "") -> int:
    """One job on a machine of its own (a Dask worker's job server runs it), with its output in its log.

    Checks first what the grader checked for local jobs (the sandbox, MNIST on disk); exit status
    UNFIT when this machine cannot grade, so that no zero is recorded for want of a sandbox or data.
    """
    from convcourse.grading import sandbox, settings

    try:
        isolate = sandbox.require_sandbox(course.allow_unsandboxed)
        ensure_data(course.forwarded.get(settings.DATASET.name))
    except (sandbox.SandboxUnavailable, GradingError) as error:
        print(error, file=sys.stderr, flush=True)
        return UNFIT
    return autograde(course, job, isolate=isolate, template=template)

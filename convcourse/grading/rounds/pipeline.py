"""One grade round over a course, and the demo that grades generated samples (``make grade``, ``make demo``).

``grade`` autogrades everything in ``submitted/<student>/<assignment>/`` in the sandbox, in parallel,
skipping submissions unchanged since they were last graded; then it writes feedback HTML for what
it graded, exports ``grades.csv`` and prints each student's autograded score per assignment. The
gradebook is created on demand and kept in step with ``source/`` by nbgrader itself.
``demo`` regenerates ``release/``, writes the example submissions of :mod:`convcourse.grading.demo.samples` into
``submitted/``, runs ``grade`` and checks every score against the one the examples expect.
"""
from __future__ import annotations

import fcntl
import json
import os
import tempfile
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

import nbformat

from convcourse.grading import sandbox, settings
from convcourse.grading.course import release
from convcourse.grading.course.deadlines import PenaltyChange, apply_penalties, late_penalties
from convcourse.grading.course.deadlines import sync as sync_deadlines
from convcourse.grading.course.folder import Course, GradingError, ensure_data, load_course, submissions, sync_gradebook
from convcourse.grading.course.gradebook import merge, opened, venv_on_path
from convcourse.grading.course.report import autograded_scores, export, feedback, table
from convcourse.grading.demo import samples
from convcourse.grading.nbgrader import kernel_python
from convcourse.grading.nbgrader.kernel_template import warm_template
from convcourse.grading.rounds.cluster import run_jobs_on_cluster
from convcourse.grading.rounds.jobs import (
    SCRATCH_PREFIX,
    STARTUP_SLACK,
    Job,
    Result,
    autograde,
    prepare,
    run_jobs,
)
from convcourse.grading.rounds.preload import pay_once
from convcourse.grading.rounds.progress import Progress, submission_line
from convcourse.grading.rounds.regrade import TESTS_KEY, new_tests, score_change, submission_digest, tests_digest
from convcourse.mnist_files import DATA_ENV

STATE_FILE = ".convcourse-graded.json"  # in autograded/: digest of each submission as last graded
_USER_THREADS = os.environ.get("OMP_NUM_THREADS")  # as the instructor set it, before any round changed it


@dataclass
class Round:
    """What one ``grade`` run did."""

    course: Course | None = None  # the course as the round loaded it
    graded: list[Result] = field(default_factory=list)
    unchanged: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)  # scores and late penalties that changed, from what to what
    seconds: float = 0.0
    grader_seconds: float = 0.0  # spent by this process preparing and merging jobs: the part no worker can share


def prepare_environment(course: Course, workers: int) -> bool:
    """Check the sandbox (raising SandboxUnavailable unless the course allows going on) and set what graded
    kernels inherit from this process (through kernel_env's allow-list); whether kernels are isolated."""
    isolated = sandbox.require_sandbox(course.allow_unsandboxed)
    venv_on_path()
    if os.environ.get(DATA_ENV):  # relative to where grading was started, not to a worker's scratch folder
        os.environ[DATA_ENV] = os.path.abspath(os.environ[DATA_ENV])
    # Parallel kernels share the cores: a torch thread pool of cores/workers each, unless you chose one.
    os.environ["OMP_NUM_THREADS"] = _USER_THREADS or str(max(1, (os.cpu_count() or 1) // max(1, workers)))
    return isolated


def _state(root: Path) -> dict:
    path = Path(root) / "autograded" / STATE_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


def _save_state(root: Path, state: dict) -> None:
    path = Path(root) / "autograded" / STATE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(state, indent=1, sort_keys=True))


def _changed(root: Path, last: dict | None, digest: str, pair: tuple[str, str]) -> bool:
    """Grade again: new or changed submission, or its autograded folder has gone since."""
    if not isinstance(last, dict) or last.get("digest") != digest:
        return True
    return bool(last.get("autograded")) and not (Path(root) / "autograded" / pair[0] / pair[1]).is_dir()


def quickest_first(root: Path, pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Each student's assignments ordered by the code cells of their source notebooks, fewest first.

    With one worker a round then starts with quick notebooks, which run while the kernel template
    still imports (:func:`convcourse.grading.sandbox.fork_server.serve`) instead of waiting for it.
    """
    cells = {}
    for assignment in {a for _, a in pairs}:
        notebooks = sorted((Path(root) / "source" / assignment).glob("*.ipynb"))
        cells[assignment] = sum(c.cell_type == "code" for nb in notebooks for c in nbformat.read(nb, as_version=4).cells)
    return sorted(pairs, key=lambda pair: (pair[0], cells[pair[1]], pair[1]))


def _job_timeout(root: Path, assignment: str, per_notebook: float) -> float:
    notebooks = len(list((Path(root) / "source" / assignment).glob("*.ipynb")))
    return max(1, notebooks) * per_notebook + STARTUP_SLACK


# ---------------------------------------------------------------------------------- grading


@contextmanager
def _one_round_at_a_time(root: Path):
    """Hold an exclusive lock on the course for the whole round (two rounds would race on the gradebook)."""
    lock = Path(root) / "autograded" / ".convcourse-grading.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise GradingError(f"another grading round is running on {root}; wait for it to finish") from None
        yield


def grade(course: Course | str | Path, *, workers: int | None = None, force: bool = False,
          allow_unsandboxed: bool | None = None, log=print, live: bool | None = None,
          scheduler: str | None = None) -> Round:
    """Autograde every new or changed submission, merge, write feedback and grades.csv.

    ``course``: a :class:`Course` or its folder, loaded here, once for the round. ``log`` gets the
    round's lines (one per finished submission); ``live`` shows tqdm's progress line (None: only on a
    terminal). ``scheduler`` (default $CONVCOURSE_SCHEDULER): the address of a Dask scheduler whose
    workers run the jobs instead of local processes."""
    if workers is not None and workers < 1:
        raise GradingError(f"--jobs must be at least 1, not {workers}")
    if not isinstance(course, Course):
        course = load_course(course, allow_unsandboxed=allow_unsandboxed)
    elif allow_unsandboxed is not None:
        course = replace(course, allow_unsandboxed=allow_unsandboxed)
    workers = workers or os.cpu_count() or 1
    isolated = prepare_environment(course, workers)
    with _one_round_at_a_time(course.root):
        scheduler = scheduler or settings.text(settings.SCHEDULER) or None
        # Local kernels fork from one template; it imports while the round checks data and gradebook.
        with nullcontext() if scheduler else warm_template(isolated, kernel_python.hidden(course), log=log) as template:
            folder = str(template.folder) if template is not None else ""
            return _grade_round(course, workers, force, isolated, folder, log, live, scheduler)


def _grade_round(course: Course, workers: int, force: bool, isolated: bool, template: str, log,
                 live: bool | None, scheduler: str | None) -> Round:
    started = time.monotonic()
    root = course.root
    ensure_data()
    scores = autograded_scores(root)  # before new points are synced in: what a regrade changes is reported from these
    sync_gradebook(course)
    sync_deadlines(root, course.config)
    pairs, warnings = submissions(root, list(course.assignments))
    state = _state(root)
    digests = {pair: submission_digest(root / "submitted" / pair[0] / pair[1]) for pair in pairs}
    tests = {name: tests_digest(root, name) for name in course.assignments}
    retest = new_tests(state, pairs, tests)
    todo = [p for p in pairs if force or p in retest or _changed(root, state.get("/".join(p)), digests[p], p)]
    if workers == 1 and not scheduler:
        todo = quickest_first(root, todo)
    report = Round(course, unchanged=[p for p in pairs if p not in todo], warnings=warnings)
    where = f"on the Dask cluster at {scheduler}" if scheduler else f"with {workers} worker(s)"
    log(f"grading {len(todo)} submission(s) {where}, "
        f"{'sandboxed' if isolated else 'WITHOUT the sandbox'}; {len(report.unchanged)} unchanged")
    if retest:
        log(f"{len(retest)} of them graded again because the tests or points of "
            f"{', '.join(sorted({a for _, a in retest}))} changed since")

    def done(result: Result) -> None:  # runs in this process, one result at a time: the only gradebook writer
        began = time.monotonic()
        job, score = result.job, None
        key = (job.student, job.assignment)
        if not result.killed:  # a killed job's gradebook may be half-written: keep what was recorded
            score = merge(gradebook, root, job.workdir, job.student, job.assignment)
            state["/".join(key)] = {"digest": digests[key], "autograded": result.graded, TESTS_KEY: tests[job.assignment]}
        report.graded.append(result)
        score = score if result.graded else None
        report.changes += filter(None, [score_change(job.student, job.assignment, scores.get(key), score)])
        progress.finished(submission_line(job.student, job.assignment, result.seconds, score,
                                          "" if result.ok else result.problem))
        report.grader_seconds += time.monotonic() - began

    progress = Progress(len(todo), log=log, live=live)
    try:
        with tempfile.TemporaryDirectory(prefix=SCRATCH_PREFIX) as scratch, opened(course.gradebook) as gradebook:
            def start(pair: tuple[str, str]) -> Job:
                began = time.monotonic()
                job = prepare(course, *pair, Path(scratch), _job_timeout(root, pair[1], course.notebook_timeout))
                report.grader_seconds += time.monotonic() - began
                return job

            if scheduler:
                run_jobs_on_cluster(course, todo, scheduler, start, on_done=done)
            else:
                if todo:
                    pay_once(course)  # once here, for every job forked from this process
                run_jobs(todo, workers, start, partial(autograde, course, isolate=isolated, template=template),
                         on_done=done)
    finally:
        progress.close()
    _save_state(root, state)
    penalties = apply_penalties(root, course.config)  # due dates, extensions, manual grades: as they stand now
    report.changes += [change.line() for change in penalties]
    # Each job made its feedback; only what one could not make, or whose penalty changed since, is made here.
    feedback(course, [(r.job.student, r.job.assignment) for r in report.graded
                      if r.graded and not (root / "feedback" / r.job.student / r.job.assignment).is_dir()]
             + _penalised(root, penalties))
    export(course)
    report.seconds = time.monotonic() - started
    return report


def _penalised(root: Path, changes: list[PenaltyChange]) -> list[tuple[str, str]]:
    """The graded submissions among ``changes``, once each: their feedback shows the penalty."""
    pairs = dict.fromkeys((change.student, change.assignment) for change in changes)
    return [pair for pair in pairs if (Path(root) / "autograded" / pair[0] / pair[1]).is_dir()]


def refresh_penalties(course: Course | str | Path) -> list[PenaltyChange]:
    """Outside a round (between rounds, before an export): late penalties as they stand now, and their feedback."""
    course = course if isinstance(course, Course) else load_course(course)
    with _one_round_at_a_time(course.root):
        changes = apply_penalties(course.root, course.config)
        feedback(course, _penalised(course.root, changes))
    return changes


def summary(report: Round) -> str:
    """The grade table plus warnings and problems of the round."""
    root = report.course.root
    parts = ["Autograded scores (test cells; written answers are graded by hand in formgrader; "
             "'late -x': points the late penalty takes from the submission):",
             table(autograded_scores(root), list(report.course.assignments), late_penalties(root))]
    parts += [f"changed: {line}" for line in report.changes]
    parts += [f"warning: {w}" for w in report.warnings]
    parts += [f"problem: {r.job.student}/{r.job.assignment}: {r.problem}" for r in report.graded if not r.ok]
    parts += [f"note: {r.job.student}/{r.job.assignment}: a kernel started cold ({r.cold})" for r in report.graded if r.cold]
    warm, cold = sum(r.warm for r in report.graded), sum(1 for r in report.graded if r.cold)
    if warm or cold:
        parts.append(f"kernels: {warm} forked warm from the template, {cold} started cold after a failed warm start")
    parts.append(f"feedback in {Path(root) / 'feedback'}, grades in {Path(root) / 'grades.csv'}; "
                 f"{len(report.graded)} graded in {report.seconds:.0f} s")
    return "\n".join(parts)


def demo(root: Path, *, workers: int | None = None, force: bool = False, hostile: bool = False,
         allow_unsandboxed: bool | None = None, scheduler: str | None = None) -> int:
    """Regenerate release/, write the example submissions, grade them; 0 if every score is the expected one."""
    course = load_course(root, allow_unsandboxed=allow_unsandboxed)
    root = course.root
    print(f"regenerating {root / 'release'} from source/")
    release.generate(root, course.assignments)
    cases = samples.DEMO_CASES + (samples.HOSTILE_CASES if hostile else ())
    made = samples.write_examples(root, list(course.assignments), cases, samples.Options(attack_root=str(root)))
    print(f"wrote {len(made)} example submissions into {root / 'submitted'}")
    report = grade(course, workers=workers, force=force, scheduler=scheduler)
    print(summary(report))
    scores = autograded_scores(root)
    got = {(s.student, s.assignment): scores.get((s.student, s.assignment), (None,))[0] for s in made}
    wrong = [f"{s.student}/{s.assignment}: got {got[(s.student, s.assignment)]}, expected {s.expected:g}"
             for s in made if got[(s.student, s.assignment)] != s.expected]
    print("every example got exactly its expected score" if not wrong else "UNEXPECTED:\n  " + "\n  ".join(wrong))
    return 1 if wrong else 0

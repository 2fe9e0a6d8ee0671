"""An nbgrader course folder as the grader sees it: the :class:`Course` a round loads once, submissions, gradebook, data.

A grade round reads the course once (:func:`load_course`: ``nbgrader_config.py`` loaded, assignments
found, private paths named, the forwarded settings of the grader's environment kept) and hands that
one value down to every step, and pickled to every job, local or on a Dask worker: no step reads the
config file or the environment again.
"""
from __future__ import annotations

import copy
import hashlib
import json
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from convcourse.grading import settings
from convcourse.grading.course.gradebook import GRADEBOOK, assignment_rows, load_config, nbgrader_api
from convcourse.mnist_files import DATA_ENV, chosen_dataset, mnist_status, resolve_root

# This course's assignments in teaching order; other assignments found in source/ follow, alphabetically.
ASSIGNMENTS = ("manual_convolution", "output_dimensions", "cnn_experiments")
CONFIG_FILE = "nbgrader_config.py"
SYNC_FILE = ".convcourse-gradebook.json"  # in autograded/: what each assignment's gradebook entries were synced from
JOB_GRADEBOOKS = ".convcourse-job-gradebooks"  # in autograded/: per assignment, the gradebook its jobs start from
STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@+-]{0,99}$")
# What no graded kernel may see of a course: solutions, submissions, grades, nbgrader's log, extensions, rosters, exports.
PRIVATE = ("source", "submitted", "autograded", "feedback", GRADEBOOK, f"{GRADEBOOK}-journal", "grades.csv", ".nbgrader.log",
           "extensions.csv", "roster.csv", "exports")


class GradingError(RuntimeError):
    """The course cannot be graded as it stands (the message says what to fix)."""


def course_root(folder: str | Path | None = None) -> Path:
    """The course at ``folder`` (default: the current directory), or GradingError if it is not one."""
    root = Path(folder if folder is not None else Path.cwd()).resolve()
    if not (root / CONFIG_FILE).is_file():
        raise GradingError(f"{root} is not an nbgrader course folder (no {CONFIG_FILE}); "
                           "run this from the course folder or pass --root FOLDER")
    return root


@dataclass(frozen=True)
class Course:
    """A course folder loaded once for a round: what every step and every job of the round reads, never re-read.

    Picklable (traitlets' Config is a dict of plain values and classes): Dask ships it to workers whole.
    """

    root: Path
    config: object = field(repr=False)  # traitlets Config of nbgrader_config.py, limits from the settings table included
    assignments: tuple[str, ...]
    private: tuple[str, ...]  # what no graded kernel may see of this course (:data:`PRIVATE`)
    forwarded: dict[str, str] = field(default_factory=dict)  # the forwarded settings the grader's environment set
    allow_unsandboxed: bool = False  # the instructor's permission to grade without the sandbox (flag or setting)

    @property
    def gradebook(self) -> Path:
        """The course's gradebook file."""
        return self.root / GRADEBOOK

    @property
    def notebook_timeout(self) -> float:
        """Seconds one notebook may run (the config's GradingExecute.notebook_timeout)."""
        return float(self.config.GradingExecute.get("notebook_timeout", settings.NOTEBOOK_TIMEOUT.default))

    def api(self, **coursedir: str):
        """nbgrader's API on this course with its loaded config (CourseDirectory overrides, e.g. release_directory)."""
        return nbgrader_api(self.config, **coursedir)

    def job_gradebook(self, assignment: str) -> Path:
        """The gradebook a job of ``assignment`` starts from: that assignment's entries and no student, so that a
        job carries and brings back the size of one submission, whatever the size of the class (:func:`sync_gradebook`)."""
        return self.root / "autograded" / JOB_GRADEBOOKS / f"{assignment}.db"

    @property
    def kernel_settings(self) -> dict[str, str]:
        """The forwarded settings a graded kernel sees (on a worker its own environment is not the grader's)."""
        return {name: value for name, value in self.forwarded.items() if name in settings.KERNEL_VISIBLE}

    def hidden(self, *scratch: Path, checkouts: Iterable[str | Path] = ()) -> list[str]:
        """What no kernel may see: this course's private files, those of the ``scratch`` courses, and ``checkouts``,
        the course checkouts its kernels could reach (:func:`convcourse.grading.nbgrader.kernel_python.hidden`
        asks the kernels' interpreter for them where the kernels run: on a Dask worker, there)."""
        paths = [*self.private, *(p for folder in scratch for p in private_paths(folder)), *checkouts]
        return list(dict.fromkeys(str(p) for p in paths))

    def job_config(self, workdir: Path, *, hide: Sequence[str], isolate: bool | None = None, template: str = ""):
        """The config of a job grading one submission in the scratch course ``workdir``.

        The course's config with the scratch course as root and gradebook, ``hide`` hidden from its kernels, the
        kernel-visible forwarded settings given to kernels (on a worker its own environment is not the
        grader's), the sandbox decision already taken (``isolate``) and the round's kernel ``template``.
        """
        config = copy.deepcopy(self.config)
        config.CourseDirectory.root = str(workdir)
        config.CourseDirectory.db_url = f"sqlite:///{Path(workdir) / GRADEBOOK}"
        manager = config.SandboxedKernelManager
        manager.hide = list(hide)
        manager.kernel_env = {**self.kernel_settings, **manager.get("kernel_env", {})}
        manager.template = template
        if isolate is not None:
            manager.isolate = isolate
        return config


def load_course(folder: str | Path | None = None, *, allow_unsandboxed: bool | None = None) -> Course:
    """The course at ``folder`` (default: the current directory), read once: GradingError if it is none or has no
    assignments. ``allow_unsandboxed`` (None: $CONVCOURSE_ALLOW_UNSANDBOXED decides) goes with it to every job."""
    root = course_root(folder)
    names = tuple(require_assignments(root))
    allow = settings.switched_on(settings.ALLOW_UNSANDBOXED) if allow_unsandboxed is None else allow_unsandboxed
    return Course(root, load_config(root), names, tuple(str(p) for p in private_paths(root)), settings.forwarded(),
                  allow)


def private_paths(root: str | Path) -> list[Path]:
    """The parts of the course at ``root`` a kernel must never see (:data:`PRIVATE`)."""
    return [Path(root).resolve() / name for name in PRIVATE]


def assignments(root: Path) -> list[str]:
    """Assignments with a notebook in source/, in the course's order (ASSIGNMENTS first)."""
    found = [p.parent.name for p in Path(root).glob("source/*/*.ipynb") if p.stem == p.parent.name]
    return [a for a in ASSIGNMENTS if a in found] + sorted(set(found) - set(ASSIGNMENTS))


def require_assignments(root: Path) -> list[str]:
    """:func:`assignments`, or GradingError when source/ holds none."""
    names = assignments(root)
    if not names:
        raise GradingError(f"no assignments: expected source/<name>/<name>.ipynb under {root}")
    return names


def submissions(root: Path, known: list[str]) -> tuple[list[tuple[str, str]], list[str]]:
    """(student, assignment) folders under submitted/, and warnings about folders that cannot be graded."""
    pairs, warnings = [], []
    for student_dir in sorted(p for p in (Path(root) / "submitted").glob("*") if p.is_dir()):
        if not STUDENT_ID.match(student_dir.name):
            warnings.append(f"skipped submitted/{student_dir.name}: not a usable student id "
                            "(letters, digits and _.@+- only)")
            continue
        for folder in sorted(p for p in student_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
            if folder.name in known:
                pairs.append((student_dir.name, folder.name))
            else:
                warnings.append(f"skipped submitted/{student_dir.name}/{folder.name}: no such assignment in source/")
    return pairs, warnings


def sync_gradebook(course: Course) -> None:
    """Create or update the gradebook's assignments from source/ (nbgrader generate_assignment, release/ untouched),
    and each assignment's job gradebook (:meth:`Course.job_gradebook`) with the very same entries.

    An assignment is skipped when neither its source (with the course config and nbgrader's version)
    nor its entries in either gradebook changed since this function last synced it: nbgrader commits
    each cell on its own, ~1 s of disk syncs a round for nothing when the source stands still. Due dates are left
    out of the comparison: the round sets them in the course's gradebook (course.deadlines) and applies penalties
    there after the merge, so a job's gradebook never needs one.
    """
    state_path = course.root / "autograded" / SYNC_FILE
    try:
        synced = json.loads(state_path.read_text()) if state_path.is_file() else {}
    except (OSError, ValueError):
        synced = {}  # unreadable: sync everything again
    digests = {name: source_digest(course, name) for name in course.assignments}
    todo = {name: digest for name, digest in digests.items()
            if not isinstance(synced.get(name), dict) or synced[name].get("source") != digest
            or not synced[name].get("gradebook")
            or synced[name]["gradebook"] != assignment_rows(course.gradebook, name, with_duedate=False)
            or synced[name]["gradebook"] != assignment_rows(course.job_gradebook(name), name, with_duedate=False)}
    if not todo:
        return
    with tempfile.TemporaryDirectory(prefix="convcourse-release-") as scratch:
        api = course.api(release_directory=scratch)
        for name, digest in todo.items():
            synced.pop(name, None)
            _generate(api, name)
            job_gradebook = course.job_gradebook(name)
            job_gradebook.parent.mkdir(parents=True, exist_ok=True)
            job_gradebook.unlink(missing_ok=True)
            _generate(course.api(release_directory=scratch, db_url=f"sqlite:///{job_gradebook}"), name)
            rows = assignment_rows(course.gradebook, name, with_duedate=False)
            if assignment_rows(job_gradebook, name, with_duedate=False) != rows:
                raise GradingError(f"nbgrader made different entries for {name} in {job_gradebook} than in the course's "
                                   "gradebook; remove that file and grade again")
            synced[name] = {"source": digest, "gradebook": rows}
    state_path.parent.mkdir(parents=True, exist_ok=True)
    state_path.write_text(json.dumps(synced, indent=1, sort_keys=True))


def _generate(api, name: str) -> None:
    result = api.generate_assignment(name, force=True, create=True)
    if not result["success"]:
        raise GradingError(f"nbgrader generate_assignment {name} failed:\n{result.get('log', '')}{result.get('error', '')}")


def source_digest(course: Course, name: str) -> str:
    """SHA-256 of what nbgrader makes an assignment's gradebook entries from: its source files, the config, versions.

    The config is taken as loaded: every value ``nbgrader_config.py`` and ``configure_autograde`` set,
    the classes it plugs in by name.
    """
    import nbgrader

    digest = hashlib.sha256(f"nbgrader {nbgrader.__version__}\0".encode())
    digest.update(json.dumps(course.config, sort_keys=True, default=repr).encode())
    for path in sorted(p for p in (course.root / "source" / name).rglob("*") if p.is_file()):
        digest.update(str(path).encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def ensure_data(dataset: str | None = None) -> None:
    """Fetch MNIST outside the sandbox when it is missing or wrong: graded kernels have no network.

    ``dataset``: the grader's $CONVCOURSE_DATASET, for a job on a Dask worker (None: this process's own).
    """
    if (chosen_dataset() if dataset is None else dataset.strip().lower()) == "digits":
        return
    problem = mnist_status()
    if problem is None:
        return
    print(f"MNIST not ready ({problem}); fetching it before grading (kernels have no network)", flush=True)
    done = subprocess.run([sys.executable, "-c", _FETCH], stderr=subprocess.PIPE, text=True)
    if done.returncode != 0:
        raise GradingError(f"MNIST is needed in {resolve_root()} (or set {DATA_ENV}) before grading:\n"
                           f"{done.stderr.strip()[-2000:]}")


# In a child process, so the grader itself never imports torch (its workers are forked from it).
_FETCH = """import sys
from convcourse.data import MNISTCorruptError, MNISTMissingError, load_mnist
try:
    load_mnist()
except (MNISTMissingError, MNISTCorruptError) as error:
    sys.exit(str(error))
"""

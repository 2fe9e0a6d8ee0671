"""An nbgrader course folder as the grader sees it: its assignments, its submissions, its gradebook, its data."""
from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from convcourse.grading.course.gradebook import GRADEBOOK, assignment_rows, load_config, nbgrader_api
from convcourse.mnist_files import DATA_ENV, chosen_dataset, mnist_status, resolve_root

# This course's assignments in teaching order; other assignments found in source/ follow, alphabetically.
ASSIGNMENTS = ("manual_convolution", "output_dimensions", "cnn_experiments")
CONFIG_FILE = "nbgrader_config.py"
SYNC_FILE = ".convcourse-gradebook.json"  # in autograded/: what each assignment's gradebook entries were synced from
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


def private_paths(root: str | Path) -> list[Path]:
    """The parts of the course at ``root`` a kernel must never see (:data:`PRIVATE`)."""
    return [Path(root).resolve() / name for name in PRIVATE]


def checkout_private_paths() -> list[Path]:
    """When this package runs from a course checkout (an editable install), that course's private paths too.

    A course copied elsewhere still has its solutions in the checkout the package is installed from.
    """
    import convcourse

    checkout = Path(convcourse.__file__).resolve().parent.parent
    return private_paths(checkout) if (checkout / CONFIG_FILE).is_file() else []


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


def sync_gradebook(root: Path, names: list[str]) -> None:
    """Create or update the gradebook's assignments from source/ (nbgrader generate_assignment, release/ untouched).

    An assignment is skipped when neither its source (with the course config and nbgrader's version)
    nor its entries in the gradebook changed since this function last synced it: nbgrader commits
    each cell on its own, ~1 s of disk syncs a round for nothing when the source stands still.
    """
    root = Path(root)
    state_path = root / "autograded" / SYNC_FILE
    try:
        synced = json.loads(state_path.read_text()) if state_path.is_file() else {}
    except (OSError, ValueError):
        synced = {}  # unreadable: sync everything again
    digests = {name: source_digest(root, name) for name in names}
    todo = {name: digest for name, digest in digests.items()
            if not isinstance(synced.get(name), dict) or synced[name].get("source") != digest
            or synced[name].get("gradebook") != assignment_rows(root / GRADEBOOK, name)}
    if not todo:
        return
    with tempfile.TemporaryDirectory(prefix="convcourse-release-") as scratch:
        api = nbgrader_api(root, release_directory=scratch)
        for name, digest in todo.items():
            synced.pop(name, None)
            result = api.generate_assignment(name, force=True, create=True)
            if not result["success"]:
                raise GradingError(f"nbgrader generate_assignment {name} failed:\n{result.get('log', '')}"
                                   f"{result.get('error', '')}")
            synced[name] = {"source": digest, "gradebook": assignment_rows(root / GRADEBOOK, name)}
    state_path.parent.mkdir(parents=True, exist_ok=True)
    state_path.write_text(json.dumps(synced, indent=1, sort_keys=True))


def source_digest(root: Path, name: str) -> str:
    """SHA-256 of what nbgrader makes an assignment's gradebook entries from: its source files, the config, versions.

    The config is taken as loaded (every value ``nbgrader_config.py`` and what it calls set, classes by name),
    so a change to the preprocessors it plugs in counts as much as a change to the file itself.
    """
    import nbgrader

    digest = hashlib.sha256(f"nbgrader {nbgrader.__version__}\0".encode())
    digest.update(json.dumps(load_config(root), sort_keys=True, default=repr).encode())
    for path in sorted(p for p in (Path(root) / "source" / name).rglob("*") if p.is_file()):
        digest.update(str(path).encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def ensure_data() -> None:
    """Fetch MNIST outside the sandbox when it is missing or wrong: graded kernels have no network."""
    if chosen_dataset() == "digits":
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

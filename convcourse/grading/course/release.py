"""Generate the student notebooks in release/ from source/ with nbgrader, and compare release trees.

``python -m convcourse.grading release`` (``make release``) regenerates release/ in place; with
``--check`` it regenerates into a temporary copy of the course and exits 1 (listing the
differences) if the committed release/ is stale.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from convcourse.grading.course.folder import ASSIGNMENTS
from convcourse.grading.course.gradebook import with_venv_on_path

COURSE_FILES = ("nbgrader_config.py", "source")  # all that generate_assignment reads

# Notebook-level metadata nbgrader or Jupyter may rewrite without changing what a student sees.
_VOLATILE_NOTEBOOK_KEYS = ("widgets", "celltoolbar", "toc", "varInspector")
_VOLATILE_LANGUAGE_KEYS = ("version", "pygments_lexer", "codemirror_mode")


class ReleaseError(RuntimeError):
    """nbgrader could not generate an assignment; the message carries its output."""


def generate(root: Path, assignments: tuple[str, ...] = ASSIGNMENTS, *, use_db: bool = False) -> Path:
    """Run ``nbgrader generate_assignment <a> --force`` in ``root`` for each assignment; return the release folder."""
    root = Path(root)
    for assignment in assignments:
        if not (root / "source" / assignment).is_dir():
            raise ReleaseError(f"no source folder for assignment {assignment!r} under {root / 'source'}")
        command = [sys.executable, "-m", "nbgrader", "generate_assignment", assignment, "--force"]
        if not use_db:
            command.append("--no-db")  # the gradebook is the grading pipeline's business, not the release's
        done = subprocess.run(command, cwd=root, capture_output=True, text=True, env=with_venv_on_path(os.environ))
        if done.returncode != 0:
            raise ReleaseError(f"nbgrader generate_assignment {assignment} failed (exit {done.returncode}):\n"
                               f"{done.stdout[-3000:]}{done.stderr[-3000:]}")
    return root / "release"


def copy_course(root: Path, destination: Path) -> Path:
    """Copy what generate_assignment reads (config and source/) from ``root`` into ``destination``."""
    destination.mkdir(parents=True, exist_ok=True)
    for name in COURSE_FILES:
        path = Path(root) / name
        if path.is_dir():
            shutil.copytree(path, destination / name, ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
        else:
            shutil.copy2(path, destination / name)
    return destination


def points(root: Path, assignments: tuple[str, ...] = ASSIGNMENTS) -> dict[str, dict[str, float]]:
    """Points per assignment from the source notebooks: autograded (test cells), manual (written answers), total."""
    table = {}
    for assignment in assignments:
        notebook = json.loads((Path(root) / "source" / assignment / f"{assignment}.ipynb").read_text())
        auto = manual = 0.0
        for cell in notebook["cells"]:
            meta = cell.get("metadata", {}).get("nbgrader", {})
            if meta.get("grade"):
                if meta.get("solution"):
                    manual += meta["points"]
                else:
                    auto += meta["points"]
        table[assignment] = {"auto": auto, "manual": manual, "total": auto + manual}
    return table


def normalise_notebook(text: str) -> dict:
    """A released notebook as JSON with the metadata nbgrader/Jupyter make volatile removed."""
    notebook = json.loads(text)
    metadata = notebook.get("metadata", {})
    for key in _VOLATILE_NOTEBOOK_KEYS:
        metadata.pop(key, None)
    for key in _VOLATILE_LANGUAGE_KEYS:
        metadata.get("language_info", {}).pop(key, None)
    for cell in notebook.get("cells", []):
        cell.get("metadata", {}).pop("execution", None)  # timestamps JupyterLab records
    return notebook


def snapshot(folder: Path) -> dict[str, object]:
    """Every file under ``folder`` by relative path: notebooks normalised, other files as bytes."""
    folder = Path(folder)
    files = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        relative = path.relative_to(folder).as_posix()
        if ".ipynb_checkpoints" in relative or "__pycache__" in relative:
            continue
        files[relative] = normalise_notebook(path.read_text()) if path.suffix == ".ipynb" else path.read_bytes()
    return files


def compare_trees(expected: Path, actual: Path) -> list[str]:
    """Differences between two release folders, ignoring nbgrader's volatile bits; empty when they agree."""
    want, got = snapshot(expected), snapshot(actual)
    problems = [f"missing: {name}" for name in sorted(want.keys() - got.keys())]
    problems += [f"unexpected: {name}" for name in sorted(got.keys() - want.keys())]
    for name in sorted(want.keys() & got.keys()):
        if want[name] != got[name]:
            problems.append(f"differs: {name}{_first_difference(want[name], got[name])}")
    return problems


def _first_difference(want: object, got: object) -> str:
    if not (isinstance(want, dict) and isinstance(got, dict)):
        return ""
    cells_want, cells_got = want.get("cells", []), got.get("cells", [])
    if len(cells_want) != len(cells_got):
        return f" ({len(cells_want)} cells vs {len(cells_got)})"
    for index, (a, b) in enumerate(zip(cells_want, cells_got)):
        if a != b:
            return f" (first at cell {index}, id {a.get('id', '?')})"
    return " (notebook metadata)"


def check(root: Path, assignments: tuple[str, ...] = ASSIGNMENTS) -> list[str]:
    """Regenerate release/ from a temporary copy of ``root`` and compare it with ``root``'s release/."""
    with tempfile.TemporaryDirectory(prefix="convcourse-release-") as scratch:
        fresh = generate(copy_course(root, Path(scratch) / "course"), assignments)
        return compare_trees(fresh, Path(root) / "release")

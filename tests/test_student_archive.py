"""The student archive (`make student-archive`): exactly release/, byte for byte, the same bytes every build.

About 15 s: the command's staleness check runs nbgrader on the tiny course twice.
"""
from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
from nbformat.v4 import new_markdown_cell
from tiny_course import ASSIGNMENT, make_course

from convcourse import __version__
from convcourse.grading.course import archive as student_archive

ROOT = Path(__file__).resolve().parents[1]


def archive_command(root: Path, *args: str) -> subprocess.CompletedProcess:
    """`python -m convcourse.grading archive` as `make student-archive` runs it."""
    return subprocess.run([sys.executable, "-m", "convcourse.grading", "--root", str(root), "archive", *args],
                          capture_output=True, text=True, timeout=300)


def test_the_archive_is_release_under_one_versioned_folder(tmp_path):
    path = student_archive.build(ROOT, tmp_path)
    assert path == tmp_path / f"convcourse-notebooks-{__version__}.zip"
    top = student_archive.archive_name()
    with zipfile.ZipFile(path) as archive:
        entries = {info.filename: archive.read(info) for info in archive.infolist()}
    release = {f"{top}/{p.relative_to(ROOT / 'release').as_posix()}": p.read_bytes()
               for p in (ROOT / "release").rglob("*") if p.is_file() and ".ipynb_checkpoints" not in p.parts}
    assert entries == release
    assert {f"{top}/{a}/{a}.ipynb" for a in ("manual_convolution", "output_dimensions", "cnn_experiments")} <= set(entries)


def test_the_archive_is_deterministic(tmp_path):
    first = student_archive.build(ROOT, tmp_path / "a").read_bytes()
    second = student_archive.build(ROOT, tmp_path / "b").read_bytes()
    assert first == second
    assert not list((tmp_path / "a").glob("*.partial"))


def test_the_command_archives_a_current_release_and_refuses_a_stale_one(tmp_path):
    root = make_course(tmp_path / "course")
    done = archive_command(root)
    assert done.returncode == 0, done.stderr
    path = root / "dist" / f"{student_archive.archive_name()}.zip"
    assert done.stdout.strip() == f"wrote {path}"
    assert zipfile.ZipFile(path).namelist() == [f"{student_archive.archive_name()}/{ASSIGNMENT}/{ASSIGNMENT}.ipynb"]

    source = root / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    notebook = nbformat.read(source, as_version=4)
    notebook.cells.append(new_markdown_cell("added after the release", metadata={"nbgrader": {
        "grade": False, "grade_id": "late", "locked": True, "schema_version": 3, "solution": False, "task": False}}))
    nbformat.write(notebook, source)
    done = archive_command(root, "--out", str(tmp_path / "elsewhere"))
    assert done.returncode == 2
    assert done.stderr.startswith("error: release/ is stale; run `make release` first") and "Traceback" not in done.stderr
    assert not (tmp_path / "elsewhere").exists()

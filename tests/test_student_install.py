"""A student's install: the built wheel, in a fresh venv outside the checkout, runs every released notebook.

The wheel is built from a copy of the project's packaging files (offline: no build isolation) and
installed, not editable, into a new venv. That venv gets the dependencies without a 6 GB reinstall:
a .pth file holding the plain path of this environment's site-packages (a plain path line does not
run that folder's own .pth files, so the checkout's editable install stays inactive). The student
archive is unzipped in a temporary folder, its notebooks get their solutions filled in from source/,
and the venv's interpreter runs them with nbval (so the kernels are that interpreter, as a probe
notebook checks): a file missing from the wheel, or a notebook that reaches into the checkout, fails
here. About 25 s on 2 cores (wheel 1 s, venv 1 s, the notebooks under a 5-step training budget).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook
from student_notebooks import fill_solutions, run_nbval
from test_student_check import troubled_notebook

from convcourse.budget import BUDGET_ENV
from convcourse.grading.course import archive as student_archive
from convcourse.grading.course.folder import ASSIGNMENTS

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
WHEEL_INPUTS = ("pyproject.toml", "README.md", "convcourse")  # all that setuptools reads to build the wheel
SKIPPED = shutil.ignore_patterns("__pycache__", "*.pyc")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel `make wheel` builds, built from a copy so the checkout gets no build/ or egg-info."""
    work = tmp_path_factory.mktemp("wheel")
    for name in WHEEL_INPUTS:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, work / "src" / name, ignore=SKIPPED)
        else:
            (work / "src").mkdir(exist_ok=True)
            shutil.copy2(path, work / "src" / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check", "--no-deps",
                    "--no-build-isolation", "--no-index", str(work / "src"), "-w", str(work / "dist")],
                   check=True, capture_output=True, text=True)
    (built,) = (work / "dist").glob("convcourse-*.whl")
    return built


def student_environ(venv: Path) -> dict[str, str]:
    """This session's environment as an activated venv sees it: no PYTHONPATH into the checkout."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")}
    env["VIRTUAL_ENV"] = str(venv)
    env["PATH"] = os.pathsep.join([str(venv / "bin"), env.get("PATH", "")])
    return env


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory) -> Path:
    """A fresh venv outside the checkout with the wheel installed (not editable) and this environment's packages."""
    venv = tmp_path_factory.mktemp("student") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    site = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    ours = dict.fromkeys(sysconfig.get_paths()[key] for key in ("purelib", "platlib"))
    (site / "convcourse-test-dependencies.pth").write_text("".join(f"{path}\n" for path in ours))
    # --ignore-installed: pip must not touch the checkout's editable install it can see through that path.
    subprocess.run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps", "--no-index",
                    "--ignore-installed", str(wheel)], check=True, capture_output=True, text=True,
                   env=student_environ(venv), cwd=venv)
    return venv


def test_the_wheel_holds_every_package_file_and_nothing_else(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    packaged = {name for name in names if not name.split("/")[0].endswith(".dist-info")}
    package = {p.relative_to(ROOT).as_posix() for p in (ROOT / "convcourse").rglob("*")
               if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}
    assert packaged == package, f"missing: {sorted(package - packaged)}, extra: {sorted(packaged - package)}"


def test_the_installed_package_is_the_wheel_not_the_checkout(venv, tmp_path):
    done = subprocess.run([str(venv / "bin" / "python"), "-m", "convcourse", "--no-download"], cwd=tmp_path,
                          env=student_environ(venv), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    first = done.stdout.splitlines()[0]  # "convcourse <version> from <folder>"
    location = Path(first.split(" from ", 1)[1])
    assert location.is_relative_to(venv) and not location.is_relative_to(ROOT), first
    assert "ready:" in done.stdout


def probe_notebook(venv: Path) -> nbformat.NotebookNode:
    """One cell that fails unless the kernel is the venv's interpreter and imports the installed package."""
    return new_notebook(cells=[new_code_cell(
        "import os, sys\nimport convcourse\n"
        f"venv = os.path.realpath({str(venv)!r})\n"
        "assert os.path.realpath(sys.prefix) == venv, sys.prefix\n"
        "assert os.path.realpath(convcourse.__file__).startswith(venv + os.sep), convcourse.__file__\n"
        f"assert {str(ROOT)!r} not in os.path.realpath(convcourse.__file__)"
    )], metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})


def test_every_released_notebook_runs_solved_from_the_student_archive(venv, tmp_path):
    archive = student_archive.build(ROOT, tmp_path / "dist")
    with zipfile.ZipFile(archive) as opened:
        opened.extractall(tmp_path)
    folder = tmp_path / student_archive.archive_name()
    paths = [folder / "probe.ipynb"]
    nbformat.write(probe_notebook(venv), paths[0])
    for assignment in ASSIGNMENTS:
        path = folder / assignment / f"{assignment}.ipynb"
        source = nbformat.read(ROOT / "source" / assignment / f"{assignment}.ipynb", as_version=4)
        nbformat.write(fill_solutions(nbformat.read(path, as_version=4), source), path)
        paths.append(path)
    # The dataset comes from the environment the root conftest.py prepared; the budget is the smoke budget.
    run_nbval(str(venv / "bin" / "python"), folder, paths, env=student_environ(venv))


def test_the_check_students_run_works_from_the_wheel_without_nbgrader(venv, tmp_path):
    """check() on a troubled notebook where nbgrader and the grading side cannot be imported: what a student gets."""
    path, warnings = troubled_notebook(tmp_path)
    blocked = "import sys; sys.modules.update(dict.fromkeys(['nbgrader', 'convcourse.grading']))"
    run = (f"{blocked}\nfrom convcourse.check import check\nreport = check({path.name!r})\n"
           "print(sum(t.passed for t in report.tests), len(report.tests))")
    env = {k: v for k, v in student_environ(venv).items() if k != BUDGET_ENV}  # a student's session has no budget
    done = subprocess.run([str(venv / "bin" / "python"), "-c", run], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=600)
    text = done.stdout
    assert done.returncode == 0, text + done.stderr
    assert "FAILED  mc-test-conv2d-visible (" in text and "[flipped-kernel]." in text, text
    assert "passed  mc-test-maxpool2d-visible" in text and "passed  mc-test-pool-by-hand" in text  # put back, run
    for warning in warnings:
        assert f"warning: {warning}" in text, text
    assert text.count("warning: ") == len(warnings)
    passed, tests = map(int, text.splitlines()[-1].split())
    assert f"visible tests: {passed} of {tests} passed" in text and 0 < passed < tests

"""Every command line of the project says what is wrong with the course or the data in one `error:` message.

The project's own errors (missing or corrupt data, a bad training budget, a folder that is not a
course, a notebook that fails to build) end with exit status 2 and no traceback; an unexpected
error keeps its traceback. Downloads are made to fail fast through an unreachable proxy, so these
tests give the same result with or without a network. About 50 s on 2 cores (most commands import
torch), hence `slow`.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook
from tiny_course import make_course

from authoring import build
from convcourse.mnist_files import MNIST_FILES

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
OFFLINE = {"http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9", "no_proxy": ""}


@pytest.fixture(scope="module")
def broken_data(tmp_path_factory) -> Path:
    """A data folder whose four MNIST files exist but are truncated."""
    root = tmp_path_factory.mktemp("corrupt")
    (root / "MNIST" / "raw").mkdir(parents=True)
    for name in MNIST_FILES:
        (root / "MNIST" / "raw" / name).write_bytes(b"\0" * 16)
    return root


def run(args: list[str], *, cwd: Path = ROOT, **env: str) -> subprocess.CompletedProcess:
    """One command, with the session's environment plus ``env`` (the real dataset, whatever the session chose)."""
    environ = {**os.environ, **OFFLINE, "CONVCOURSE_DATASET": "mnist", **env}
    return subprocess.run([sys.executable, *args], cwd=cwd, env=environ, capture_output=True, text=True, timeout=600)


def assert_one_error(done: subprocess.CompletedProcess, *expected: str) -> None:
    """Exit status 2 and stderr ending in one `error:` message holding ``expected``, with no traceback."""
    assert done.returncode == 2, done.stdout[-2000:] + done.stderr[-3000:]
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    message = done.stderr[done.stderr.rindex("error: "):]
    assert done.stderr.count("error: ") == 1 and len(message.splitlines()) <= 12, done.stderr
    for text in expected:
        assert text in message, message


# ---------------------------------------------------------------- python -m convcourse (the student's check)


def test_student_check_missing_data_offline(tmp_path):
    done = run(["-m", "convcourse"], CONVCOURSE_DATA=str(tmp_path))
    assert_one_error(done, f"MNIST is not in {tmp_path / 'MNIST' / 'raw'}", "Do one of", "The download failed")


def test_student_check_corrupt_data(broken_data):
    assert_one_error(run(["-m", "convcourse", "--data", str(broken_data)]), "is corrupt or truncated")


def test_student_check_unexpected_error_keeps_its_traceback(broken_data):
    code = ("import sys, convcourse.data as d\n"
            "def boom(*a, **k): raise RuntimeError('a bug')\n"
            "d.load_mnist = boom\n"
            "from convcourse.__main__ import main\nsys.exit(main([]))")
    done = run(["-c", code])
    assert done.returncode == 1 and "Traceback" in done.stderr and "RuntimeError: a bug" in done.stderr


# ---------------------------------------------------------------- python -m convcourse.grading (make release/grade/demo)


def test_grading_outside_a_course(tmp_path):
    assert_one_error(run(["-m", "convcourse.grading", "release"], cwd=tmp_path),
                     f"{tmp_path} is not an nbgrader course folder")


def test_grading_with_a_bad_training_budget(tmp_path):
    (tmp_path / "nbgrader_config.py").write_text("")
    done = run(["-m", "convcourse.grading", "--root", str(tmp_path), "grade"], CONVCOURSE_MAX_STEPS="ten")
    assert_one_error(done, "CONVCOURSE_MAX_STEPS must be a positive whole number")


def test_grading_with_corrupt_data(tmp_path, broken_data):
    root = make_course(tmp_path / "course")
    done = run(["-m", "convcourse.grading", "--root", str(root), "grade", "--allow-unsandboxed"],
               CONVCOURSE_DATA=str(broken_data))
    assert_one_error(done, "MNIST is needed in", "is corrupt or truncated")
    assert not (root / "grades.csv").exists()


def test_demo_without_data_and_without_network(tmp_path):
    """`make demo` on a fresh machine: the data's advice, once, after the download failed."""
    root = make_course(tmp_path / "course")
    done = run(["-m", "convcourse.grading", "--root", str(root), "demo", "--allow-unsandboxed"],
               CONVCOURSE_DATA=str(tmp_path / "data"))
    assert_one_error(done, "MNIST is needed in", "These four files are needed there", "The download failed")


def test_grading_unexpected_error_keeps_its_traceback(tmp_path):
    root = make_course(tmp_path / "course")
    code = ("import sys\nfrom convcourse.grading.course import release\n"
            "def boom(*a, **k): raise ZeroDivisionError('a bug')\n"
            "release.generate = boom\n"
            f"from convcourse.grading.__main__ import main\nsys.exit(main(['--root', {str(root)!r}, 'release']))")
    done = run(["-c", code])
    assert done.returncode == 1 and "Traceback" in done.stderr and "ZeroDivisionError: a bug" in done.stderr


# ---------------------------------------------------------------- python -m authoring.build (make notebooks)


def test_build_an_unknown_assignment():
    done = run(["-m", "authoring.build", "no_such_assignment"])
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "error: unknown assignment(s) no_such_assignment; choose from manual_convolution" in done.stderr


def test_build_a_notebook_whose_cell_fails(tmp_path, monkeypatch, capsys):
    failing = new_notebook(cells=[new_code_cell("x = 1", id="fine"), new_code_cell("\nx / 0", id="ce-broken")])
    monkeypatch.setattr(build, "ROOT", tmp_path)
    monkeypatch.setattr(build, "build", lambda assignment: nbformat.from_dict(failing))
    assert build.main(["cnn_experiments"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == ("error: cnn_experiments not written: cell ce-broken (#2: x / 0) raised "
                           "ZeroDivisionError: division by zero")
    assert not (tmp_path / "source" / "cnn_experiments" / "cnn_experiments.ipynb").exists()


# ---------------------------------------------------------------- benchmarks


def test_benchmarks_without_data(tmp_path, broken_data):
    assert_one_error(run(["benchmarks/assignment2.py", "--data", str(tmp_path)]), "MNIST is not in")
    assert_one_error(run(["benchmarks/train_throughput.py", "--data", str(broken_data)]), "is corrupt or truncated")
    assert_one_error(run(["benchmarks/grading_speed.py"], CONVCOURSE_DATA=str(broken_data)), "MNIST is needed in")
    assert_one_error(run(["benchmarks/student_run.py"], CONVCOURSE_DATA=str(tmp_path)), "MNIST is not in")
    assert_one_error(run(["benchmarks/student_run.py", "cnn"]), "unknown notebook(s) cnn; choose from")

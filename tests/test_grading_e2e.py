"""The real course end to end: `demo` on the three assignments, then the hostile class on every assignment.

About 4-5 minutes on 2 cores (51 hostile submissions, 2 workers). The kernels use the scikit-learn
digits stand-in (CONVCOURSE_DATASET=digits): what is under test is the grading pipeline, and the
notebooks' tests check code and shapes, not accuracy.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from test_sandbox import Listener

from convcourse.grading import sandbox
from convcourse.grading.course.folder import ASSIGNMENTS
from convcourse.grading.course.report import autograded_scores
from convcourse.grading.demo import samples
from convcourse.grading.demo.points import total_points

ROOT = Path(__file__).resolve().parent.parent
# tests/test_as_user.py runs this module again as an ordinary account on one assignment (CI time).
UNDER_TEST = tuple(a for a in os.environ.get("CONVCOURSE_E2E_ASSIGNMENTS", ",".join(ASSIGNMENTS)).split(",") if a)
ENV = {"CONVCOURSE_DATASET": "digits", "CONVCOURSE_CELL_TIMEOUT": "10", "CONVCOURSE_NOTEBOOK_TIMEOUT": "300",
       "CONVCOURSE_KERNEL_MEMORY_MB": "2048"}

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not all((ROOT / "source" / a / f"{a}.ipynb").is_file() for a in ASSIGNMENTS),
                       reason="the three course notebooks are not all in source/ yet"),
    pytest.mark.skipif(not sandbox.sandbox_status().available, reason=sandbox.sandbox_status().reason),
]


def grading_cli(root: Path, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "convcourse.grading", "--root", str(root), *args],
                          capture_output=True, text=True, timeout=1200, env={**os.environ, **ENV})
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    return done.stdout


@pytest.fixture(scope="module")
def course():
    folder = Path(tempfile.mkdtemp(prefix="convcourse-e2e-", dir="/var/tmp"))  # outside the kernels' private /tmp
    folder.chmod(0o755)
    root = folder / "course"
    root.mkdir()
    shutil.copy2(ROOT / "nbgrader_config.py", root)
    for assignment in UNDER_TEST:
        shutil.copytree(ROOT / "source" / assignment, root / "source" / assignment,
                        ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    yield root
    shutil.rmtree(folder)


def test_demo_then_a_hostile_class(course):
    demo_output = grading_cli(course, "demo")
    assert "every example got exactly its expected score" in demo_output
    for assignment in UNDER_TEST:
        assert (course / "release" / assignment / f"{assignment}.ipynb").is_file()
    demo_scores = autograded_scores(course)
    for assignment in UNDER_TEST:
        ctx = samples.context(course, assignment)
        assert demo_scores[("full", assignment)] == (total_points(ctx.source),) * 2

    listener = Listener()
    try:
        options = samples.Options(network_target=("127.0.0.1", listener.port), attack_root=str(course), bomb_mb=4096)
        hostile = samples.write_examples(course, list(UNDER_TEST), samples.HOSTILE_CASES, options)
        output = grading_cli(course, "grade")
    finally:
        listener.close()

    scores = autograded_scores(course)
    wrong = {(s.student, s.assignment, s.expected, scores.get((s.student, s.assignment))) for s in hostile
             if scores.get((s.student, s.assignment), (None,))[0] != s.expected}
    assert not wrong, f"(student, assignment, expected, got): {sorted(wrong)}\n{output[-3000:]}"
    demo_count = len(samples.DEMO_CASES) * len(UNDER_TEST)
    assert f"grading {len(hostile)} submission(s)" in output and f"{demo_count} unchanged" in output
    assert {k: v for k, v in scores.items() if k[0] in {"full", "blank", "partial"}} == demo_scores
    assert listener.connections == 0
    assert not list(course.rglob("escaped-by-student.txt"))
    csv = (course / "grades.csv").read_text()
    assert all(f",{s.student}," in csv for s in hostile)
    unreadable = {"renamed", "missing", "not-json"}
    for s in hostile:
        html = course / "feedback" / s.student / s.assignment / f"{s.assignment}.html"
        assert html.is_file() == (s.student not in unreadable), s.student

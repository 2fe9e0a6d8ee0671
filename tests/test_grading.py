"""`make grade` on a throwaway one-assignment course: every example and hostile case, reruns, serial vs parallel.

One module-wide grade round (all cases, 2 workers) takes ~35-50 s; the rest ~50 s. The course lives in
/var/tmp, outside the private /tmp the kernels get, so hiding the course's files is really tested.
"""
from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest
from test_sandbox import Listener
from tiny_course import ASSIGNMENT, make_course

from convcourse.grading import sandbox
from convcourse.grading.__main__ import main
from convcourse.grading.course.report import autograded_scores
from convcourse.grading.demo import samples
from convcourse.grading.demo.points import is_test
from convcourse.grading.nbgrader import kernel_env

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not sandbox.sandbox_status().available,
                                                  reason=f"sandbox unavailable: {sandbox.sandbox_status().reason}")]
GRADING_ENV = {"CONVCOURSE_DATASET": "digits", "CONVCOURSE_CELL_TIMEOUT": "4", "CONVCOURSE_NOTEBOOK_TIMEOUT": "60",
               "CONVCOURSE_KERNEL_MEMORY_MB": "2048"}  # room for a warm kernel's preloaded modules
# What an instructor's session on a JupyterHub holds, and a graded kernel must never see.
SECRETS = {"JUPYTERHUB_API_TOKEN": "fake-hub-token-5f1d2c", "AWS_SECRET_ACCESS_KEY": "fake-aws-secret-93b7e0",
           "CONVCOURSE_PRIVATE_NOTE": "fake-course-note-41aa"}
PRINT_ENVIRON = ("import os, glob, pathlib, convcourse\nprint('environment:', dict(os.environ))\n"
                 "for path in glob.glob('/proc/*/environ'):  # every process the kernel can see\n"
                 "    try: print(path, open(path, 'rb').read())\n    except OSError as error: print(path, error)\n"
                 "checkout = pathlib.Path(convcourse.__file__).resolve().parent.parent  # where the package comes from\n"
                 "try: print('checkout solutions:', sorted(p.name for part in ('source', 'authoring')\n"
                 "                                         for p in (checkout / part).rglob('*') if p.is_file()))\n"
                 "except OSError as error: print('checkout solutions:', type(error).__name__)")


@dataclass
class Graded:
    root: Path
    made: list[samples.Submission]
    output: str
    connections: int
    scores: dict
    config: bytes


def course_dir(prefix: str) -> Path:
    folder = Path(tempfile.mkdtemp(prefix=prefix, dir="/var/tmp"))
    folder.chmod(0o755)
    return folder


def run_grade(root: Path, *args: str) -> subprocess.CompletedProcess:
    """`python -m convcourse.grading grade` as `make grade` runs it."""
    done = subprocess.run([sys.executable, "-m", "convcourse.grading", "--root", str(root), "grade", *args],
                          capture_output=True, text=True, timeout=900, env={**os.environ, **GRADING_ENV, **SECRETS})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


@pytest.fixture(scope="module")
def graded():
    folder = course_dir("convcourse-tiny-")
    root = make_course(folder / "course")
    listener = Listener()
    options = samples.Options(network_target=("127.0.0.1", listener.port), attack_root=str(root), bomb_mb=3072)
    try:
        made = samples.write_examples(root, [ASSIGNMENT], tuple(samples.CASES), options)
        ctx = samples.context(root, ASSIGNMENT)
        nosy, _ = samples.insert_cell(ctx.source, PRINT_ENVIRON, "middle")
        nosy_folder = root / "submitted" / "print-environ" / ASSIGNMENT
        nosy_folder.mkdir(parents=True)
        nbformat.write(nosy, nosy_folder / f"{ASSIGNMENT}.ipynb")
        done = run_grade(root, "--jobs", "2")
    finally:
        listener.close()
    yield Graded(root, made, done.stdout, listener.connections, autograded_scores(root),
                 (root / "nbgrader_config.py").read_bytes())
    shutil.rmtree(folder)


def autograded(graded: Graded, case: str) -> nbformat.NotebookNode:
    student = case.replace("_", "-")
    return nbformat.read(graded.root / "autograded" / student / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", 4)


def outputs_text(nb: nbformat.NotebookNode, kind: str = "") -> str:
    """Every output of the notebook as text (only those of output_type ``kind`` if given)."""
    return "\n".join(str(output) for cell in nb.cells for output in cell.get("outputs", [])
                     if not kind or output.get("output_type") == kind)


@pytest.mark.parametrize("case", samples.CASES)
def test_each_submission_gets_exactly_its_computed_score(graded, case):
    submission = next(s for s in graded.made if s.case == case)
    assert graded.scores[(submission.student, ASSIGNMENT)] == (submission.expected, 4.0), submission.about


def test_whole_class_is_graded_with_feedback_and_csv(graded):
    csv = (graded.root / "grades.csv").read_text()
    for submission in graded.made:
        assert f",{submission.student}," in csv
    feedback = {p.parent.parent.name for p in (graded.root / "feedback").glob(f"*/{ASSIGNMENT}/{ASSIGNMENT}.html")}
    expected = {s.student for s in graded.made if s.case not in ("renamed", "missing", "not_json")}
    assert feedback == expected | {"print-environ"}
    assert "blank" in graded.output and "4 / 4" in graded.output  # the printed table


def test_the_kernel_gets_a_minimal_environment_and_no_solutions_of_the_checkout(graded):
    assert graded.scores[("print-environ", ASSIGNMENT)] == (4.0, 4.0)
    nb = nbformat.read(graded.root / "autograded" / "print-environ" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", 4)
    printed = "".join(o.get("text", "") for cell in nb.cells for o in cell.get("outputs", []))
    feedback = (graded.root / "feedback" / "print-environ" / ASSIGNMENT / f"{ASSIGNMENT}.html").read_text()
    line = next(line for line in printed.splitlines() if line.startswith("environment: "))
    environment = ast.literal_eval(line.removeprefix("environment: "))
    assert "/proc/1/environ" in printed  # the sandbox's own processes: started with the same minimal environment
    for text in (printed, feedback):
        for secret in SECRETS.values():
            assert secret not in text
    home = Path(environment["HOME"])  # its own scratch home, not the instructor's (in the warm template's runs folder)
    assert home.parts[:2] == ("/", "tmp") and home.parent.name.startswith("convcourse-kernel-")
    assert "checkout solutions: []" in printed  # neither the notebooks in source/ nor the scripts in authoring/
    set_inside = {"JPY_PARENT_PID", "PWD",  # the launcher; bubblewrap after its --chdir
                  "TERM", "CLICOLOR", "CLICOLOR_FORCE", "FORCE_COLOR", "PAGER", "GIT_PAGER", "MPLBACKEND",  # ipykernel
                  "PYDEVD_USE_FRAME_EVAL"}
    unexpected = {name for name in environment
                  if not (kernel_env.allowed(name) or name in kernel_env.SET_FOR_KERNEL or name in set_inside)}
    assert not unexpected, environment


def test_every_kernel_started_warm(graded):
    assert "a kernel started cold" not in graded.output, graded.output
    runnable = len(graded.made) + 1 - graded.output.count("problem: ")  # and print-environ; less those without a notebook
    assert f"kernels: {runnable} forked warm from the template, 0 started cold" in graded.output, graded.output


def test_network_is_unreachable(graded):
    assert graded.connections == 0
    text = outputs_text(autograded(graded, "network"), "stream")
    assert "no connection to 127.0.0.1" in text and "NETWORK REACHED" not in text


def test_escapes_are_blocked_and_the_course_is_intact(graded):
    text = outputs_text(autograded(graded, "escape"), "stream")
    assert "ESCAPED" not in text and "blocked: delete" in text
    assert not list(graded.root.rglob("escaped-by-student.txt"))
    assert (graded.root / "nbgrader_config.py").read_bytes() == graded.config
    assert (graded.root / "gradebook.db").stat().st_size > 0


def test_memory_bomb_hits_the_cap(graded):
    nb = autograded(graded, "memory_bomb")
    assert "MemoryError" in outputs_text(nb, "error") and "NOTHING STOPPED" not in outputs_text(nb, "stream")


def test_megabytes_of_output_are_capped(graded):
    path = graded.root / "autograded" / "huge-output" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    assert path.stat().st_size < 1_500_000
    assert "bytes dropped" in outputs_text(autograded(graded, "huge_output"))


@pytest.mark.parametrize("case, reason", [("os_exit", "DeadKernelError"), ("stubborn_loop", "CellTimeoutError")])
def test_tests_after_a_lost_kernel_count_as_not_run(graded, case, reason):
    nb = autograded(graded, case)
    tests = [cell for cell in nb.cells if is_test(cell)]
    assert reason in outputs_text(nb)
    assert all("CellNotRun" in str(cell.outputs) for cell in tests[1:])
    assert "CellNotRun" not in str(tests[0].outputs)


def test_unreadable_submissions_are_explained(graded):
    assert "no tiny.ipynb in the submission (found my_solution.ipynb)" in graded.output
    assert "found no notebook at all" in graded.output
    assert "tiny.ipynb cannot be read as a notebook" in graded.output


def test_rerun_grades_only_new_and_changed_submissions(graded):
    before = dict(graded.scores)
    full = next(s for s in graded.made if s.case == "full")
    full.write(graded.root, "late-student")
    full.write(graded.root, "partial")  # partial hands in again, now complete
    done = run_grade(graded.root, "--jobs", "2")
    assert "grading 2 submission(s)" in done.stdout
    after = autograded_scores(graded.root)
    assert after[("late-student", ASSIGNMENT)] == after[("partial", ASSIGNMENT)] == (4.0, 4.0)
    assert {k: v for k, v in after.items() if k[0] not in ("late-student", "partial")} == \
           {k: v for k, v in before.items() if k[0] != "partial"}


def _grade_rows(root: Path) -> dict:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        return {(s.student_id, g.name): (g.auto_score, g.needs_manual_grade)
                for s in gb.assignment_submissions(ASSIGNMENT) for nb in s.notebooks for g in nb.grades}


def test_parallel_grading_matches_serial_grading(graded):
    subset = ("full", "blank", "partial", "os_exit", "deleted_tests", "swallow_ast")
    folder = course_dir("convcourse-serial-")
    try:
        root = make_course(folder / "course")
        for submission in graded.made:
            if submission.case in subset:
                submission.write(root)
        run_grade(root, "--jobs", "1")
        serial = _grade_rows(root)
        students = {case.replace("_", "-") for case in subset}
        parallel = {k: v for k, v in _grade_rows(graded.root).items() if k[0] in students - {"partial"}}
        assert parallel == {k: v for k, v in serial.items() if k[0] != "partial"}
        assert len(serial) == len(subset) * 4  # three tests and the written answer each
    finally:
        shutil.rmtree(folder)


def test_plain_nbgrader_commands_grade_sandboxed(tmp_path):
    folder = course_dir("convcourse-plain-")
    listener = Listener()
    try:
        root = make_course(folder / "course")
        ctx = samples.context(root, ASSIGNMENT, samples.Options(network_target=("127.0.0.1", listener.port)))
        for case in ("full", "network"):
            samples.build(ctx, case).write(root)
        env = {**os.environ, **GRADING_ENV, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
        for command in (["autograde", ASSIGNMENT], ["generate_feedback", ASSIGNMENT], ["export"]):
            done = subprocess.run([sys.executable, "-m", "nbgrader", *command], cwd=root, env=env,
                                  capture_output=True, text=True, timeout=300)
            assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        scores = autograded_scores(root)
        assert scores == {("full", ASSIGNMENT): (4.0, 4.0), ("network", ASSIGNMENT): (4.0, 4.0)}
        assert listener.connections == 0
        assert (root / "feedback" / "network" / ASSIGNMENT / f"{ASSIGNMENT}.html").is_file()
        assert "network" in (root / "grades.csv").read_text()
    finally:
        listener.close()
        shutil.rmtree(folder)


def test_grading_refuses_to_run_unsandboxed_unless_allowed(monkeypatch, tmp_path, capsys):
    root = make_course(tmp_path / "course")
    monkeypatch.setattr(sandbox, "sandbox_status", lambda: sandbox.Status(False, "pretend: not root"))
    monkeypatch.delenv(sandbox.ALLOW_ENV, raising=False)
    for name, value in GRADING_ENV.items():
        monkeypatch.setenv(name, value)
    assert main(["--root", str(root), "grade"]) == 2
    assert "pretend: not root" in capsys.readouterr().err
    assert not (root / "grades.csv").exists()
    assert main(["--root", str(root), "grade", "--allow-unsandboxed"]) == 0  # nothing submitted: no kernels
    assert "WITHOUT the sandbox" in capsys.readouterr().err

"""The whole student <-> instructor cycle through nbgrader's exchange, as separate ordinary accounts (~1.5 min).

An instructor account (not root) releases ``output_dimensions``; two student accounts fetch it, solve
it (one fully, one partly; the first hands in twice) and submit; the instructor collects, grades
sandboxed with ``python -m convcourse.grading grade`` (what ``make grade`` runs), generates and
releases feedback; the students fetch it. Exact scores, who can read what, and the second hand-in
winning are asserted. The Formgrader's Autograde button is driven in a real browser on the same
collected course: JupyterLab started as the instructor account, Playwright driving Debian's chromium.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import time
import urllib.request

import nbformat
import pytest
from accounts import ROOT, as_user, ensure_bubblewrap, python, require_root
from browser import CHROMIUM_ARGS
from exchange_cycle import ASSIGNMENT, COURSE_ID, hand_in, solutions, start

from convcourse.grading.course.release import points
from convcourse.grading.course.report import autograded_scores

pytestmark = [pytest.mark.slow]


@pytest.fixture(scope="module")
def cycle():
    """Released, fetched, solved, submitted (student 1 twice) and collected; yields (cycle, what was handed in)."""
    require_root()
    ensure_bubblewrap()
    cycle = start()
    try:
        first, second = cycle.students
        for student in cycle.students:
            cycle.nbgrader(student, "fetch_assignment", ASSIGNMENT)
        answers = solutions()
        stamps = {"first try": hand_in(cycle, first, answers["partial"]),
                  first.name: hand_in(cycle, first, answers["full"]),  # a second hand-in: this one counts
                  second.name: hand_in(cycle, second, answers["partial"])}
        cycle.nbgrader(cycle.instructor, "collect", ASSIGNMENT)
        yield cycle, answers, stamps
    finally:
        shutil.rmtree(cycle.scratch, ignore_errors=True)


def test_students_cannot_read_each_others_work_or_the_instructors_course(cycle):
    cycle, _, _ = cycle
    first, second = cycle.students
    inbound = cycle.exchange / COURSE_ID / "inbound"
    assert len(list(inbound.glob(f"{first.name}+{ASSIGNMENT}+*"))) == 2  # both hand-ins kept
    for path in (inbound, cycle.homes[first.name] / ASSIGNMENT / f"{ASSIGNMENT}.ipynb",
                 cycle.course / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb",
                 cycle.course / "submitted" / first.name / ASSIGNMENT / f"{ASSIGNMENT}.ipynb",
                 cycle.course / "gradebook.db"):
        assert path.exists(), path
        done = cycle.run(second, "cat" if path.is_file() else "ls", str(path), check=False)
        assert done.returncode != 0 and "Permission denied" in done.stderr, (path, done.stdout[:200])
    released = cycle.exchange / COURSE_ID / "outbound" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    assert cycle.run(second, "cat", str(released)).stdout.startswith("{")  # what was released is for everyone

# ---------------------------------------------------------------------------------- the Formgrader in a browser

SERVER_START_S = 90
AUTOGRADE_TIMEOUT_MS = 240_000


@pytest.fixture
def formgrader(cycle):
    """JupyterLab on the course, started as the instructor account (never root), on loopback with a token."""
    cycle, _, _ = cycle
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    token, base = secrets.token_hex(16), f"http://127.0.0.1:{port}"
    argv = [python(), "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ServerApp.port_retries=0",
            f"--ServerApp.token={token}", "--ServerApp.ip=127.0.0.1", f"--ServerApp.root_dir={cycle.course}",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    log = cycle.scratch / "jupyterlab.log"
    with open(log, "wb") as out:
        server = subprocess.Popen(as_user(cycle.instructor, argv, cycle.env(cycle.instructor)), cwd=cycle.course,
                                  stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + SERVER_START_S
        while not _answers(f"{base}/api/status?token={token}"):
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"JupyterLab as {cycle.instructor.name} did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.3)
        yield {"base": base, "token": token, "log": log}
    finally:
        _answers(f"{base}/api/shutdown", token=token)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, 9)
            server.wait(timeout=10)


def _answers(url: str, token: str | None = None) -> bool:
    request = urllib.request.Request(url, method="POST" if token else "GET",
                                     headers={"Authorization": f"token {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.mark.browser
def test_formgrader_autograde_button_grades_sandboxed_and_shows_the_score(cycle, formgrader, chromium):
    from playwright import sync_api

    cycle, answers, _ = cycle
    student = cycle.students[1]
    total = points(cycle.course, (ASSIGNMENT,))[ASSIGNMENT]["total"]
    shot = ROOT / "artifacts" / "browser-formgrader.png"
    shot.parent.mkdir(exist_ok=True)
    shot.unlink(missing_ok=True)
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.set_default_timeout(60_000)
            # Logging in sets the cookie the Formgrader's own requests rely on (a ?token= URL does not).
            page.goto(f"{formgrader['base']}/login?next=/formgrader/manage_submissions/{ASSIGNMENT}")
            page.fill("input[type=password]", formgrader["token"])
            page.click("#login_submit")
            rows = page.locator("tbody tr")
            rows.filter(has_text=cycle.students[0].name).wait_for()  # the Formgrader lists both submissions
            row = rows.filter(has_text=student.name)
            row.locator(".autograde a").click()
            page.locator("#success-modal, #error-modal").wait_for(timeout=AUTOGRADE_TIMEOUT_MS)
            assert page.locator("#success-modal").count() == 1, page.locator(".modal-body").inner_text()
            page.locator("#success-modal .modal-footer button").click()
            page.locator("#success-modal").wait_for(state="hidden")
            score = row.locator(".score")
            page.wait_for_function("el => /\\d/.test(el.innerText)", arg=score.element_handle())
            assert score.inner_text().strip() == f"{answers['partial'].expected:g} / {total:g}"
        finally:
            try:
                page.screenshot(path=str(shot))
            finally:
                browser.close()
    graded = nbformat.read(cycle.course / "autograded" / student.name / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", 4)
    outputs = json.dumps([cell.get("outputs", []) for cell in graded.cells])
    assert "interfaces ['lo']" in outputs  # the graded kernel had its own network namespace: sandboxed
    assert shot.stat().st_size > 10_000


# ---------------------------------------------------------------------------------- grading, feedback, fetching it


def test_the_exchange_cycle_grades_the_last_hand_in_and_returns_feedback(cycle):
    cycle, answers, stamps = cycle
    first, second = cycle.students
    collected = cycle.course / "submitted" / first.name / ASSIGNMENT / "timestamp.txt"
    assert collected.read_text() == stamps[first.name] != stamps["first try"]

    graded = cycle.run(cycle.instructor, python(), "-m", "convcourse.grading", "grade", "--jobs", "2")
    assert "sandboxed" in graded.stdout and "WITHOUT" not in graded.stdout + graded.stderr, graded.stdout
    cycle.nbgrader(cycle.instructor, "generate_feedback", ASSIGNMENT, "--force")
    cycle.nbgrader(cycle.instructor, "release_feedback", ASSIGNMENT)

    top = answers["full"].expected
    assert autograded_scores(cycle.course) == {(first.name, ASSIGNMENT): (top, top),
                                               (second.name, ASSIGNMENT): (answers["partial"].expected, top)}
    assert 0 < answers["partial"].expected < top
    written = points(cycle.course, (ASSIGNMENT,))[ASSIGNMENT]["total"]  # the feedback's maximum counts written answers
    for student, handed_in in zip(cycle.students, ("full", "partial")):
        cycle.nbgrader(student, "fetch_feedback", ASSIGNMENT)
        fetched = list((cycle.homes[student.name] / ASSIGNMENT / "feedback").glob(f"*/{ASSIGNMENT}.html"))
        assert [p.parent.name for p in fetched] == [stamps[student.name]], fetched  # feedback on the counted hand-in
        score = f"(Score: {float(round(answers[handed_in].expected, 2))} / {float(round(written, 2))})"
        assert score in fetched[0].read_text(), score

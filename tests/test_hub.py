"""The course on a real JupyterHub, driven in headless Chromium: two courses on one hub, as docs/hub.md sets it up.

The hub is the demo hub (``python -m convcourse.grading hub up``: JupyterHub with configurable-http-proxy, PAM
logins, each person's server started as their own system account, all on 127.0.0.1) running this course's
``hub/jupyterhub_config.py`` and ``hub/nbgrader_config.py`` unchanged, with two courses: ``cct-a`` and ``cct-b``
(this course under two ids). In the browser, two students of cct-a log in, fetch ``output_dimensions`` in the
*Assignments* tab, get their notebook (one solved, one partly), *Validate* and *Submit*; cct-a's instructor
collects, autogrades (sandboxed, in the Formgrader service run by cct-a's grader account), generates and releases
feedback; the students fetch it and open it. Exact scores, and that none of the hub's secrets reach a graded
kernel or a feedback page. The second test: a student of cct-b sees only cct-b's assignment, and cct-a's
instructor cannot open cct-b's Formgrader. ``hub down`` afterwards must leave nothing: no account, process,
port or folder (checked when the module ends). About 2.5 minutes on 2 busy cores, a third of it the hub's set-up.
"""
from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest
from accounts import ROOT, ensure_bubblewrap, python, require_root, revealed, unavailable
from browser import ARTIFACTS, CHROMIUM_ARGS
from exchange_cycle import ASSIGNMENT, GRADING_ENV, solutions

from convcourse.grading.course.release import points
from convcourse.grading.hub import demo, processes, refusals

pytestmark = [pytest.mark.slow, pytest.mark.browser]

COURSE, OTHER = "cct-a", "cct-b"
PLAN = demo.Plan(courses=(COURSE, OTHER), students=2, assignments=(ASSIGNMENT,))
UP_S = 600  # accounts, two courses released by their graders, the hub and two grader services (~1 min on 2 busy cores)
SPAWN_MS = 180_000  # a student's server: JupyterLab starting as their account
UI_MS = 60_000
GRADE_MS = 300_000  # one sandboxed autograde, or feedback for the class, on a loaded machine
SHOW_ENVIRONMENT = "import os\nprint('environment:', dict(os.environ))"


@dataclass
class Hub:
    """A running demo hub: its URL, state folder and the passwords ``hub up`` printed."""

    base: str
    state: Path
    passwords: dict[str, str]

    def home(self, name: str) -> Path:
        return Path(pwd.getpwnam(name).pw_dir)

    def course(self, course: str) -> Path:
        """The course folder of ``course``'s grader."""
        return self.home(PLAN.people(course)["grader"]) / course


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _leftovers(state: Path, port: int) -> list[str]:
    """What a removed demo hub must not leave: accounts, their processes, the state folder, the port."""
    left = [f"account {name}" for name in PLAN.accounts() if refusals.account_exists(name)]
    left += [f"process {pid}" for pid in processes.pids() if _owner(pid) in {name for name in PLAN.accounts()}]
    left += [f"folder {state}"] if state.exists() else []
    left += [] if refusals.port_free("127.0.0.1", port) else [f"port {port}"]
    return left


def _owner(pid: int) -> str | None:
    try:
        return pwd.getpwuid(Path(f"/proc/{pid}").stat().st_uid).pw_name
    except (OSError, KeyError):
        return None


def ensure_proxy() -> None:
    """JupyterHub's proxy in the venv, installed here with npm (from apt when missing): `hub up` runs in a namespace
    whose /root is a tiny tmpfs (tests/accounts.py), where npm's cache would not fit."""
    if not (Path(sys.prefix) / "bin" / "configurable-http-proxy").exists() and not shutil.which("npm"):
        script = ROOT / "scripts" / "ensure-apt.sh"
        done = subprocess.run(["bash", str(script), "npm", "npm"], capture_output=True, text=True, timeout=900)
        if done.returncode != 0 or not shutil.which("npm"):
            unavailable(f"npm is missing and {script.name} could not install it: {(done.stderr or done.stdout)[-500:]}")
    try:
        refusals.ensure_proxy(ROOT)
    except demo.HubError as error:
        unavailable(str(error))


@pytest.fixture(scope="module")
def hub():
    """The demo hub with two courses, up for the module; removed afterwards, and nothing of it may remain."""
    require_root()
    ensure_bubblewrap()
    ensure_proxy()
    taken = [name for name in PLAN.accounts() if refusals.account_exists(name)]
    if taken:
        states = sorted(str(path.parent) for path in Path("/var/tmp").glob("convcourse-hub-*/state/made.json"))
        pytest.fail(f"accounts {taken} exist: a demo hub of an earlier run is still up (its state: {states}); remove "
                    "it with `python -m convcourse.grading hub down --state STATE`")
    scratch = Path(tempfile.mkdtemp(prefix="convcourse-hub-", dir="/var/tmp"))
    scratch.chmod(0o755)
    state, port = scratch / "state", _free_port()
    argv = [python(), "-m", "convcourse.grading", "hub", "up", "--state", str(state), "--port", str(port),
            "--students", str(PLAN.students), "--assignment", ASSIGNMENT,
            *(arg for course in PLAN.courses for arg in ("--course", course))]
    try:
        # Its children run as the accounts: they must be able to run this project's interpreter (tests/accounts.py).
        done = subprocess.run(revealed(argv), cwd=ROOT, env={**os.environ, **GRADING_ENV}, capture_output=True,
                              text=True, timeout=UP_S)
        if done.returncode != 0:
            pytest.fail(f"hub up exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
        passwords = dict(re.findall(r"^  \w+ +(\S+) +password (\S+)$", done.stdout, re.MULTILINE))
        assert sorted(passwords) == sorted(PLAN.accounts()), done.stdout
        yield Hub(f"http://127.0.0.1:{port}", state, passwords)
    finally:
        if (state / "jupyterhub.log").is_file():  # kept for a failure's post-mortem: `hub down` removes the state
            ARTIFACTS.mkdir(exist_ok=True)
            shutil.copy(state / "jupyterhub.log", ARTIFACTS / "hub-jupyterhub.log")
        removed = subprocess.run([python(), "-m", "convcourse.grading", "hub", "down", "--state", str(state)],
                                 cwd=ROOT, capture_output=True, text=True, timeout=300)
        shutil.rmtree(scratch, ignore_errors=True)
        left = _leftovers(state, port)
        assert removed.returncode == 0 and not left, (removed.stdout, removed.stderr, left)


@pytest.fixture(scope="module")
def browser(chromium):
    from playwright import sync_api

    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def log_in(browser, hub: Hub, name: str, next_path: str = ""):
    """A fresh browser session of ``name``, logged in through the hub's login form (and sent on to ``next_path``)."""
    page = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
    page.set_default_timeout(UI_MS)
    page.goto(f"{hub.base}/hub/login" + (f"?next={next_path}" if next_path else ""))
    page.fill("#username_input", name)
    page.fill("#password_input", hub.passwords[name])
    page.click("#login_submit")
    return page


def open_assignments(page, name: str):
    """Wait for ``name``'s JupyterLab (the hub spawns it after login), then open the Assignments tab from the menu."""
    page.wait_for_url(re.compile(f"/user/{name}/lab"), timeout=SPAWN_MS)
    page.locator("#jp-menu-panel .lm-MenuBar-itemLabel", has_text="Nbgrader").click(timeout=SPAWN_MS)
    page.locator('#jp-mainmenu-nbgrader li[data-command="nbgrader:open-assignment-list"]').click()
    page.locator("#released_assignments_list").wait_for()


def rows(page, status: str):
    """The rows of one list of the Assignments tab: released, fetched or submitted."""
    return page.locator(f"#{status}_assignments_list > .list_item")


def formgrader_click(page, cell) -> None:
    """Click a Formgrader action link and wait for its success dialog (an error dialog fails the test)."""
    from playwright.sync_api import expect

    cell.locator("a").click()
    page.locator("#success-modal, #error-modal").wait_for(timeout=GRADE_MS)
    assert page.locator("#success-modal").count() == 1, page.locator(".modal-body").inner_text()
    page.locator("#success-modal .modal-footer button").click()
    expect(page.locator("#success-modal")).to_have_count(0)


def shoot(page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"hub-{name}.png"
    page.screenshot(path=str(path))
    return path


def hub_secrets(hub: Hub) -> dict[str, str]:
    """The hub's secrets as they stand: every API token in the environments of the hub's processes and the
    accounts' servers and services, the proxy's token and the cookie secret."""
    found = {"cookie secret": (hub.state / "jupyterhub_cookie_secret").read_text().strip()}
    for pid in processes.pids():
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        for entry in environ:
            key, _, value = entry.decode(errors="replace").partition("=")
            if key in ("JUPYTERHUB_API_TOKEN", "JPY_API_TOKEN", "CONFIGPROXY_AUTH_TOKEN") and value:
                found[f"{key} of {_owner(pid)}"] = value  # one token per account: its server's, or its service's
    return found


def test_students_fetch_validate_submit_and_the_instructor_grades_in_the_formgrader(hub, browser):
    from playwright.sync_api import expect

    first, second = PLAN.people(COURSE)["students"]
    instructor = PLAN.people(COURSE)["instructors"][0]
    answers = solutions(SHOW_ENVIRONMENT)
    total = points(hub.course(COURSE), (ASSIGNMENT,))[ASSIGNMENT]["total"]
    pages = {name: log_in(browser, hub, name) for name in (first, second)}  # both servers spawn at once
    try:
        for name, case in ((first, "full"), (second, "partial")):
            page = pages[name]
            open_assignments(page, name)
            expect(rows(page, "released")).to_have_count(1)  # cct-b's release is not for a cct-a student
            assert rows(page, "released").first.locator(".item_course").inner_text() == COURSE
            rows(page, "released").first.locator(".item_status button").click()  # Fetch
            expect(rows(page, "fetched")).to_have_count(1)
            notebook = hub.home(name) / COURSE / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
            assert notebook.is_file(), notebook
            notebook.write_bytes(answers[case].files[f"{ASSIGNMENT}.ipynb"])  # the student's work, put in place
            account = pwd.getpwnam(name)
            os.chown(notebook, account.pw_uid, account.pw_gid)
            if case == "full":
                page.locator("#fetched_assignments_list a.assignment-notebooks-link", has_text=ASSIGNMENT).click()  # unfold it
                page.locator("#fetched_assignments_list button", has_text="Validate").click()
                page.locator(".nbgrader-SuccessDialog, .nbgrader-ErrorDialog").wait_for(timeout=GRADE_MS)
                assert page.locator(".nbgrader-SuccessDialog").count() == 1, page.locator(".jp-Dialog").inner_text()
                page.locator(".nbgrader-SuccessDialog button.jp-Dialog-button").click()
            rows(page, "fetched").first.locator(".item_status button", has_text="Submit").click()
            expect(rows(page, "submitted")).to_have_count(1)
        shoot(pages[first], "assignments")

        # The instructor, in cct-a's Formgrader (a hub service run by grader-cct-a): collect, autograde, feedback.
        manage = f"/services/{COURSE}/formgrader/manage_assignments"
        grader = log_in(browser, hub, instructor, next_path=manage)
        grader.wait_for_url(re.compile(re.escape(manage)), timeout=SPAWN_MS)
        assignment = grader.locator("tbody tr", has_text=ASSIGNMENT)
        formgrader_click(grader, assignment.locator(".collect"))
        grader.goto(f"{hub.base}/services/{COURSE}/formgrader/manage_submissions/{ASSIGNMENT}")
        for name, case in ((first, "full"), (second, "partial")):
            row = grader.locator("tbody tr", has_text=name)
            formgrader_click(grader, row.locator(".autograde"))
            score = row.locator(".score")
            grader.wait_for_function("el => /\\d/.test(el.innerText)", arg=score.element_handle())
            assert score.inner_text().strip() == f"{answers[case].expected:g} / {total:g}", name
        shoot(grader, "formgrader")
        grader.goto(f"{hub.base}{manage}")
        formgrader_click(grader, assignment.locator(".generate-feedback"))
        formgrader_click(grader, assignment.locator(".release-feedback"))

        # The students fetch their feedback in the Assignments tab and open it.
        for name, case in ((first, "full"), (second, "partial")):
            page = pages[name]
            page.locator("#refresh_assignments_list").click()
            rows(page, "submitted").first.locator(".item_status button", has_text="Fetch Feedback").click()
            page.locator("#submitted_assignments_list a", has_text="view feedback").click()
            (fetched,) = (hub.home(name) / COURSE / ASSIGNMENT / "feedback").glob(f"*/{ASSIGNMENT}.html")
            page.goto(f"{hub.base}/user/{name}/files/{fetched.relative_to(hub.home(name))}")
            expected = f"Score: {float(round(answers[case].expected, 2))} / {float(round(total, 2))}"
            assert expected in page.content(), expected
        shoot(pages[second], "feedback")
    finally:
        for page in (*pages.values(),):
            page.context.close()

    # None of the hub's secrets reached the graded kernel (it printed its whole environment) or the feedback page.
    course = hub.course(COURSE)
    graded = nbformat.read(course / "autograded" / second / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", 4)
    outputs = json.dumps([cell.get("outputs", []) for cell in graded.cells])
    feedback = next((course / "feedback" / second / ASSIGNMENT).glob(f"{ASSIGNMENT}.html")).read_text()
    assert "environment:" in outputs and "'HOME'" in outputs and "interfaces ['lo']" in outputs
    assert "JUPYTERHUB" not in outputs and "JUPYTERHUB" not in feedback
    secrets = hub_secrets(hub)
    holders = {f"JUPYTERHUB_API_TOKEN of {name}" for name in (first, second, PLAN.people(COURSE)["grader"])}
    assert holders | {"CONFIGPROXY_AUTH_TOKEN of root"} <= set(secrets), secrets.keys()  # found where they live
    # Autograded by the grader's account (no root), in the sandbox (the kernel saw only loopback).
    assert (course / "autograded" / second).stat().st_uid == pwd.getpwnam(PLAN.people(COURSE)["grader"]).pw_uid
    leaked = [what for what, value in secrets.items() if value in outputs or value in feedback]
    assert not leaked, leaked


def test_each_course_sees_its_own_assignments_and_only_its_graders_open_its_formgrader(hub, browser):
    from playwright.sync_api import expect

    student = PLAN.people(OTHER)["students"][0]
    page = log_in(browser, hub, student)
    try:
        open_assignments(page, student)
        expect(rows(page, "released")).to_have_count(1)
        assert rows(page, "released").first.locator(".item_course").inner_text() == OTHER
        shoot(page, "other-course")
    finally:
        page.context.close()

    formgrader = f"/services/{OTHER}/formgrader/manage_assignments"
    for name, allowed in ((PLAN.people(OTHER)["instructors"][0], True), (PLAN.people(COURSE)["instructors"][0], False)):
        page = log_in(browser, hub, name, next_path=formgrader)
        try:
            if allowed:
                page.wait_for_url(re.compile(re.escape(formgrader)), timeout=SPAWN_MS)
                page.locator("tbody tr", has_text=ASSIGNMENT).wait_for()
            else:  # the hub refuses before the request reaches cct-b's Formgrader
                denial = page.locator("h1", has_text="403")
                denial.wait_for(timeout=SPAWN_MS)
                assert f"permission to access JupyterHub service {OTHER}" in denial.inner_text()
                assert page.locator("tbody tr").count() == 0
                shoot(page, "forbidden")
        finally:
            page.context.close()

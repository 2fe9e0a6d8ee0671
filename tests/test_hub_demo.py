"""The demo hub's refusals: each place it cannot work ends in one `error:` line, before anything is made;
an `up` that fails halfway removes what it made; the hub guide shows the files the demo hub runs.

(Setting it up and removing it, leaving nothing behind, is tests/test_hub.py's fixture.) The machine's
facts are simulated where a test machine has them the other way round: not root, no npm.
"""
from __future__ import annotations

import json
import re
import shutil
import socket
import tempfile
import textwrap
from pathlib import Path

import pytest
from accounts import require_root

from convcourse.grading import __main__ as cli
from convcourse.grading.hub import demo, refusals

ROOT = Path(__file__).resolve().parents[1]


def refusal(capsys, *args: str) -> str:
    """The one `error:` line of `python -m convcourse.grading hub ARGS` (exit status 2)."""
    assert cli.main(["--root", str(ROOT), "hub", *args]) == 2
    err = capsys.readouterr().err
    assert err.count("error: ") == 1 and err.startswith("error: ") and len(err.strip().splitlines()) == 1, err
    return err


@pytest.fixture
def can_start(monkeypatch, tmp_path):
    """Root, this interpreter open to every account, a proxy in place: the checks that remain decide."""
    monkeypatch.setattr(refusals.os, "geteuid", lambda: 0)
    monkeypatch.setattr(refusals, "closed_to_others", lambda paths: None)
    monkeypatch.setattr(refusals, "ensure_proxy", lambda root: Path("/bin/true"))
    return tmp_path / "state"


def test_not_root(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(refusals.os, "geteuid", lambda: 1000)
    assert "run it as root" in refusal(capsys, "up", "--state", str(tmp_path / "state"))
    assert "needs root" in refusal(capsys, "down", "--state", str(tmp_path / "state"))


def test_port_taken(can_start, capsys):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert f"port {port} on 127.0.0.1 is taken" in refusal(capsys, "up", "--state", str(can_start),
                                                                "--port", str(port))
    assert not can_start.exists()


def test_no_npm_for_the_proxy(can_start, monkeypatch, capsys, tmp_path):
    monkeypatch.undo()
    monkeypatch.setattr(refusals.os, "geteuid", lambda: 0)
    monkeypatch.setattr(refusals, "closed_to_others", lambda paths: None)
    monkeypatch.setattr(refusals.sys, "prefix", str(tmp_path))  # a venv without configurable-http-proxy
    which = refusals.shutil.which
    monkeypatch.setattr(refusals.shutil, "which", lambda name: None if name == "npm" else which(name))
    assert "proxy (configurable-http-proxy, from npm) is missing and so is npm" in refusal(
        capsys, "up", "--state", str(can_start), "--port", "0")
    assert not can_start.exists()


def test_an_interpreter_other_accounts_cannot_run():
    open_dir = Path(tempfile.mkdtemp(dir="/var/tmp"))  # pytest's own tmp_path lies in a folder closed to others
    try:
        open_dir.chmod(0o755)
        (open_dir / "closed" / "venv").mkdir(parents=True)
        (open_dir / "closed").chmod(0o700)
        assert refusals.closed_to_others([open_dir / "closed" / "venv"]) == open_dir / "closed"
        assert refusals.closed_to_others([open_dir]) is None
    finally:
        shutil.rmtree(open_dir)


def test_bad_course_ids_students_state_and_accounts(can_start, monkeypatch, capsys, tmp_path):
    assert "no such assignment in" in refusal(capsys, "up", "--state", str(can_start), "--assignment", "nope")
    assert "course id 'Big_Course'" in refusal(capsys, "up", "--state", str(can_start), "--course", "Big_Course")
    assert "--students 0" in refusal(capsys, "up", "--state", str(can_start), "--students", "0")
    assert "a demo hub is set up already" in refusal(capsys, "up", "--state", str(tmp_path))
    monkeypatch.setattr(refusals, "account_exists", lambda name: name == "cc9-student2")
    assert "cc9-student2 exist already" in refusal(capsys, "up", "--state", str(can_start), "--course", "cc9")
    assert not can_start.exists()


def test_down_leaves_a_folder_it_did_not_make_alone(can_start, capsys, tmp_path):
    (tmp_path / "keep.txt").write_text("not a hub")
    assert "not a demo hub's state folder" in refusal(capsys, "down", "--state", str(tmp_path))
    assert (tmp_path / "keep.txt").exists()
    assert cli.main(["--root", str(ROOT), "hub", "down", "--state", str(tmp_path / "none")]) == 0
    assert "nothing to remove" in capsys.readouterr().out


def test_class_list_is_what_the_hub_config_reads():
    courses = demo.class_list(demo.Plan(courses=("c1", "c2"), students=2))["courses"]
    assert courses["c2"] == {"grader": "grader-c2", "instructors": ["c2-instructor"],
                             "students": ["c2-student1", "c2-student2"]}
    assert json.loads(json.dumps(courses)) == courses


def test_the_hub_guide_shows_the_files_the_demo_hub_and_its_test_run():
    assert all((demo.hub_files(ROOT) / name).is_file() for name in demo.HUB_FILES)
    assert (ROOT / refusals.PROXY_SCRIPT).is_file()
    guide = (ROOT / "docs" / "hub.md").read_text()
    included = set(re.findall(r'--8<-- "(hub/[^"]+)"', guide))  # put in the page by the docs build, not copied
    assert included == {f"hub/{name}" for name in demo.HUB_FILES}
    (shown,) = re.findall(r"```json\n(.*?)\n *```", guide, re.DOTALL)
    assert json.loads(textwrap.dedent(shown)) == demo.class_list(demo.Plan())
    for page in ("hub.md", "cluster.md"):  # the hub's and the workers' install commands install the lock
        assert "pip install --no-deps -r requirements.txt ." in (ROOT / "docs" / page).read_text(), page


def test_an_up_that_fails_halfway_leaves_nothing(can_start, monkeypatch):
    """Accounts made, then a failure: `up` undoes them itself (the same `down` as the command)."""
    require_root()
    plan = demo.Plan(courses=("cct-z",), students=1, assignments=("output_dimensions",), state=can_start, port=0)
    assert not any(refusals.account_exists(name) for name in plan.accounts())

    def fail(*args):
        assert all(refusals.account_exists(name) for name in plan.accounts())  # made by then
        raise demo.HubError("releasing failed on purpose")

    monkeypatch.setattr(demo, "_install_courses", fail)
    with pytest.raises(demo.HubError, match="on purpose"):
        demo.up(ROOT, plan)
    assert not any(refusals.account_exists(name) for name in plan.accounts()) and not can_start.exists()

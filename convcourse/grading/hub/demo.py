"""A demo hub on this machine: ``hub up`` makes the accounts, releases the course and starts JupyterHub; ``hub down``
removes every trace of it again.

Each course gets an instructor, a few students and a grader account (``<course>-instructor``,
``<course>-student<N>``, ``grader-<course>``), local system accounts with random passwords. The grader's
course folder is a copy of this course (configuration and ``source/``) in its home, with the assignments
generated and released by that account. The hub runs ``hub/jupyterhub_config.py`` and
``hub/nbgrader_config.py`` of this course unchanged, from a state folder that also holds the exchange, the
class list and the record of what was made (``made.json``, root only): ``hub down`` undoes exactly that.
"""
from __future__ import annotations

import json
import os
import pwd
import secrets
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from convcourse.grading.course.folder import CONFIG_FILE, require_assignments
from convcourse.grading.hub import processes, refusals
from convcourse.grading.hub.plan import STATE, HubError, Plan, class_list, remove_command

__all__ = ["STATE", "HubError", "Plan", "class_list", "up", "down"]

HUB_FILES = ("jupyterhub_config.py", "nbgrader_config.py")  # in the course's hub/: the hub's and everyone's nbgrader config
MADE = "made.json"  # in the state folder: accounts made and the hub's process group, for `hub down`
START_S = 180  # a loaded machine takes ~20 s for the hub and its grader services; a slow one may take far longer


def hub_files(root: Path) -> Path:
    """The course's hub/ folder: jupyterhub_config.py and the global nbgrader_config.py."""
    return Path(root) / "hub"


def up(root: Path, plan: Plan) -> str:
    """Accounts, courses released, hub started; returns what to tell the instructor (URL, passwords, removal)."""
    root = Path(root).resolve()
    known = require_assignments(root)
    unknown = [name for name in plan.assignments if name not in known]
    if unknown:
        raise HubError(f"no such assignment in {root / 'source'}: {', '.join(unknown)} (there are: {', '.join(known)})")
    assignments = plan.assignments or tuple(known)
    refusals.check_can_start(root, plan)
    plan.state.mkdir(parents=True, mode=0o755)
    plan.state.chmod(0o755)  # every account reaches the exchange inside it
    made: dict = {"accounts": [], "pgid": None}
    passwords: dict[str, str] = {}
    try:
        for name in plan.accounts():  # none of them existed (checked above), so `down` may remove each one
            made["accounts"].append(name)
            _record(plan.state, made)  # before useradd: an interrupted `up` is still undone by `down`
            subprocess.run(["useradd", "--create-home", "--shell", "/bin/bash", name], check=True, capture_output=True)
            passwords[name] = secrets.token_urlsafe(9)
            subprocess.run(["chpasswd"], input=f"{name}:{passwords[name]}\n", text=True, check=True, capture_output=True)
            Path(pwd.getpwnam(name).pw_dir).chmod(0o700)  # nobody reads another's work
        _record(plan.state, made)
        env = hub_env(plan)
        (plan.state / "exchange").mkdir(mode=0o1777)
        (plan.state / "exchange").chmod(0o1777)
        (plan.state / "etc-jupyter").mkdir()
        hub_config, nbgrader_config = (hub_files(root) / name for name in HUB_FILES)
        shutil.copy2(nbgrader_config, plan.state / "etc-jupyter" / "nbgrader_config.py")  # its /etc/jupyter
        (plan.state / "courses.json").write_text(json.dumps(class_list(plan), indent=2) + "\n")
        _install_courses(root, plan, assignments, env)
        _start_hub(hub_config, plan, env, made)
    except BaseException:
        down(plan.state)
        raise
    return announce(plan, passwords)


def hub_env(plan: Plan) -> dict[str, str]:
    """The hub's environment: this venv first on PATH, the demo's global nbgrader config and exchange, CONVCOURSE_*."""
    env = {name: value for name, value in os.environ.items() if name.startswith("CONVCOURSE_")}
    env.update({"PATH": f"{Path(sys.prefix) / 'bin'}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "LANG": os.environ.get("LANG", "C.UTF-8"), "HOME": "/root",
                "JUPYTER_CONFIG_PATH": str(plan.state / "etc-jupyter"),
                "CONVCOURSE_EXCHANGE": str(plan.state / "exchange")})
    return env


def _install_courses(root: Path, plan: Plan, assignments: tuple[str, ...], env: dict[str, str]) -> None:
    """Each course copied into its grader's home as ``~/<course>``, then released by the grader (courses in parallel)."""
    running = []
    for course in plan.courses:
        grader = pwd.getpwnam(plan.people(course)["grader"])
        folder = Path(grader.pw_dir) / course
        folder.mkdir(mode=0o700)
        shutil.copy2(root / CONFIG_FILE, folder / CONFIG_FILE)
        for name in assignments:
            shutil.copytree(root / "source" / name, folder / "source" / name)
        for path in [folder, *folder.rglob("*")]:
            os.lchown(path, grader.pw_uid, grader.pw_gid)
        as_grader = {**env, "HOME": grader.pw_dir, "USER": grader.pw_name, "LOGNAME": grader.pw_name,
                     "JUPYTERHUB_SERVICE_NAME": course}  # the course id, as in its Formgrader service
        argv = ["setpriv", f"--reuid={grader.pw_uid}", f"--regid={grader.pw_gid}", "--init-groups", sys.executable,
                "-c", f"from {__name__} import release; release()", str(folder), *assignments]
        running.append((course, subprocess.Popen(argv, cwd=folder, env=as_grader, stdout=subprocess.PIPE,
                                                 stderr=subprocess.STDOUT, text=True)))
    failed = [(course, proc.communicate()[0]) for course, proc in running]
    failed = [f"{course}: {out[-1500:]}" for (course, out), (_, proc) in zip(failed, running) if proc.returncode]
    if failed:
        raise HubError("releasing the course as its grader failed:\n" + "\n".join(failed))


def release(argv: list[str] | None = None) -> None:
    """In the grader's account: generate and release ``argv[1:]`` of the course at ``argv[0]`` (one nbgrader import)."""
    folder, *names = argv if argv is not None else sys.argv[1:]
    from nbgrader.apps import NbGraderAPI
    from nbgrader.apps.baseapp import NbGrader

    os.chdir(folder)
    app = NbGrader()
    app.initialize([])  # nbgrader's own configuration: the global file (the exchange), then the course's
    api = NbGraderAPI(app.coursedir, config=app.config)
    for name in names:
        for step in (api.generate_assignment, api.release_assignment):
            result = step(name)
            if not result["success"]:
                sys.exit(f"nbgrader {step.__name__} {name}: {result.get('error') or result.get('log')}")


def _start_hub(config: Path, plan: Plan, env: dict[str, str], made: dict) -> None:
    """JupyterHub in the state folder, in a process group of its own (recorded at once); waits until it answers."""
    argv = [str(Path(sys.prefix) / "bin" / "jupyterhub"), "-f", str(config),
            f"--ip={plan.ip}", f"--port={plan.port}", f"--JupyterHub.hub_port={refusals.free_port()}",
            f"--ConfigurableHTTPProxy.api_url=http://127.0.0.1:{refusals.free_port()}"]
    with open(plan.state / "jupyterhub.log", "ab") as log:  # the hub keeps its own copy of the descriptor
        hub = subprocess.Popen(argv, cwd=plan.state, env=env, stdout=log, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, start_new_session=True)
    made["pgid"] = hub.pid
    _record(plan.state, made)  # a hub that never answers is still stopped by `down`
    url = f"http://{plan.ip}:{plan.port}/hub/api"
    deadline = time.monotonic() + START_S
    while not _answers(url):
        if hub.poll() is not None or time.monotonic() > deadline:
            tail = (plan.state / "jupyterhub.log").read_text(errors="replace")[-2500:]
            raise HubError(f"JupyterHub did not start (see {plan.state / 'jupyterhub.log'}):\n{tail}")
        time.sleep(0.25)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


def _record(state: Path, made: dict) -> None:
    path = state / MADE
    path.write_text(json.dumps(made, indent=2) + "\n")
    path.chmod(0o600)


def announce(plan: Plan, passwords: dict[str, str]) -> str:
    """What ``hub up`` prints: the URL, each account's role, password and course, and how to remove it all."""
    lines = [f"demo hub up: http://{plan.ip}:{plan.port}/  (log: {plan.state / 'jupyterhub.log'})", ""]
    for course in plan.courses:
        people = plan.people(course)
        lines.append(f"course {course}: its Formgrader is http://{plan.ip}:{plan.port}/services/{course}/formgrader "
                     f"(for {people['instructors'][0]} and {people['grader']})")
        for role, names in (("instructor", people["instructors"]), ("student", people["students"]),
                            ("grader", [people["grader"]])):
            lines += [f"  {role:<10} {name:<28} password {passwords[name]}" for name in names]
    lines += ["", f"remove it all: {remove_command(plan)}"]
    return "\n".join(lines)


def down(state: Path = STATE) -> list[str]:
    """Stop the hub and everything of the demo's accounts, remove the accounts and the state folder; what was removed."""
    state = Path(state)
    if os.geteuid() != 0:
        raise HubError("removing the demo hub's accounts needs root: run it as root (sudo)")
    if not (state / MADE).is_file():
        if state.exists():
            raise HubError(f"{state} holds no {MADE}: not a demo hub's state folder, left alone")
        return []
    made = json.loads((state / MADE).read_text())
    removed = []
    if made.get("pgid"):
        processes.stop_group(made["pgid"])
        removed.append(f"JupyterHub (process group {made['pgid']})")
    for name in made["accounts"]:
        if not refusals.account_exists(name):
            continue
        processes.kill_processes_of(pwd.getpwnam(name).pw_uid)
        subprocess.run(["userdel", "--remove", name], capture_output=True)  # mail spool missing is fine
        if refusals.account_exists(name):
            raise HubError(f"userdel could not remove {name}")
        removed.append(f"account {name}")
    shutil.rmtree(state)
    removed.append(str(state))
    return removed



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
import re
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from convcourse.grading.course import CONFIG_FILE, require_assignments

STATE = Path("/srv/convcourse-hub")
HUB_FILES = ("jupyterhub_config.py", "nbgrader_config.py")  # in the course's hub/: the hub's and everyone's nbgrader config
MADE = "made.json"  # in the state folder: accounts made and the hub's process group, for `hub down`
PID_FILE = "jupyterhub.pid"
COURSE_ID = re.compile(r"[a-z][a-z0-9-]{0,19}")  # account names stay valid (useradd) and under 32 characters
START_S = 180  # a loaded machine takes ~20 s for the hub and its grader services; a slow one may take far longer


class HubError(RuntimeError):
    """The demo hub cannot be set up or removed here (the message says why and what to do)."""


@dataclass(frozen=True)
class Plan:
    """What ``hub up`` makes: courses, students per course, assignments released, where and on which port."""

    courses: tuple[str, ...] = ("convcourse",)
    students: int = 3
    assignments: tuple[str, ...] = ()  # () = every assignment of the course
    state: Path = STATE
    ip: str = "127.0.0.1"
    port: int = 8000

    def people(self, course: str) -> dict[str, list[str]]:
        """The accounts of one course: grader, instructors, students."""
        return {"grader": f"grader-{course}", "instructors": [f"{course}-instructor"],
                "students": [f"{course}-student{n}" for n in range(1, self.students + 1)]}

    def accounts(self) -> list[str]:
        """Every account the demo makes, graders first."""
        return [name for course in self.courses for group in self.people(course).values()
                for name in ([group] if isinstance(group, str) else group)]


def class_list(plan: Plan) -> dict:
    """The hub's courses.json (the format hub/jupyterhub_config.py reads)."""
    return {"courses": {course: plan.people(course) for course in plan.courses}}


def hub_files(root: Path) -> Path:
    """The course's hub/ folder: jupyterhub_config.py and the global nbgrader_config.py."""
    return Path(root) / "hub"


# ------------------------------------------------------------------------------------------------- refusals


def check_can_start(root: Path, plan: Plan) -> Path:
    """Every reason ``hub up`` cannot work here, as one HubError; otherwise the proxy's path."""
    if os.geteuid() != 0:
        raise HubError("the demo hub creates system accounts and starts their servers: run it as root (sudo)")
    for course in plan.courses:
        if not COURSE_ID.fullmatch(course):
            raise HubError(f"course id {course!r}: use 1-20 lowercase letters, digits and '-', starting with a letter "
                           "(it names accounts such as grader-<course> and <course>-student1)")
    if not 1 <= plan.students <= 99:
        raise HubError(f"--students {plan.students}: give 1 to 99 students per course")
    for tool in ("useradd", "userdel", "chpasswd"):
        if shutil.which(tool) is None:
            raise HubError(f"{tool} is missing (Debian: apt-get install passwd); the demo hub makes local accounts")
    if plan.state.exists():
        raise HubError(f"{plan.state} exists: a demo hub is set up already (remove it with `{remove_command(plan)}`)")
    taken = [name for name in plan.accounts() if _exists(name)]
    if taken:
        raise HubError(f"account(s) {', '.join(taken)} exist already; the demo hub makes its own and removes them "
                       "afterwards: choose other course ids (--course)")
    closed = _closed_to_others([Path(sys.prefix), Path(sys.base_prefix), Path(sys.executable).resolve(), Path(root)])
    if closed:
        raise HubError(f"{closed} is closed to other accounts (mode {stat.S_IMODE(closed.stat().st_mode):o}), so the "
                       "students' servers could not run this Python or read the course: make the course's venv from a "
                       "Python every account can run (e.g. /usr/bin/python3 -m venv .venv) in a folder they can enter")
    for port in (plan.port,):
        if not _port_free(plan.ip, port):
            raise HubError(f"port {port} on {plan.ip} is taken: pick another with --port")
    return ensure_proxy(root)


def ensure_proxy(root: Path) -> Path:
    """configurable-http-proxy in this venv (installed with npm by scripts/ensure-proxy.sh when missing)."""
    proxy = Path(sys.prefix) / "bin" / "configurable-http-proxy"
    if proxy.exists():
        return proxy
    if shutil.which("npm") is None:
        raise HubError("JupyterHub's proxy (configurable-http-proxy, from npm) is missing and so is npm: "
                       "install node and npm (Debian: apt-get install nodejs npm), then run this again")
    done = subprocess.run(["bash", str(Path(root) / "scripts" / "ensure-proxy.sh"), sys.prefix],
                          capture_output=True, text=True)
    if done.returncode != 0 or not proxy.exists():
        raise HubError(f"npm could not install configurable-http-proxy: {(done.stderr or done.stdout).strip()[-400:]}")
    return proxy


def _exists(account: str) -> bool:
    try:
        pwd.getpwnam(account)
    except KeyError:
        return False
    return True


def _closed_to_others(paths: list[Path]) -> Path | None:
    """The first folder above (or at) one of ``paths`` that other accounts cannot enter."""
    for path in paths:
        for folder in [*reversed(path.resolve().parents), path.resolve()]:
            if folder.is_dir() and not folder.stat().st_mode & stat.S_IXOTH:
                return folder
    return None


def _port_free(ip: str, port: int) -> bool:
    """Whether a server could listen on ``ip:port`` (as servers do, past connections in TIME_WAIT do not count)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((ip, port))
        except OSError:
            return False
    return True


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ------------------------------------------------------------------------------------------------- up


def up(root: Path, plan: Plan) -> str:
    """Accounts, courses released, hub started; returns what to tell the instructor (URL, passwords, removal)."""
    root = Path(root).resolve()
    assignments = plan.assignments or tuple(require_assignments(root))
    check_can_start(root, plan)
    plan.state.mkdir(parents=True, mode=0o755)
    plan.state.chmod(0o755)  # every account reaches the exchange inside it
    made: dict = {"accounts": [], "pgid": None, "plan": {"ip": plan.ip, "port": plan.port}}
    passwords: dict[str, str] = {}
    try:
        for name in plan.accounts():
            _record(plan.state, made)  # before useradd: an interrupted `up` is still undone by `down`
            subprocess.run(["useradd", "--create-home", "--shell", "/bin/bash", name], check=True, capture_output=True)
            made["accounts"].append(name)
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
        made["pgid"] = _start_hub(hub_config, plan, env)
        _record(plan.state, made)
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


def _start_hub(config: Path, plan: Plan, env: dict[str, str]) -> int:
    """JupyterHub in the state folder, in a process group of its own; waits until it answers. Returns the group."""
    argv = [str(Path(sys.prefix) / "bin" / "jupyterhub"), "-f", str(config),
            f"--ip={plan.ip}", f"--port={plan.port}", f"--JupyterHub.hub_port={_free_port()}",
            f"--ConfigurableHTTPProxy.api_url=http://127.0.0.1:{_free_port()}"]
    log = open(plan.state / "jupyterhub.log", "ab")  # noqa: SIM115 - the hub outlives this process and writes here
    hub = subprocess.Popen(argv, cwd=plan.state, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                           start_new_session=True)
    (plan.state / PID_FILE).write_text(f"{hub.pid}\n")
    url = f"http://{plan.ip}:{plan.port}/hub/api"
    deadline = time.monotonic() + START_S
    while not _answers(url):
        if hub.poll() is not None or time.monotonic() > deadline:
            tail = (plan.state / "jupyterhub.log").read_text(errors="replace")[-2500:]
            raise HubError(f"JupyterHub did not start (see {plan.state / 'jupyterhub.log'}):\n{tail}")
        time.sleep(0.25)
    return hub.pid


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


def remove_command(plan: Plan) -> str:
    """The one command that removes the demo hub."""
    state = "" if plan.state == STATE else f" --state {plan.state}"
    return f"python -m convcourse.grading hub down{state}"


# ------------------------------------------------------------------------------------------------- down


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
        _stop_group(made["pgid"])
        removed.append(f"JupyterHub (process group {made['pgid']})")
    for name in made["accounts"]:
        if not _exists(name):
            continue
        _kill_processes_of(pwd.getpwnam(name).pw_uid)
        subprocess.run(["userdel", "--remove", name], capture_output=True)  # mail spool missing is fine
        if _exists(name):
            raise HubError(f"userdel could not remove {name}")
        removed.append(f"account {name}")
    shutil.rmtree(state)
    removed.append(str(state))
    return removed


def _stop_group(pgid: int, grace_s: float = 20) -> None:
    """SIGTERM to the hub's group (the hub stops its proxy, services and servers), SIGKILL what is left after grace_s."""
    for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 10)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not _group_alive(pgid):
                return
            time.sleep(0.1)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    # zombies of a group whose leader was not our child count as gone
    return any(_pgid_of(pid) == pgid and _state_of(pid) != "Z" for pid in _pids())


def _pids() -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]


def _pgid_of(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


def _state_of(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "Z"


def _kill_processes_of(uid: int) -> None:
    """SIGKILL every process owned by ``uid`` (a demo account's leftover kernels and servers)."""
    for pid in _pids():
        try:
            if Path(f"/proc/{pid}").stat().st_uid == uid:
                os.kill(pid, signal.SIGKILL)
        except (OSError, ProcessLookupError):
            pass

"""Every reason the demo hub cannot work on this machine, found before anything is made (each one HubError)."""
from __future__ import annotations

import os
import pwd
import shutil
import socket
import stat
import subprocess
import sys
from pathlib import Path

from convcourse.grading.hub.plan import COURSE_ID, HubError, Plan, remove_command

PROXY_SCRIPT = Path("scripts") / "ensure-proxy.sh"  # in the course: installs configurable-http-proxy with npm


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
    taken = [name for name in plan.accounts() if account_exists(name)]
    if taken:
        raise HubError(f"account(s) {', '.join(taken)} exist already; the demo hub makes its own and removes them "
                       "afterwards: choose other course ids (--course)")
    closed = closed_to_others([Path(sys.prefix), Path(sys.base_prefix), Path(sys.executable).resolve(), Path(root)])
    if closed:
        raise HubError(f"{closed} is closed to other accounts (mode {stat.S_IMODE(closed.stat().st_mode):o}), so the "
                       "students' servers could not run this Python or read the course: make the course's venv from a "
                       "Python every account can run (e.g. /usr/bin/python3 -m venv .venv) in a folder they can enter")
    for port in (plan.port,):
        if not port_free(plan.ip, port):
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
    done = subprocess.run(["bash", str(Path(root) / PROXY_SCRIPT), sys.prefix],
                          capture_output=True, text=True)
    if done.returncode != 0 or not proxy.exists():
        raise HubError(f"npm could not install configurable-http-proxy: {(done.stderr or done.stdout).strip()[-400:]}")
    return proxy


def account_exists(account: str) -> bool:
    """Whether the system has an account of that name."""
    try:
        pwd.getpwnam(account)
    except KeyError:
        return False
    return True


def closed_to_others(paths: list[Path]) -> Path | None:
    """The first folder above (or at) one of ``paths`` that other accounts cannot enter."""
    for path in paths:
        for folder in [*reversed(path.resolve().parents), path.resolve()]:
            if folder.is_dir() and not folder.stat().st_mode & stat.S_IXOTH:
                return folder
    return None


def port_free(ip: str, port: int) -> bool:
    """Whether a server could listen on ``ip:port`` (as servers do, past connections in TIME_WAIT do not count)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((ip, port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A free port on loopback (the hub's own API and its proxy's)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]

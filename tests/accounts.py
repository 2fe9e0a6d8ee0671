"""Ordinary accounts for the tests that grade without root: the accounts, and running commands as them.

CI runs as root, so these tests create real accounts (``useradd``) and run each step as one of
them (``setpriv``, with a fresh minimal environment as a login would give). The accounts use this
project's own interpreter and venv. Where that interpreter lives in a folder other accounts cannot
enter (a Python built in root's home, ``/root`` being mode 700), each of their commands starts in a
mount namespace of its own in which that folder is replaced by one holding only the interpreter:
nothing on the machine changes, and nothing else of root's becomes visible. (A venv of the system's
Python of the same minor version is no substitute: packages may need a later patch release, as
soupsieve 4.1 needs 3.11.5 and Debian 12 has 3.11.2.) Real instructors and students simply have
their own venv.
"""
from __future__ import annotations

import json
import os
import pwd
import shutil
import stat
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() in ("true", "1", "yes")
PASSED_ON = ("CONVCOURSE_DATA", "CONVCOURSE_MAX_STEPS", "PYTHONPATH", "CI")  # what the accounts' runs get from the session


@dataclass(frozen=True)
class Account:
    """An ordinary account on this machine."""

    name: str
    uid: int
    gid: int
    home: Path


def unavailable(reason: str) -> None:
    """CI must run these tests; elsewhere (no root, no bubblewrap) they are skipped with the reason."""
    if IN_CI:
        pytest.fail(f"cannot grade as an ordinary account in CI: {reason}")
    pytest.skip(reason)


def require_root() -> None:
    """Creating accounts and acting as them needs root (as in CI)."""
    if os.geteuid() != 0:
        unavailable("creating accounts needs root; as an ordinary user the whole suite already grades without root")
    if shutil.which("setpriv") is None or shutil.which("useradd") is None:
        unavailable("setpriv and useradd (util-linux, passwd) are needed to act as other accounts")


def ensure_bubblewrap() -> None:
    """Debian's bubblewrap, installed with apt (scripts/ensure-bubblewrap.sh) when missing."""
    if shutil.which("bwrap"):
        return
    script = ROOT / "scripts" / "ensure-bubblewrap.sh"
    done = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=600)
    if done.returncode != 0 or not shutil.which("bwrap"):
        unavailable(f"bwrap is missing and {script.name} could not install it: {(done.stderr or done.stdout)[-500:]}")


def account(name: str) -> Account:
    """The account ``name``, created (with a home) if it does not exist yet."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "--create-home", "--shell", "/bin/bash", name], check=True, capture_output=True)
        entry = pwd.getpwnam(name)
    return Account(name, entry.pw_uid, entry.pw_gid, Path(entry.pw_dir))


def _closed_ancestor(path: Path) -> Path | None:
    """The topmost folder above ``path`` that other accounts cannot enter, if any."""
    for folder in reversed(Path(path).resolve().parents):
        if not folder.stat().st_mode & stat.S_IXOTH:
            return folder
    return None


def _hidden_needs() -> dict[str, list[str]]:
    """{closed folder: [what the accounts need inside it]} for the interpreter, its venv, this checkout, the data."""
    needed = [sys.base_prefix, sys.prefix, Path(sys.executable).resolve().parent, ROOT,
              *sysconfig.get_paths().values(), os.environ.get("CONVCOURSE_DATA", "")]
    covers: dict[str, list[str]] = {}
    for path in (Path(p).resolve() for p in needed if p and Path(p).exists()):
        top = _closed_ancestor(path)
        if top is not None:
            covers.setdefault(str(top), []).append(str(path))
    return covers


# Run as root before dropping to the account: a private mount namespace whose closed folders hold only what is needed.
_REVEAL = r"""
import ctypes, json, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
def call(result, what):
    if result != 0:
        raise OSError(ctypes.get_errno(), what)
covers, argv = json.loads(sys.argv[1]), sys.argv[3:]
call(libc.unshare(0x00020000), "unshare(CLONE_NEWNS)")
call(libc.mount(None, b"/", None, 16384 | (1 << 18), None), "mount --make-rprivate /")
for top, inner in covers.items():
    handles = [(path, os.open(path, os.O_PATH)) for path in inner]
    call(libc.mount(b"tmpfs", top.encode(), b"tmpfs", 0, b"size=1m,mode=755"), f"tmpfs on {top}")
    for path, handle in handles:
        os.makedirs(path, exist_ok=True)
        call(libc.mount(f"/proc/self/fd/{handle}".encode(), path.encode(), None, 4096 | 16384, None), f"bind {path}")
        os.close(handle)
os.execvp(argv[0], argv)
"""


def python() -> str:
    """The interpreter the accounts run: this project's own."""
    return sys.executable


def login_env(user: Account, **extra: str) -> dict[str, str]:
    """A fresh environment as a login of ``user`` would have, with the project's venv first on PATH."""
    env = {"HOME": str(user.home), "USER": user.name, "LOGNAME": user.name, "SHELL": "/bin/bash", "LANG": "C.UTF-8",
           "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1"}
    env.update({name: os.environ[name] for name in PASSED_ON if os.environ.get(name)})
    env.update(extra)
    return env


def revealed(argv: list[str]) -> list[str]:
    """``argv`` run (still as root) where the closed folders hold only what the accounts need: processes it starts
    as other accounts (a hub's servers) can run this project's interpreter."""
    covers = _hidden_needs()
    return [sys.executable, "-c", _REVEAL, json.dumps(covers), "--", *argv] if covers else list(argv)


def as_user(user: Account, argv: list[str], env: dict[str, str]) -> list[str]:
    """``argv`` run as ``user`` (uid, gid and groups) with exactly ``env``."""
    return revealed(["setpriv", f"--reuid={user.uid}", f"--regid={user.gid}", "--init-groups",
                     "env", "-i", *[f"{k}={v}" for k, v in env.items()], *argv])


def run_as(user: Account, argv: list[str], env: dict[str, str], *, cwd: Path | None = None, timeout: float = 600,
           check: bool = True, input: str | None = None) -> subprocess.CompletedProcess:
    """Run ``argv`` as ``user``; with ``check``, fail the test with its output when it fails."""
    done = subprocess.run(as_user(user, argv, env), cwd=cwd or user.home, capture_output=True, text=True,
                          timeout=timeout, input=input)
    if check and done.returncode != 0:
        pytest.fail(f"as {user.name}: {' '.join(argv)} exited {done.returncode}:\n"
                    f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done


def give(path: Path, user: Account) -> None:
    """Make ``path`` (recursively) belong to ``user``, as if they had made it."""
    for folder, dirs, files in os.walk(path):
        os.chown(folder, user.uid, user.gid)
        for name in dirs + files:
            os.lchown(os.path.join(folder, name), user.uid, user.gid)

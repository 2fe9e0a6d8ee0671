"""The bounded, network-less environment that autograded kernels run in (Linux; as root or as an ordinary user).

``launcher_command(kernel_cmd, spec)`` wraps a kernel command line. The launcher
(:mod:`convcourse.grading.sandbox.launcher`) then runs the kernel

* in its own network namespace with only loopback up: no route to any other machine, and not even
  to services listening on the grader's own 127.0.0.1;
* in its own PID namespace: whatever the notebook forks dies with the kernel;
* in its own mount namespace: the course's private files (solutions, other students' work, the
  gradebook, grades) are covered by empty read-only mounts, and /tmp and /dev/shm are private,
  size-capped tmpfs;
* unable to write anything of the grader's: as root, the kernel runs as an unprivileged user id of
  its own (one per kernel); as an ordinary user, bubblewrap (:mod:`convcourse.grading.sandbox.bwrap`)
  runs it in a user namespace that sees only the system, the interpreter, its packages and the data,
  all read-only, besides its scratch folder;
* with resource limits: data segment (memory; RLIMIT_DATA, because RLIMIT_AS breaks ``import torch``
  which reserves gigabytes of address space), file size, process count (counted for the sandbox
  alone: its own uid, or its own user namespace), open files, no core dumps;
* where the machine lets it create one, in a memory cgroup of its own capping all its processes
  together at twice the per-process limit (:mod:`convcourse.grading.sandbox.cgroup`).

Only the standard library (and :mod:`convcourse.grading.settings`, which imports no more) is imported here.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from functools import lru_cache

from convcourse.grading import settings

ALLOW_ENV = settings.ALLOW_UNSANDBOXED.name
LAUNCHER_MODULE = f"{__name__}.launcher"  # run with -m for every cold kernel
FORK_SERVER_MODULE = f"{__name__}.fork_server"  # run with -m for a round's kernel template, which forks warm kernels


class SandboxUnavailable(RuntimeError):
    """The sandbox cannot be set up here, and running student code without it was not allowed."""


@dataclass(frozen=True)
class Limits:
    """Resource caps for one kernel (sizes in MiB; the defaults of those one can set: :mod:`convcourse.grading.settings`)."""

    memory_mb: int = settings.KERNEL_MEMORY_MB.default
    file_size_mb: int = settings.KERNEL_FILE_MB.default
    max_processes: int = 256
    open_files: int = 1024
    tmp_mb: int = settings.KERNEL_TMP_MB.default


@dataclass(frozen=True)
class Spec:
    """What the launcher does: isolate (namespaces, and an own uid or bubblewrap's view) or only apply limits."""

    limits: Limits = field(default_factory=Limits)
    isolate: bool = True
    hide: tuple[str, ...] = ()  # paths covered by empty read-only mounts
    expose: tuple[str, ...] = ()  # paths the kernel must reach besides the interpreter: data, run folder
    owned: tuple[str, ...] = ()  # paths the kernel may write (its run folder): handed to its uid, or bound writable

    def to_json(self) -> str:
        """The spec as one JSON argument for the launcher."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "Spec":
        """Parse ``to_json``'s output."""
        raw = json.loads(text)
        return cls(limits=Limits(**raw["limits"]), isolate=raw["isolate"],
                   hide=tuple(raw["hide"]), expose=tuple(raw["expose"]), owned=tuple(raw["owned"]))


@dataclass(frozen=True)
class Status:
    """Whether the full sandbox works on this machine, and if not, why."""

    available: bool
    reason: str


# ---------------------------------------------------------------------------------- availability


@lru_cache(maxsize=1)
def sandbox_status() -> Status:
    """Probe once per process whether the sandbox works here: own namespaces as root, bubblewrap otherwise."""
    from convcourse.grading.sandbox import bwrap

    if not sys.platform.startswith("linux"):
        return Status(False, f"the sandbox needs Linux namespaces; this is {sys.platform}")
    root = os.geteuid() == 0
    if not root and bwrap.bwrap_path() is None:
        setting = bwrap.missing_userns_setting()
        return Status(False, "grading as an ordinary user needs bubblewrap (the `bwrap` command), which is not "
                             "installed: apt-get install bubblewrap (Debian/Ubuntu), dnf install bubblewrap (Fedora)"
                             + (f"; also, {setting}" if setting else ""))
    probe = launcher_command([sys.executable, "-c", "import socket; socket.socket().close()"], Spec())
    try:
        done = subprocess.run(probe, capture_output=True, text=True, timeout=60, cwd="/")
    except (OSError, subprocess.TimeoutExpired) as error:
        return Status(False, f"the sandbox launcher could not run: {error}")
    if done.returncode != 0:
        why = "" if root else (bwrap.missing_userns_setting() or "")
        return Status(False, f"the sandbox launcher failed (exit {done.returncode}): "
                             + (f"{why}; " if why else "") + done.stderr.strip()[-500:])
    if root:
        return Status(True, "network, mount and PID namespaces, own uid, resource limits")
    return Status(True, "bubblewrap: user, network, mount and PID namespaces, read-only view, resource limits")


def allowed_unsandboxed(flag: bool | None = None) -> bool:
    """The instructor's permission to run without the sandbox: the flag, else $CONVCOURSE_ALLOW_UNSANDBOXED."""
    if flag is not None:
        return flag
    return settings.switched_on(settings.ALLOW_UNSANDBOXED)


def require_sandbox(allow_unsandboxed: bool | None = None) -> bool:
    """True when the sandbox works; False (after a loud warning) when it does not but that was allowed."""
    status = sandbox_status()
    if status.available:
        return True
    message = (f"convcourse: THE AUTOGRADING SANDBOX IS NOT AVAILABLE: {status.reason}.\n"
               "Student code would run with your privileges, network and files.")
    if not allowed_unsandboxed(allow_unsandboxed):
        raise SandboxUnavailable(f"{message}\nGrade on Linux (as root, or as an ordinary user with bubblewrap), "
                                 f"or allow unsandboxed grading explicitly (--allow-unsandboxed or {ALLOW_ENV}=1).")
    print(f"\n{'!' * 78}\n{message}\nContinuing WITHOUT the sandbox because you allowed it; "
          f"time and memory limits still apply.\n{'!' * 78}\n", file=sys.stderr, flush=True)
    return False


def launcher_command(kernel_cmd: list[str], spec: Spec) -> list[str]:
    """The command line that runs ``kernel_cmd`` inside the sandbox described by ``spec``."""
    # --parent: the launcher must outlive its grader by no more than a moment, even if the grader dies
    # while the launcher is still starting up (then getppid() would already name the reaper).
    return [sys.executable, "-m", LAUNCHER_MODULE, "--spec", spec.to_json(), "--parent", str(os.getpid()),
            "--", *kernel_cmd]

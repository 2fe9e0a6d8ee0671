"""Warm kernels for a grade round: one template imports the heavy modules once; every graded kernel forks from it.

A cold kernel starts a Python, imports torch, matplotlib and seaborn, and builds matplotlib's font
cache in its empty home: seconds per notebook, more than a small notebook's own cells take.
:func:`warm_template` starts :mod:`convcourse.grading.sandbox.fork_server` once per round (as root directly;
as an ordinary user inside bubblewrap, the same view a kernel gets); each job's config names its folder
(``SandboxedKernelManager.template``), and :class:`~convcourse.grading.nbgrader.kernel_manager.SandboxedKernelManager`
then launches each kernel with :func:`launch`, which returns a :class:`WarmProcess` that jupyter_client
drives like the ``Popen`` of a cold kernel. Plain ``nbgrader autograde`` (no template) stays cold,
and so does ``CONVCOURSE_COLD_KERNELS=1``.
"""
from __future__ import annotations

import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from convcourse.budget import grading_env
from convcourse.grading import sandbox, settings
from convcourse.grading.nbgrader import kernel_python
from convcourse.grading.nbgrader.kernel_env import kernel_environment
from convcourse.grading.sandbox import bwrap
from convcourse.mnist_files import DATA_ENV

COLD_START = "starting the kernel cold"  # the kernel manager's warning in a job's log when a warm start failed
WARM_START = "kernel forked from the template"  # its note there for each warm kernel
TEMPLATE_MODULE = sandbox.FORK_SERVER_MODULE
READY_TIMEOUT = 180  # seconds for the template's imports
LAUNCH_TIMEOUT = 120  # seconds for a warden to build one kernel's sandbox


class WarmKernelError(RuntimeError):
    """The template could not start a kernel (the grader falls back to a cold one)."""


@dataclass
class Template:
    """A running kernel template: its folder (control socket, run folders) and process."""

    folder: Path
    process: subprocess.Popen
    threads: int | None = None  # threads it had after its imports (BLAS pools only; a fork copies none of them)

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        """Block until the template has imported everything (WarmKernelError if it cannot)."""
        if self.threads is not None:
            return
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        line = self.process.stdout.readline().decode(errors="replace").strip() if ready else ""
        if not line.startswith("ready "):
            raise WarmKernelError(f"the kernel template did not start (exit {self.process.poll()}): {line!r}")
        self.threads = int(line.split()[1])

    @property
    def runs(self) -> Path:
        """Where the kernels' run folders go (visible to the template; each kernel sees only its own)."""
        return self.folder / "runs"


def disabled(environ: dict | None = None) -> bool:
    """Whether the instructor asked for cold kernels ($CONVCOURSE_COLD_KERNELS)."""
    return settings.switched_on(settings.COLD_KERNELS, environ)


def start_template(hide: list[str], tmp_mb: int = sandbox.Limits.tmp_mb, *, wait: bool = True,
                   expose: tuple[str, ...] = ()) -> Template:
    """Start the template for kernels of this grader's environment; with ``wait``, return once it is ready.

    Without ``wait`` the round goes on while it imports: the first kernels simply queue at its socket.
    ``expose``: more folders its kernels may be shown, read-only (as an ordinary user it sees nothing else).
    """
    folder = Path(tempfile.mkdtemp(prefix="convcourse-warm-"))
    (folder / "runs").mkdir()
    home = folder / "template"
    home.mkdir()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    listener.bind(str(folder / "control.sock"))
    listener.listen(64)
    env = kernel_environment(os.environ, home, grading_env())
    (home / "home").mkdir()
    root = os.geteuid() == 0
    cmd = [sys.executable, "-m", TEMPLATE_MODULE, "--listen-fd", str(listener.fileno()),
           "--parent", str(os.getpid() if root else 0), *([] if root else ["--userns"])]
    fds = [listener.fileno()]
    if not root:
        # What its kernels' interpreter needs, asked of it in their environment (not this process's sys.path).
        needs = kernel_python.ask(python=sys.executable).paths
        cmd, extra = bwrap.command(cmd, expose=[*needs, env[DATA_ENV], *expose],
                                   writable=[str(folder / "runs"), str(home)], hide=hide, tmp_mb=tmp_mb, warm=True)
        fds += extra
    try:
        process = subprocess.Popen(cmd, pass_fds=fds, env=env, cwd=home, stdout=subprocess.PIPE,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
    finally:
        for fd in fds[1:]:
            os.close(fd)
        listener.close()  # the template holds it now
    template = Template(folder, process)
    if wait:
        try:
            template.wait_ready()
        except WarmKernelError:
            stop_template(template)
            raise
    return template


def stop_template(template: Template) -> None:
    """Stop the template (kernels it started end with their graders' connections) and remove its folder."""
    try:
        os.killpg(template.process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    template.process.wait()
    template.process.stdout.close()
    shutil.rmtree(template.folder, ignore_errors=True)


@contextmanager
def warm_template(isolated: bool, hide: list[str], log=print) -> Iterator[Template | None]:
    """A template for this round's kernels (its jobs' kernel managers get its folder); None when kernels start cold."""
    template = None
    if isolated and not disabled():
        try:
            template = start_template(hide, wait=False)
        except (OSError, WarmKernelError) as error:
            log(f"warning: kernels start cold this round ({error})")
    try:
        yield template
    finally:
        if template is not None:
            stop_template(template)


def qualifies(cmd: list[str]) -> bool:
    """Whether a kernel command is what the template runs: this interpreter's ipykernel_launcher."""
    return (len(cmd) >= 3 and cmd[1:3] == ["-m", "ipykernel_launcher"]
            and os.path.realpath(shutil.which(cmd[0]) or cmd[0]) == os.path.realpath(sys.executable))


class WarmProcess:
    """A warm kernel as jupyter_client sees a kernel process: poll, wait, signals, kill (through its warden)."""

    stdin = stdout = stderr = None

    def __init__(self, conn: socket.socket, pid: int) -> None:
        self._conn = conn
        self.pid = pid  # inside the template's PID namespace as an ordinary user: for logs only
        self.returncode: int | None = None

    def _read(self, timeout: float) -> None:
        if self.returncode is not None:
            return
        ready, _, _ = select.select([self._conn], [], [], timeout)
        if not ready:
            return
        try:
            data = self._conn.recv(4096)
        except OSError:
            data = b""
        message = json.loads(data) if data else {}
        if "exit" in message or not data:
            self.returncode = int(message.get("exit", -signal.SIGKILL))
            self._conn.close()

    def poll(self) -> int | None:
        """The exit status once the kernel has ended, else None."""
        self._read(0)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        """Block until the kernel has ended (``subprocess.TimeoutExpired`` after ``timeout``)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.returncode is None:
            left = 1.0 if deadline is None else deadline - time.monotonic()
            if left <= 0:
                raise subprocess.TimeoutExpired("warm kernel", timeout)
            self._read(min(left, 1.0))
        return self.returncode

    def send_signal(self, signum: int) -> None:
        """Signal the kernel's process group (SIGKILL: its whole sandbox)."""
        if self.returncode is None:
            try:
                self._conn.send(json.dumps({"signal": int(signum)}).encode())
            except OSError:
                pass

    def kill(self) -> None:
        """End the kernel's sandbox at once."""
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        """Ask the kernel to end (SIGTERM)."""
        self.send_signal(signal.SIGTERM)


def launch(folder: str | Path, argv: list[str], *, env: dict[str, str], cwd: str, spec: sandbox.Spec,
           stdio: tuple[int, int, int] | None = None) -> WarmProcess:
    """Ask the template in ``folder`` for a kernel running ``argv`` sandboxed as ``spec`` says."""
    request = json.dumps({"argv": argv, "env": env, "cwd": cwd, "spec": spec.to_json(), "shared": [str(folder)]})
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    null = os.open(os.devnull, os.O_RDONLY)
    try:
        conn.connect(str(Path(folder) / "control.sock"))
        socket.send_fds(conn, [request.encode()], list(stdio or (null, 1, 2)))
        ready, _, _ = select.select([conn], [], [], LAUNCH_TIMEOUT)
        reply = json.loads(conn.recv(4096) or b"{}") if ready else {}
    except (OSError, ValueError) as error:
        conn.close()
        raise WarmKernelError(f"no warm kernel from {folder}: {error}") from error
    finally:
        os.close(null)
    if "pid" not in reply:
        conn.close()
        raise WarmKernelError(f"no warm kernel from {folder}: {reply.get('error') or 'no answer'}")
    return WarmProcess(conn, int(reply["pid"]))

"""Warm kernels: one template process imports torch & co. once, then forks every graded kernel, fully sandboxed.

``python -m convcourse.grading.sandbox.fork_server --listen-fd N --parent PID [--userns] [--preload MODULE ...]``

The grader (:mod:`convcourse.grading.nbgrader.kernel_template`) starts this template with the environment a kernel
gets, hands it a listening Unix socket and connects once per kernel. The template has only imported
modules: no student code ever runs in it, it never parses a request and it never runs a torch
operation, so no OpenMP pool, autograd thread or CUDA context exists to be copied into a fork (the
known traps of forking after ``import torch``). For each connection it forks a *warden*, which

1. reads the request (the kernel's command line, environment, working folder, sandbox spec and
   its stdin/stdout/stderr) from the connection,
2. makes the kernel's namespaces exactly as the cold launcher does (:func:`launcher.enter_sandbox`:
   network, mount, PID, IPC and UTS namespaces; as root a uid of its own, as an ordinary user --
   inside bubblewrap -- a user namespace of its own whose capabilities the kernel drops; the same
   limits, the same mounts, the same private /tmp),
3. and in the kernel's process, instead of ``exec``, gives it a fresh start: the kernel's
   environment, folder, ``sys.argv``, new random seeds (Python, NumPy, torch), default signals,
   then ``ipykernel`` (or ``python -c CODE``) in-process, its modules already imported.

The warden then relays signals from the grader (interrupts) and reports the exit status; when the
grader closes the connection (or dies) the warden kills the kernel's whole PID namespace.

The template imports one module at a time and looks for a connection between two imports: a kernel
asked for before the last import (a round's first) starts at once with what is there and imports the
rest itself, on another core, one such kernel at a time; "ready" goes to stdout after the last import.

A warm kernel differs from a cold one in what no notebook depends on: modules the template imported
are already in ``sys.modules`` (imported, never used), its hash seed and address layout are the
template's (the same for every kernel of one round; they reveal nothing about another kernel), and
``sys.orig_argv`` names this module. Standard library only, besides what ``--preload`` names.
"""
from __future__ import annotations

import argparse
import ctypes
import importlib
import json
import os
import select
import signal
import socket
import sys
from typing import Any, Callable

from convcourse.grading.sandbox import Spec, launcher
from convcourse.grading.sandbox.cgroup import join_memory_cgroup, leave_memory_cgroup

# What the course's notebooks import (convcourse's student modules import torch, numpy, matplotlib and
# seaborn), and what a kernel itself runs on, in the order kernels need them: what every kernel needs
# first, what only training notebooks need last (torch.optim imports torch._dynamo, ~1 s, when the
# first optimizer is built). A kernel asked for before the last import gets what is there so far.
PRELOAD = ("ipykernel.kernelapp", "ipykernel.ipkernel", "ipykernel.debugger", "pdb", "sqlite3",  # every kernel: 0.1 s
           "torch", "numpy", "ipywidgets", "convcourse.shapes", "convcourse.checks", "convcourse.widgets",
           "matplotlib.pyplot", "seaborn", "convcourse.models", "convcourse.data", "convcourse.train", "convcourse.plots",
           "torch._dynamo")
INLINE_BACKEND = "module://matplotlib_inline.backend_inline"  # what ipykernel sets before a notebook imports pyplot
REQUEST_BYTES = 1 << 20
_PR_SET_DUMPABLE = 4


def prepare_imports() -> None:
    """What a kernel's start-up would set before the notebook imports anything."""
    os.environ.setdefault("MPLBACKEND", INLINE_BACKEND)
    # debugpy warns at import that this Python runs frozen modules; graded kernels never debug.
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")


def preload(name: str) -> str | None:
    """Import module ``name``; the problem, if it failed (reported, not fatal)."""
    try:
        importlib.import_module(name)
    except Exception as error:  # noqa: BLE001 - a kernel without the module would fail the same way, later
        return f"{name}: {type(error).__name__}: {error}"
    return None


def threads() -> int:
    """Threads of this process now (a fork copies only the calling one)."""
    return len(os.listdir("/proc/self/task"))


def serve(listener: socket.socket, parent: int, userns: bool, pending: tuple[str, ...] = (),
          loaded: Callable[[], None] = lambda: None) -> None:
    """Import ``pending`` one module at a time, fork a warden for every connection, and stop when the grader is gone.

    Between two imports one kernel may start early, with the modules imported so far (it imports the
    rest itself, on another core): a round's first, quick notebook then runs while the template still
    imports. One at a time: more would only compete with the template for the cores. ``loaded`` is
    called once everything is imported.
    """
    pending = list(pending)
    early: set[int] = set()  # wardens forked before the imports were done, still running
    if not pending:
        loaded()
    while os.getppid() == parent:
        early -= _reap()
        waiting = [] if pending and early else [listener]
        ready, _, _ = select.select(waiting, [], [], 0 if pending else 0.5)
        if not ready:
            if pending:
                problem = preload(pending.pop(0))
                if problem:
                    print(f"convcourse fork server: not preloaded: {problem}", file=sys.stderr, flush=True)
                if not pending:
                    loaded()
            continue
        try:
            conn, _ = listener.accept()
        except OSError:
            continue
        sys.stdout.flush()
        sys.stderr.flush()
        warden = os.fork()
        if warden == 0:
            os.close(listener.detach())
            os.dup2(2, 1)  # an early one: not the pipe the grader reads "ready" from (its end would stay open)
            _warden(conn, userns)
        conn.close()
        if pending:
            early.add(warden)


def _reap() -> set[int]:
    """Collect ended wardens; their pids."""
    ended = set()
    try:
        while (pid := os.waitpid(-1, os.WNOHANG)[0]) > 0:
            ended.add(pid)
    except ChildProcessError:
        pass
    return ended


def _warden(conn: socket.socket, userns: bool) -> None:
    """In the forked warden: build the kernel's sandbox from the request, relay signals, report its end."""
    code = 126
    try:
        # Non-dumpable like the template, its /proc files would be root's and no uid_map could be written;
        # no kernel can reach the warden (it is outside their PID namespaces).
        ctypes.CDLL(None).prctl(_PR_SET_DUMPABLE, 1, 0, 0, 0)
        os.setsid()
        for sig in (signal.SIGINT, signal.SIGTERM):  # for the kernel: they reach it through this process group
            signal.signal(sig, signal.SIG_IGN)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        message, fds, _, _ = socket.recv_fds(conn, REQUEST_BYTES, 3)
        request = json.loads(message)
        spec = Spec.from_json(request["spec"])
        _check_room(spec.limits.memory_mb)
        os.chdir(request["cwd"])
        joined = None if userns else join_memory_cgroup(2 * spec.limits.memory_mb)
        try:
            child, lifeline = launcher.enter_sandbox(lambda: _start_kernel(request, fds, conn), spec, userns=userns,
                                                     shared=tuple(request.get("shared", ())))
            for fd in fds:
                os.close(fd)
            _send(conn, pid=child)
            code = _relay(conn, child)
            os.close(lifeline)
        finally:
            leave_memory_cgroup(joined)
        _send(conn, exit=code)
    except BaseException as error:  # noqa: BLE001 - the grader reads why; the warden never returns to the loop
        try:
            _send(conn, error=f"{type(error).__name__}: {error}")
        except OSError:
            pass
    os._exit(code)


def data_mb() -> int:
    """This process's data segment in MiB: what RLIMIT_DATA counts, and what every fork starts with."""
    for line in open("/proc/self/status"):
        if line.startswith("VmData:"):
            return int(line.split()[1]) // 1024
    return 0


def _check_room(memory_mb: int) -> None:
    """Refuse (the grader then starts the kernel cold) when the preloaded modules would eat most of its memory cap.

    A cold kernel's cap counts what the notebook imports; a warm one starts with everything the template
    imported. Under a small cap (a course without torch) that difference would fail the kernel.
    """
    used = data_mb()
    if used > 0.75 * memory_mb:
        raise MemoryError(f"the preloaded modules take {used} MiB of the kernel's {memory_mb} MiB cap")


def _send(conn: socket.socket, **message: Any) -> None:
    conn.send(json.dumps(message).encode())


def _relay(conn: socket.socket, child: int) -> int:
    """Pass the grader's signals to the kernel's process group until the sandbox ends; its exit status."""
    ended = launcher.end_watch(child)  # [] on an older Linux: look every 0.1 s instead
    while True:
        ready, _, _ = select.select([conn, *ended], [], [], None if ended else 0.1)
        if conn in ready:
            try:
                data = conn.recv(4096)
            except OSError:
                data = b""
            if not data:  # the grader is gone or done: nothing of this sandbox may outlive it
                os.kill(child, signal.SIGKILL)
                os.waitpid(child, 0)
                return 137
            sig = int(json.loads(data)["signal"])
            if sig == signal.SIGKILL:
                os.kill(child, signal.SIGKILL)  # the namespace's init: everything in it dies
                return launcher.status_code(os.waitpid(child, 0)[1])
            os.killpg(0, sig)  # the kernel and what it started; the warden and init ignore it
        pid, status = os.waitpid(child, os.WNOHANG)
        if pid == child:
            return launcher.status_code(status)


def _start_kernel(request: dict, fds: list[int], conn: socket.socket) -> None:
    """In the kernel's process, sandboxed and unprivileged: a fresh start, then the kernel itself."""
    os.close(conn.detach())
    for number, fd in enumerate(fds):
        os.dup2(fd, number)
    keep = {0, 1, 2}
    for name in os.listdir("/proc/self/fd"):  # nothing of the template's or the warden's reaches student code
        if int(name) not in keep:
            try:
                os.close(int(name))
            except OSError:
                pass
    parent_pid = os.environ.get("JPY_PARENT_PID")
    os.environ.clear()
    os.environ.update(request["env"])
    if parent_pid:
        os.environ["JPY_PARENT_PID"] = parent_pid
    os.chdir(request["cwd"])
    ctypes.CDLL(None).prctl(_PR_SET_DUMPABLE, 1, 0, 0, 0)  # as a freshly exec'd kernel is (the uid change cleared it)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # as Python's start-up sets them
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    if hasattr(signal, "SIGXFSZ"):
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    _reseed()
    import tempfile

    tempfile.tempdir = None  # computed again from this kernel's TMPDIR
    argv = request["argv"]
    sys.path[0] = os.getcwd()  # as `python -m` / `python -c` put the start folder first
    if argv[1:3] == ["-m", "ipykernel_launcher"]:
        from ipykernel import kernelapp

        sys.argv = [kernelapp.__file__, *argv[3:]]
        kernelapp.IPKernelApp.launch_instance(argv=argv[3:])
    elif argv[1:2] == ["-c"] and len(argv) >= 3:
        sys.argv = ["-c", *argv[3:]]
        main = type(sys)("__main__")
        sys.modules["__main__"] = main
        exec(compile(argv[2], "<string>", "exec"), vars(main))  # noqa: S102 - the sandboxed program itself
    else:
        raise ValueError(f"a warm kernel runs ipykernel_launcher or python -c, not {argv[1:3]}")
    sys.stdout.flush()
    sys.stderr.flush()


def _reseed() -> None:
    """New random state, as a fresh interpreter would draw (Python's own module reseeds itself after fork)."""
    if "numpy" in sys.modules:
        sys.modules["numpy"].random.seed()
    if "torch" in sys.modules:
        sys.modules["torch"].seed()


def main(argv: list[str] | None = None) -> int:
    """Template entry point: import the modules and serve kernels until the grader goes away."""
    parser = argparse.ArgumentParser(prog="python -m convcourse.grading.sandbox.fork_server", description=__doc__.splitlines()[0])
    parser.add_argument("--listen-fd", type=int, required=True, help="a listening AF_UNIX SOCK_SEQPACKET socket")
    parser.add_argument("--parent", type=int, required=True, help="pid of the grader; the template ends with it")
    parser.add_argument("--userns", action="store_true", help="kernels get a user namespace of their own (bubblewrap)")
    parser.add_argument("--preload", nargs="*", default=list(PRELOAD), help="modules to import once")
    args = parser.parse_args(argv)
    listener = socket.socket(fileno=args.listen_fd)
    prepare_imports()
    # Its kernels share its uid as an ordinary user: none may read or trace the template's memory.
    ctypes.CDLL(None).prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)

    def loaded() -> None:
        os.write(1, f"ready {threads()}\n".encode())  # Template.wait_ready waits for this line
        os.dup2(2, 1)  # nobody reads the pipe after that line

    serve(listener, args.parent if args.parent > 0 else os.getppid(), args.userns, tuple(args.preload), loaded)
    return 0


if __name__ == "__main__":
    sys.exit(main())

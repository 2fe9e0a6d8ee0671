"""The sandbox launcher: ``python -m convcourse.grading.sandbox.launcher --spec JSON --parent PID -- command...``.

As root it unshares network, mount and PID namespaces itself, then forks the namespace's init,
which builds the mounts (private /tmp and /dev/shm, the interpreter reachable, the course's private
files covered), brings up loopback and forks the kernel: limits, its own uid, exec. As an ordinary
user it runs bubblewrap instead (:mod:`convcourse.grading.sandbox.bwrap`), which runs this module
again inside the sandbox with ``--inner`` to set the limits and exec the kernel. Either way the
launcher stays outside and kills the sandbox when the grader that started it goes away, and
everything in the sandbox's PID namespace dies with the kernel. See :mod:`convcourse.grading.sandbox`.

Only the standard library is imported here: the launcher starts for every kernel.
"""
from __future__ import annotations

import argparse
import ctypes
import os
import select
import signal
import socket
import sys
from pathlib import Path
from typing import Callable

from convcourse.grading.sandbox import LAUNCHER_MODULE, Limits, Spec, bwrap, mounts, paths
from convcourse.grading.sandbox.cgroup import join_memory_cgroup, leave_memory_cgroup

_FIRST_UID = 200_000  # sandbox uids: far above any real account, one per launcher pid
_CLONE_NEWNS, _CLONE_NEWPID, _CLONE_NEWNET = 0x00020000, 0x20000000, 0x40000000
_CLONE_NEWUTS, _CLONE_NEWIPC, _CLONE_NEWUSER = 0x04000000, 0x08000000, 0x10000000
_PR_CAPBSET_DROP, _PR_SET_NO_NEW_PRIVS, _PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL = 24, 38, 47, 4
_LINUX_CAPABILITY_VERSION_3 = 0x20080522
HOSTNAME = "convcourse-sandbox"


def _apply_limits(limits: Limits) -> None:
    import resource

    mib = 1024 * 1024
    for name, value in (("RLIMIT_DATA", limits.memory_mb * mib), ("RLIMIT_FSIZE", limits.file_size_mb * mib),
                        ("RLIMIT_NOFILE", limits.open_files), ("RLIMIT_CORE", 0)):
        resource.setrlimit(getattr(resource, name), (value, value))


def _become(uid: int) -> None:
    """Drop to ``uid`` for good, with a process cap counted for that uid alone."""
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)


def _chown_tree(paths: tuple[str, ...], uid: int) -> None:
    for top in paths:
        for folder, dirs, files in os.walk(top):
            os.chown(folder, uid, uid)
            for name in dirs + files:
                os.lchown(os.path.join(folder, name), uid, uid)


def _exec_kernel(cmd: list[str], spec: Spec, uid: int | None, *, own_count: bool) -> None:
    """In the kernel's process: limits, unprivileged uid (as root), default signals, exec."""
    _become_kernel(spec, uid, own_count=own_count, start=lambda: os.execvp(cmd[0], cmd))


def _become_kernel(spec: Spec, uid: int | None, *, own_count: bool, start: Callable[[], object],
                   userns: bool = False) -> None:
    """In the kernel's process: limits, then an unprivileged uid (as root) or no capabilities (own user
    namespace), default signals, then ``start()`` (an exec, or a warm kernel's start); never returns.

    ``own_count``: the process cap counts this sandbox alone (its own uid, or its own user namespace,
    where Linux >= 5.14 counts processes per namespace); never set it where the count is the grader's.
    """
    import resource

    try:
        _apply_limits(spec.limits)
        if own_count:
            nproc = spec.limits.max_processes
            resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
            # ipykernel compares this pid with its parent's and quits when they differ; its parent is the
            # namespace's init (pid 1 here). 1 means "never poll" to ipykernel; the launcher watches the grader.
            os.environ["JPY_PARENT_PID"] = "1"
        if uid is not None:
            _become(uid)
        if userns:
            _drop_privileges()
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGPIPE):
            signal.signal(sig, signal.SIG_DFL)  # Python only installs KeyboardInterrupt if SIGINT is not ignored
        start()
        os._exit(0)
    except SystemExit as done:  # a warm kernel's normal end
        os._exit(done.code if isinstance(done.code, int) else (0 if done.code is None else 1))
    except BaseException as error:  # noqa: BLE001 - must never return into the parent's code
        print(f"convcourse.sandbox: cannot start the kernel: {error}", file=sys.stderr, flush=True)
        os._exit(127)


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def _drop_privileges() -> None:
    """In a user namespace of the kernel's own: no further user namespaces, no capabilities, no new privileges.

    What bubblewrap's ``--disable-userns`` and its capability drop do, for a kernel whose namespaces were
    made after a warm fork (:mod:`convcourse.grading.sandbox.fork_server`) instead of by bubblewrap.
    """
    libc = mounts.libc()
    with open("/proc/sys/user/max_user_namespaces", "w") as limit:  # needs CAP_SYS_RESOURCE: written before the drop
        limit.write("0")
    mounts.check(libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
    for cap in range(64):
        if libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 and ctypes.get_errno() != 22:  # EINVAL: no such cap
            mounts.check(-1, f"drop capability {cap} from the bounding set")
    libc.prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    header, data = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0), (_CapData * 2)()
    mounts.check(libc.capset(ctypes.byref(header), data), "capset")


def status_code(status: int) -> int:
    """A wait status as a shell would report it: the exit code, or 128 + the signal that ended it."""
    return os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)


def _init(start: Callable[[], object], spec: Spec, uid: int | None, lifeline: int, *, userns: bool = False,
          shared: tuple[str, ...] = ()) -> None:
    """PID 1 of the new namespace: set up mounts, start the kernel, reap, take everything down with it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # interrupts are for the kernel, which gets them via killpg
    try:
        libc = mounts.libc()
        mounts.build_mounts(libc, spec, shared)
        mounts.loopback_up()
        if uid is not None:
            _chown_tree(spec.owned, uid)
        os.chdir(os.getcwd())  # re-resolve the working folder through the new mounts
    except BaseException as error:  # noqa: BLE001
        print(f"convcourse.sandbox: cannot set up the sandbox: {error}", file=sys.stderr, flush=True)
        os._exit(126)
    kernel = os.fork()
    if kernel == 0:
        os.close(lifeline)
        _become_kernel(spec, uid, own_count=True, start=start, userns=userns)
    code = _reap_until_ended(kernel, lifeline)
    try:
        os.kill(-1, signal.SIGKILL)  # every other process of this namespace (init itself is exempt)
    except ProcessLookupError:
        pass
    os._exit(code)


def end_watch(child: int) -> list[int]:
    """A pidfd of ``child`` in a list for select(): readable the moment it ends, so nobody polls for that.

    Empty where Linux has no pidfds (before 5.3): callers then look again after their select's timeout.
    """
    try:
        return [os.pidfd_open(child)]
    except (AttributeError, OSError):
        return []


def _reap_until_ended(kernel: int, lifeline: int) -> int:
    """As the namespace's init: reap the orphans left to it until the kernel ends (its status) or the lifeline does (137)."""
    ended = end_watch(kernel)
    while True:
        ready, _, _ = select.select([lifeline, *ended], [], [], 0.2)
        if lifeline in ready:  # the launcher outside is gone: nobody is grading this kernel any more
            return 137
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                pid = 0
            if pid == kernel:
                return status_code(status)
            if pid == 0:
                break


def enter_sandbox(start: Callable[[], object], spec: Spec, *, userns: bool = False,
                  shared: tuple[str, ...] = ()) -> tuple[int, int]:
    """Unshare the namespaces and fork their init, which runs ``start`` in the kernel's process.

    As root (``userns`` False) the kernel gets a uid of its own; with ``userns`` (an ordinary user,
    inside a warm kernel's bubblewrap) a user namespace of its own whose capabilities it drops.
    Returns (init's pid, the lifeline: closing it kills the sandbox).
    """
    uid = None if userns else _FIRST_UID + os.getpid() % 100_000
    outer_uid, outer_gid = os.getuid(), os.getgid()
    libc = mounts.libc()
    flags = _CLONE_NEWNS | _CLONE_NEWNET | _CLONE_NEWPID | _CLONE_NEWIPC | _CLONE_NEWUTS
    mounts.check(libc.unshare(flags | (_CLONE_NEWUSER if userns else 0)), "unshare")
    if userns:  # the same ids inside: the run folder stays the kernel's to write
        Path("/proc/self/setgroups").write_text("deny")
        Path("/proc/self/uid_map").write_text(f"{outer_uid} {outer_uid} 1")
        Path("/proc/self/gid_map").write_text(f"{outer_gid} {outer_gid} 1")
    socket.sethostname(HOSTNAME)
    lifeline, keepalive = os.pipe()
    child = os.fork()  # becomes PID 1 of the new PID namespace
    if child == 0:
        os.close(keepalive)
        _init(start, spec, uid, lifeline, userns=userns, shared=shared)
    os.close(lifeline)
    return child, keepalive


def _supervise(child: int, parent: int) -> int:
    """Outside the namespaces: wait for its init, and kill it if the grader that started us dies."""
    ended = end_watch(child)
    while True:
        pid, status = os.waitpid(child, os.WNOHANG)
        if pid == child:
            return status_code(status)
        if os.getppid() != parent:
            os.kill(child, signal.SIGKILL)
        select.select(ended, [], [], 0.1)


def run(cmd: list[str], spec: Spec, parent: int | None = None) -> int:
    """Run ``cmd`` as the spec says; returns its exit code (the launcher's own when set-up fails)."""
    if not spec.isolate:
        _exec_kernel(cmd, spec, None, own_count=False)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # interrupts are for the kernel (bwrap inherits this; --inner resets)
    # All the sandbox's processes together: twice one process's cap (page cache is charged here too).
    joined = join_memory_cgroup(2 * spec.limits.memory_mb)
    try:
        if os.geteuid() != 0:
            return _run_bwrap(cmd, spec, parent or os.getppid())
        cmd_start = lambda: os.execvp(cmd[0], cmd)  # noqa: E731
        child, _ = enter_sandbox(cmd_start, spec)
        return _supervise(child, parent or os.getppid())
    finally:
        leave_memory_cgroup(joined)


def _run_bwrap(cmd: list[str], spec: Spec, parent: int) -> int:
    """As an ordinary user: bubblewrap builds the sandbox and runs this module with --inner inside it."""
    import subprocess

    inner = [sys.executable, "-m", LAUNCHER_MODULE, "--spec", spec.to_json(), "--inner", "--", *cmd]
    cwd = paths.exposable(os.getcwd())  # the kernel's scratch folder (already writable), or a test's folder
    argv, fds = bwrap.command(inner, expose=[*spec.expose, *paths.interpreter_paths(), *([cwd] if cwd else [])],
                              writable=list(spec.owned), hide=list(spec.hide), tmp_mb=spec.limits.tmp_mb)
    try:
        child = subprocess.Popen(argv, pass_fds=fds, close_fds=True)
    except OSError as error:
        print(f"convcourse.sandbox: cannot run bubblewrap: {error}", file=sys.stderr, flush=True)
        return 126
    finally:
        for fd in fds:
            os.close(fd)
    return _supervise(child.pid, parent)


def main(argv: list[str] | None = None) -> int:
    """Launcher entry point: ``python -m convcourse.grading.sandbox.launcher --spec JSON [--parent PID] -- command...``."""
    parser = argparse.ArgumentParser(prog="python -m convcourse.grading.sandbox.launcher",
                                     description="Run a command in the convcourse sandbox.")
    parser.add_argument("--spec", required=True, help="JSON from Spec.to_json()")
    parser.add_argument("--parent", type=int, default=None, help="pid of the grader; the sandbox dies with it")
    parser.add_argument("--inner", action="store_true", help="inside bubblewrap's sandbox: limits, then exec")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command to run")
    spec = Spec.from_json(args.spec)
    if args.inner:
        _exec_kernel(command, spec, None, own_count=True)
    return run(command, spec, args.parent)


if __name__ == "__main__":
    sys.exit(main())

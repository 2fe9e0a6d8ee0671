"""The sandbox for an ordinary account: bubblewrap's command line, and why it cannot run where it cannot.

Without root the launcher cannot switch a kernel to a uid of its own, so it hands the kernel to
`bubblewrap <https://github.com/containers/bubblewrap>`_ (``bwrap``, the sandbox Flatpak is built
on), which builds the namespaces from an unprivileged user namespace:

* network, PID, IPC and UTS namespaces of its own (only loopback, a different one from the grader's);
* a mount namespace whose root holds only what a kernel needs, read-only: the system (``/usr``,
  ``/etc``, ``/sys`` and the merged-/usr links), the interpreter, its packages, this package and the
  data; a fresh ``/proc`` and ``/dev``, private size-capped ``/tmp`` and ``/dev/shm``, and the
  kernel's own scratch folder as the one writable place. Homes, ``/root``, ``/run`` (agent and bus
  sockets) and the rest of the machine are simply absent; the course's private files inside an
  exposed folder are covered by empty read-only mounts;
* no capabilities, ``no_new_privs``, no further user namespaces, and death with its launcher.
  (No ``--new-session``: jupyter_client already starts every kernel in a session of its own, with no
  controlling terminal, and interrupts must reach the kernel through that session's process group.)

The kernel keeps the grader's uid outside, but it can write nothing of the grader's: every path it
sees is read-only except its scratch folder and its tmpfs. Standard library only.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from convcourse.grading.sandbox.paths import inside, links, outermost, shelves

SYSTEM = ("/usr", "/etc", "/sys", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
_SYSCTL = Path("/proc/sys")


def bwrap_path() -> str | None:
    """The ``bwrap`` executable, or None when bubblewrap is not installed."""
    return shutil.which("bwrap") or next((p for p in ("/usr/bin/bwrap", "/usr/local/bin/bwrap") if os.access(p, os.X_OK)),
                                         None)


def _sysctl(name: str) -> str | None:
    try:
        return (_SYSCTL / name.replace(".", "/")).read_text().strip()
    except OSError:
        return None


def missing_userns_setting() -> str | None:
    """Which kernel setting keeps ordinary users from creating user namespaces here, if one is known to."""
    if _sysctl("kernel.unprivileged_userns_clone") == "0":
        return ("unprivileged user namespaces are disabled (sysctl kernel.unprivileged_userns_clone=0; "
                "enable with: sysctl -w kernel.unprivileged_userns_clone=1)")
    if _sysctl("user.max_user_namespaces") == "0":
        return "user namespaces are disabled (sysctl user.max_user_namespaces=0; set it to e.g. 15000)"
    if _sysctl("kernel.apparmor_restrict_unprivileged_userns") == "1":
        return ("AppArmor restricts unprivileged user namespaces (sysctl kernel.apparmor_restrict_unprivileged_userns=1, "
                "Ubuntu 23.10+; allow bwrap with an AppArmor profile, or set it to 0)")
    return None


def command(cmd: list[str], *, expose: list[str], writable: list[str], hide: list[str],
            tmp_mb: int, warm: bool = False) -> tuple[list[str], list[int]]:
    """The bwrap command line running ``cmd`` in the sandbox, and the descriptors to pass on with it.

    ``warm``: the sandbox of a warm kernel template (:mod:`convcourse.grading.sandbox.fork_server`), never of
    student code itself: it may create user namespaces (each kernel it forks makes its own and then
    forbids them, as ``--disable-userns`` would), and its ``/dev`` is read-only (its kernels share it).

    Each hidden file is replaced by an empty one that bwrap reads from a pipe (``--ro-bind-data``):
    the caller passes the returned descriptors to bwrap and closes them afterwards.
    """
    argv = [bwrap_path() or "bwrap", "--unshare-user", "--unshare-ipc", "--unshare-pid", "--unshare-net",
            "--unshare-uts", "--unshare-cgroup-try", *([] if warm else ["--disable-userns"]), "--die-with-parent",
            "--hostname", "convcourse-sandbox"]
    system = []
    for top in SYSTEM:
        if os.path.islink(top):  # merged /usr: /lib -> usr/lib
            argv += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            argv += ["--ro-bind", top, top]
            system.append(top)
    size = str(tmp_mb * 1024 * 1024)
    argv += ["--proc", "/proc", "--dev", "/dev", "--size", size, "--tmpfs", "/tmp", "--size", size, "--tmpfs", "/dev/shm"]
    rw = [p for p in outermost(writable) if not inside(p, system)]
    ro = [p for p in outermost(expose) if not inside(p, system + rw)]
    # Links on the way to a path as spelled (a venv reached through /tmp/link) that the view would lack.
    made = [(link, target) for link, target in links([*expose, *writable, *cmd[:1]])
            if link not in SYSTEM and not inside(link, system + ro + rw)]
    shelved = shelves(ro + rw + [link for link, _ in made])
    for shelf in shelved:
        argv += ["--size", str(1024 * 1024), "--perms", "0755", "--tmpfs", shelf]
    for path in ro:
        argv += ["--ro-bind", path, path]
    for path in rw:
        argv += ["--bind", path, path]
    for link, target in made:
        argv += ["--symlink", target, link]
    fds: list[int] = []
    for path in (os.path.realpath(p) for p in hide):
        if not os.path.exists(path) or not inside(path, system + ro + rw):
            continue  # not in the sandbox at all
        if os.path.isdir(path):
            argv += ["--size", "4096", "--perms", "0555", "--tmpfs", path, "--remount-ro", path]
        else:
            read, write = os.pipe()
            os.close(write)  # an empty file
            fds.append(read)
            argv += ["--perms", "0444", "--ro-bind-data", str(read), path]
    for shelf in shelved:  # only the shelf itself: binds below it keep their own mode
        argv += ["--remount-ro", shelf]
    argv += ["--remount-ro", "/", *(["--remount-ro", "/dev"] if warm else []), "--chdir", os.getcwd(), "--", *cmd]
    return argv, fds

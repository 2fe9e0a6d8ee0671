"""The sandbox's view as root: its mounts (private /tmp and /dev/shm, the interpreter reachable, the course's
private files covered, a fresh /proc) and its loopback, set up by the namespace's init before the kernel starts.

Also the two libc helpers the launcher's own calls use (:func:`libc`, :func:`check`). Only the standard
library and the sandbox package: it runs for every kernel.
"""
from __future__ import annotations

import ctypes
import os
import socket
import stat
import struct
from pathlib import Path

from convcourse.grading.sandbox import Spec
from convcourse.grading.sandbox.paths import inside, interpreter_paths, links, shelves

_MS_RDONLY, _MS_NOSUID, _MS_NODEV, _MS_NOEXEC = 1, 2, 4, 8
_MS_REMOUNT, _MS_BIND, _MS_REC, _MS_PRIVATE = 32, 4096, 16384, 1 << 18
_SIOCGIFFLAGS, _SIOCSIFFLAGS, _IFF_UP = 0x8913, 0x8914, 0x1


def libc() -> ctypes.CDLL:
    """The C library with errno kept and the argument types of the calls the sandbox makes."""
    c = ctypes.CDLL(None, use_errno=True)
    c.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
    c.unshare.argtypes = [ctypes.c_int]
    c.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    return c


def check(result: int, what: str) -> None:
    """Raise OSError (with errno's message) when a libc call returned non-zero."""
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def _mount(libc: ctypes.CDLL, source: str | None, target: str, fstype: str | None, flags: int,
           data: str | None = None) -> None:
    enc = lambda s: None if s is None else s.encode()  # noqa: E731
    check(libc.mount(enc(source), enc(target), enc(fstype), flags, enc(data)), f"mount {target}")


def loopback_up() -> None:
    """Bring up `lo` in the fresh network namespace (it starts down)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", _ioctl(sock, _SIOCGIFFLAGS, request))[1]
        _ioctl(sock, _SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | _IFF_UP))


def _ioctl(sock: socket.socket, request: int, data: bytes) -> bytes:
    import fcntl

    return fcntl.ioctl(sock.fileno(), request, data)


def _closed_ancestor(path: str) -> str | None:
    """The topmost folder above ``path`` that other users cannot enter (e.g. /root), if any."""
    parts = Path(path).parts
    for depth in range(2, len(parts)):
        folder = os.path.join(*parts[:depth])
        if not os.stat(folder).st_mode & stat.S_IXOTH:
            return folder
    return None


def _cover(libc: ctypes.CDLL, top: str, inner: list[str], made: list[tuple[str, str]], *, size_mb: int,
           writable: bool) -> None:
    """Mount an empty tmpfs over ``top``, then bind the ``inner`` paths back at their places and make the links ``made``.

    In a writable ``top`` the folders leading to a bound path are shelves (:func:`paths.shelves`): small
    tmpfs remounted read-only, so that the kernel cannot write beside a path it was only shown.
    """
    handles = [(path, os.open(path, os.O_PATH)) for path in inner if os.path.exists(path)]
    mode = "1777" if writable else "755"
    _mount(libc, "tmpfs", top, "tmpfs", _MS_NOSUID | _MS_NODEV, f"size={size_mb}m,mode={mode}")
    shelved = shelves([path for path, _ in handles] + [link for link, _ in made], tops=(top,)) if writable else []
    for shelf in shelved:
        os.makedirs(shelf, exist_ok=True)
        _mount(libc, "tmpfs", shelf, "tmpfs", _MS_NOSUID | _MS_NODEV, "size=1m,mode=755")
    for path, handle in handles:
        source = f"/proc/self/fd/{handle}"
        if os.path.isdir(source):
            os.makedirs(path, exist_ok=True)
        else:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            open(path, "ab").close()
        _mount(libc, source, path, None, _MS_BIND | _MS_REC)
        os.close(handle)
    for link, target in made:
        os.makedirs(os.path.dirname(link), exist_ok=True)
        os.symlink(target, link)
    for shelf in shelved:  # only the shelf itself: binds below it keep their own mode
        _mount(libc, None, shelf, None, _MS_REMOUNT | _MS_RDONLY | _MS_NOSUID | _MS_NODEV)
    if not writable:
        _mount(libc, None, top, None, _MS_REMOUNT | _MS_RDONLY | _MS_NOSUID | _MS_NODEV)


def _cover_of(path: str, covers: dict[str, list[str]]) -> str | None:
    """The covered folder ``path`` lies in (/tmp, a shared one), else its closed ancestor (e.g. /root), else None."""
    return next((top for top in covers if path.startswith(top + "/")), None) or _closed_ancestor(path)


def build_mounts(libc: ctypes.CDLL, spec: Spec, shared: tuple[str, ...] = ()) -> None:
    """Private propagation; private /tmp, /dev/shm; reachable interpreter and run folder; hidden course files.

    ``shared``: folders the sandbox would otherwise see whole although they hold other kernels' run
    folders (a warm kernel's): covered like /tmp, read-only, with only this kernel's paths bound back.
    """
    _mount(libc, None, "/", None, _MS_REC | _MS_PRIVATE)
    spelled = [p for p in (*spec.expose, *interpreter_paths(), os.getcwd()) if p]
    expose = [os.path.realpath(p) for p in spelled if os.path.exists(p)]
    covers: dict[str, list[str]] = {"/tmp": [], "/dev/shm": []}
    covers.update((os.path.realpath(p), []) for p in shared if not inside(os.path.realpath(p), list(covers)))
    for path in expose:
        top = _cover_of(path, covers)
        if top is not None:
            covers.setdefault(top, []).append(path)
    # Links on the way to a path as spelled (a venv reached through /tmp/link) that a cover would take away.
    made: dict[str, list[tuple[str, str]]] = {}
    for link, target in links(spelled):
        top = _cover_of(link, covers)
        if top is not None and not inside(link, covers[top]):
            made.setdefault(top, []).append((link, target))
            covers.setdefault(top, [])
    for top, inner in covers.items():
        if os.path.isdir(top):
            writable = top in ("/tmp", "/dev/shm")
            _cover(libc, top, inner, made.get(top, []), size_mb=spec.limits.tmp_mb if writable else 1,
                   writable=writable)
    empty = "/tmp/.convcourse-hidden"  # in the private /tmp; device files like /dev/null stay writable on ro mounts
    open(empty, "w").close()
    os.chmod(empty, 0o444)
    for path in spec.hide:
        if os.path.isdir(path) and not os.path.islink(path):
            _mount(libc, "tmpfs", path, "tmpfs", _MS_RDONLY | _MS_NOSUID | _MS_NODEV | _MS_NOEXEC, "size=4k,mode=755")
        elif os.path.exists(path) and os.stat(path).st_nlink > 0:  # 0: covered already, by a warm kernel's template
            # (bubblewrap's --ro-bind-data binds an unlinked file there, which no mount can cover again)
            _mount(libc, empty, path, None, _MS_BIND)
            _mount(libc, None, path, None, _MS_BIND | _MS_REMOUNT | _MS_RDONLY | _MS_NOSUID | _MS_NODEV)
    _mount(libc, "proc", "/proc", "proc", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC)

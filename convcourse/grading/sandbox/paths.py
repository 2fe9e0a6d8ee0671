"""A sandbox's view in paths, shared by bubblewrap's command line and the root route's mounts.

What a kernel of this interpreter must be shown (:func:`interpreter_paths`), and the arithmetic of
showing it. Both routes show a kernel real paths (bound at their real places), so two things need care: folders a
bind creates on the way inside a writable tmpfs (:func:`shelves`), and paths the kernel's command line
spells through a symbolic link that lives in a place the sandbox replaces (:func:`links`): a venv
reached as ``/tmp/link/bin/python`` where ``/tmp`` is the kernel's own tmpfs. Standard library only.
"""
from __future__ import annotations

import os
import site
import sys
from pathlib import Path

SCRATCH = ("/tmp", "/dev/shm")  # the kernel's own writable tmpfs
_MAX_LINKS = 64  # more links than this on the way to the paths of one sandbox: a loop, or not worth following


def exposable(folder: str) -> str | None:
    """The real path of ``folder`` when a kernel may be shown it whole: any folder but ``/`` and the home."""
    real = os.path.realpath(folder)
    if not os.path.isdir(real) or real in ("/", os.path.realpath(os.path.expanduser("~"))):
        return None
    return real


def interpreter_paths() -> list[str]:
    """What a kernel running this Python needs to see: the interpreter, its packages, this package.

    As spelled here (``sys.executable`` included), so that the links on the way can be made inside too.
    Which parts of these a kernel must not see (a course checkout's solutions) is the caller's ``hide``.
    """
    import convcourse

    found = [sys.executable, sys.prefix, sys.base_prefix, os.path.dirname(os.path.realpath(sys.executable)),
             str(Path(convcourse.__file__).resolve().parent), *site.getsitepackages()]
    if site.ENABLE_USER_SITE:
        found.append(site.getusersitepackages())
    found += [exposable(entry) for entry in sys.path if entry]  # .pth and PYTHONPATH folders
    return [p for p in found if p and os.path.exists(p)]


def inside(path: str, folders: list[str]) -> bool:
    """Whether ``path`` is one of ``folders`` or below one of them."""
    return any(path == f or path.startswith(f.rstrip("/") + "/") for f in folders)


def outermost(paths: list[str]) -> list[str]:
    """Existing real paths, without those inside another one of the list, shortest first."""
    real = sorted({os.path.realpath(p) for p in paths if p and os.path.exists(p)}, key=lambda p: (p.count("/"), p))
    kept: list[str] = []
    for path in real:
        if not inside(path, kept):
            kept.append(path)
    return kept


def shelves(paths: list[str], tops: tuple[str, ...] = SCRATCH) -> list[str]:
    """The folders just below /tmp or /dev/shm that hold a bound path deeper down (e.g. /tmp/ci for /tmp/ci/main/.venv).

    bwrap creates the folders leading to a bind; inside the kernel's writable tmpfs they would be the
    kernel's to write (a checkout under /tmp would seem writable there, though only the private copy
    of its path is). Each becomes a small tmpfs of its own, remounted read-only after the binds.
    """
    found: list[str] = []
    for path in paths:
        for top in tops:
            if inside(path, [top]) and path != top:
                shelf = os.path.join(top, os.path.relpath(path, top).split(os.sep)[0])
                if shelf not in paths and shelf not in found:
                    found.append(shelf)
    return found


def links(paths: list[str]) -> list[tuple[str, str]]:
    """Every symbolic link met on the way to ``paths`` as spelled: (where the link is, its target as written).

    The sandbox binds real paths only; a path spelled through a link (``/tmp/link`` -> ``/tmp/ci/venv``)
    is reachable inside only where the same link is made there too. The targets are followed as well
    (a link to a path through another link). Outermost first, so a link's folder is made before it.
    """
    found: dict[str, str] = {}
    pending = [os.path.abspath(p) for p in paths if p]
    while pending and len(found) < _MAX_LINKS:
        current = "/"
        for part in Path(pending.pop()).parts[1:]:
            step = os.path.join(current, part)
            if not os.path.islink(step):
                current = step
                continue
            if step not in found:
                found[step] = os.readlink(step)
                pending.append(os.path.join(current, found[step]))  # relative targets start at the link's folder
            current = os.path.realpath(step)
    return sorted(found.items(), key=lambda item: (item[0].count("/"), item[0]))

"""One memory cgroup per sandbox, so a notebook's processes together cannot take more than their share.

RLIMIT_DATA caps each process; a notebook that forks could still multiply it. Where the machine
offers a memory cgroup the launcher may create (cgroup v1, or v2 with the memory controller
delegated), the launcher moves itself into a fresh child of its own cgroup with a limit, before it
starts the namespace: everything started inside inherits it. Elsewhere this quietly does nothing
and the per-process limit stands alone. Standard library only (the launcher imports it).
"""
from __future__ import annotations

import os
import time
from pathlib import Path

_V1 = Path("/sys/fs/cgroup/memory")
_V2_ROOTS = (Path("/sys/fs/cgroup/unified"), Path("/sys/fs/cgroup"))


def _own_path(controller: str) -> str:
    """This process's cgroup path for ``controller`` ("" = the v2 unified line)."""
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(",") or (not controller and not controllers):
            return path.lstrip("/")
    raise LookupError(f"no {controller or 'unified'} cgroup in /proc/self/cgroup")


def _candidates() -> list[tuple[Path, str]]:
    """(this process's cgroup folder, name of its memory limit file) for each usable hierarchy."""
    found = []
    if (_V1 / "memory.limit_in_bytes").exists():
        found.append((_V1 / _own_path("memory"), "memory.limit_in_bytes"))
    for root in _V2_ROOTS:
        if (root / "cgroup.controllers").exists():
            here = root / _own_path("")
            if "memory" in (here / "cgroup.subtree_control").read_text().split():
                found.append((here, "memory.max"))
            break
    return found


def memory_cgroup_available() -> bool:
    """Whether a capped memory cgroup can be made here (as root, on a v1 or delegated v2 hierarchy)."""
    try:
        candidates = _candidates()
    except (OSError, LookupError, ValueError):
        return False
    for here, limit_file in candidates:
        probe = here / f"convcourse-probe-{os.getpid()}"
        try:
            probe.mkdir()
            (probe / limit_file).write_text(str(64 * 1024 * 1024))
            return True
        except OSError:
            continue
        finally:
            try:
                probe.rmdir()
            except OSError:
                pass
    return False


def join_memory_cgroup(limit_mb: int) -> tuple[Path, Path] | None:
    """Move this process into a new cgroup capped at ``limit_mb``; (new, previous) folder, or None if unavailable."""
    try:
        candidates = _candidates()
    except (OSError, LookupError, ValueError):
        return None
    for here, limit_file in candidates:
        _remove_stale(here)
        group = here / f"convcourse-sandbox-{os.getpid()}"
        try:
            group.mkdir()
            (group / limit_file).write_text(str(limit_mb * 1024 * 1024))
            (group / "cgroup.procs").write_text(str(os.getpid()))
            return group, here
        except OSError:
            try:
                group.rmdir()
            except OSError:
                pass
    return None


def _remove_stale(here: Path) -> None:
    """Remove the empty groups of launchers that were killed outright (SIGKILL skips their clean-up)."""
    for stale in here.glob("convcourse-sandbox-*"):
        try:
            os.kill(int(stale.name.rsplit("-", 1)[1]), 0)
        except ProcessLookupError:
            try:
                stale.rmdir()  # only succeeds once nothing is left in it
            except OSError:
                pass
        except (OSError, ValueError):
            continue


def leave_memory_cgroup(joined: tuple[Path, Path] | None) -> None:
    """Move back to the previous cgroup and remove the sandbox's, once everything in it has exited."""
    if joined is None:
        return
    group, previous = joined
    try:
        (previous / "cgroup.procs").write_text(str(os.getpid()))
    except OSError:
        return
    for _ in range(50):  # killed processes take a moment to leave
        try:
            group.rmdir()
            return
        except OSError:
            time.sleep(0.05)

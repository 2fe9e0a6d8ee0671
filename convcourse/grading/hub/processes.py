"""The demo hub's processes: its process group stopped, and whatever its accounts still run."""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path


def stop_group(pgid: int, grace_s: float = 20) -> None:
    """SIGTERM to the hub's group (the hub stops its proxy, services and servers), SIGKILL what is left after grace_s."""
    for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 10)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not _group_alive(pgid):
                return
            time.sleep(0.1)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    # zombies of a group whose leader was not our child count as gone
    return any(_pgid_of(pid) == pgid and _state_of(pid) != "Z" for pid in pids())


def pids() -> list[int]:
    """Every process id on this machine."""
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]


def _pgid_of(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


def _state_of(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "Z"


def kill_processes_of(uid: int) -> None:
    """SIGKILL every process owned by ``uid`` (a demo account's leftover kernels and servers)."""
    for pid in pids():
        try:
            if Path(f"/proc/{pid}").stat().st_uid == uid:
                os.kill(pid, signal.SIGKILL)
        except (OSError, ProcessLookupError):
            pass

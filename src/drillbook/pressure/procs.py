"""Process facts read from /proc, so a hog is recognised by more than a reusable pid.

Why the start time: a pid recorded in an intent may belong to another process by the time
``drillbook rollback`` runs (hours later, after a reboot); the kernel's start time (field 22 of
``/proc/PID/stat``) together with the pid names one process for the life of the machine, so revert
never signals a stranger.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

from drillbook.clock import get_clock

__all__ = [
    "alive",
    "group_members",
    "group_rss",
    "kill_group",
    "mem_available",
    "mem_total",
    "memory_limit_of",
    "start_time",
]


def _stat(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (OSError, ValueError):
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
    head, _, tail = raw.rpartition(")")
    if not head:
        return None
    return [head.split(" (", 1)[0], "comm", *tail.split()]


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (None: no such process)."""
    fields = _stat(pid)
    return int(fields[21]) if fields and len(fields) > 21 else None


def alive(pid: int) -> bool:
    """Running or sleeping; a zombie has finished and counts as gone."""
    fields = _stat(pid)
    return bool(fields) and fields is not None and fields[2] not in ("Z", "X")


def group_members(pgid: int) -> list[int]:
    """Live processes whose process group is ``pgid`` (a hog's workers, and the hog itself)."""
    found: list[int] = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fields = _stat(int(entry))
        if fields and len(fields) > 4 and fields[4] == str(pgid) and fields[2] not in ("Z", "X"):
            found.append(int(entry))
    return found


def _rss(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def group_rss(pgid: int) -> int:
    """Resident bytes of a process group (the kernel's own counter, VmRSS)."""
    return sum(_rss(p) for p in group_members(pgid))


def kill_group(pgid: int, leader_start: int | None, *, grace_s: float = 3.0) -> None:
    """End a hog's process group: SIGTERM (its clean-up runs), then SIGKILL after ``grace_s``.

    The leader's start time guards against pid reuse: when the leader still exists but started at
    another time, the group is someone else's and nothing is signalled. Orphaned workers of a
    dead leader keep its pgid, so they are still found and killed."""
    if leader_start is not None:
        now = start_time(pgid)
        if now is not None and now != leader_start:
            return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if not group_members(pgid):
            return
        try:
            os.killpg(pgid, sig)
        except (ProcessLookupError, PermissionError):
            return
        deadline = get_clock().monotonic() + grace_s
        while get_clock().monotonic() < deadline and group_members(pgid):
            _reap_if_child(pgid)
            get_clock().sleep(0.05)
    _reap_if_child(pgid)


def _reap_if_child(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _meminfo(key: str) -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise OSError(f"/proc/meminfo has no {key}")


def mem_total() -> int:
    return _meminfo("MemTotal")


def mem_available() -> int:
    return _meminfo("MemAvailable")


def memory_limit_of(pid: int) -> int | None:
    """The memory limit of ``pid``'s cgroup (v2 ``memory.max`` or v1 ``memory.limit_in_bytes``);
    None when unlimited or unknown."""
    try:
        lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        candidates = []
        if controllers == "":
            candidates.append(Path("/sys/fs/cgroup") / path.lstrip("/") / "memory.max")
            candidates.append(Path("/sys/fs/cgroup/unified") / path.lstrip("/") / "memory.max")
        elif "memory" in controllers.split(","):
            candidates.append(
                Path("/sys/fs/cgroup/memory") / path.lstrip("/") / "memory.limit_in_bytes"
            )
        for file in candidates:
            try:
                raw = file.read_text().strip()
            except OSError:
                continue
            if raw == "max":
                continue
            value = int(raw)
            if value < (1 << 60):  # v1 writes "unlimited" as a page-rounded 2**63
                return value
    return None

"""Whether the process that wrote a record (an intent, a target lock) is still running.

Why one place: rollback, the TTL watchdog and the target locks all decide from a pid whether a
run is gone, and a pid only means something on the host, PID namespace and boot it was taken
on. A pid recorded by a CronJob's pod on a shared state volume, or before a reboot, names some
other process here (or none); reading it as "alive" would keep a dead run's fault in place, and
as "dead" would revert a live run's fault under it. So the answer has three values, and
"unknown" is what a pid from elsewhere gets.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from enum import Enum
from functools import cache

__all__ = ["Liveness", "Origin", "here", "liveness", "pid_alive"]


class Liveness(Enum):
    ALIVE = "alive"
    DEAD = "dead"
    UNKNOWN = "unknown"  # recorded on another host, PID namespace or boot: this host cannot tell


@dataclass(frozen=True)
class Origin:
    """Where a pid was taken: what makes it comparable."""

    host: str
    pidns: str = ""  # /proc/self/ns/pid's link, e.g. "pid:[4026531836]"
    boot_id: str = ""  # /proc/sys/kernel/random/boot_id: a reboot recycles every pid


@cache
def here() -> Origin:
    """This process's origin."""
    try:
        pidns = os.readlink("/proc/self/ns/pid")
    except OSError:
        pidns = ""
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as fh:
            boot_id = fh.read().strip()
    except OSError:
        boot_id = ""
    return Origin(socket.gethostname(), pidns, boot_id)


def pid_alive(pid: int) -> bool:
    """A pid in this namespace names a running process; a zombie (killed, not yet reaped by its
    parent) counts as gone."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: it exists
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().rsplit(") ", 1)[1][:1] not in ("Z", "X")
    except (OSError, IndexError):
        return True


def liveness(pid: int, origin: Origin) -> Liveness:
    """The state of ``pid`` recorded at ``origin``. An empty ``pidns``/``boot_id`` (a record
    from an older drillbook) is taken as this one's when the host matches."""
    me = here()
    if origin.host != me.host:
        return Liveness.UNKNOWN
    if origin.pidns and me.pidns and origin.pidns != me.pidns:
        return Liveness.UNKNOWN
    if origin.boot_id and me.boot_id and origin.boot_id != me.boot_id:
        return Liveness.DEAD  # the machine rebooted since: that process cannot be running
    return Liveness.ALIVE if pid_alive(pid) else Liveness.DEAD

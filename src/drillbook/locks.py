"""One drill per target at a time: a lock per target, taken before the intent is written and
held until the revert is verified.

Why: two drills on one target (two CI jobs, a CronJob and a person) corrupt both measurements,
and one reverting the other's state can leave a fault behind. The second drill is refused at
once, naming the holder.

The engine sees locks only through :class:`Arbiter`, so an arbiter shared beyond one state
folder (a PostgreSQL advisory lock, a Kubernetes Lease) can replace :class:`FileArbiter`. The
file arbiter keeps one file per target under ``<state_dir>/locks/``, held with ``flock``: the
kernel (or the NFS lock manager, on a shared state volume) releases it when the holder's process
dies, so a crashed holder never blocks the target for good. The file also holds the holder's
record (run id, pid, host, since when); a record found on a lock that was free is a holder that
died before it could release, and is taken over, saying so. A record from another host (or PID
namespace) whose lease has not run out is not taken over: that holder cannot be proved dead from
here, and a filesystem that does not carry ``flock`` between hosts would otherwise let two drills
in.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from drillbook.clock import get_clock, utc_iso
from drillbook.errors import SafetyError
from drillbook.liveness import Liveness, Origin, here, liveness

__all__ = ["Arbiter", "FileArbiter", "Holder", "TargetBusy", "TargetLock"]


@dataclass(frozen=True)
class Holder:
    """Who holds (or held) a target."""

    run_id: str
    drill: str
    pid: int
    host: str
    since: float  # epoch seconds
    lease_until: float  # epoch seconds: past it, a holder on another host is presumed gone
    pidns: str = ""
    boot_id: str = ""

    @classmethod
    def me(cls, run_id: str, drill: str, now: float, lease_s: float) -> Holder:
        origin = here()
        return cls(
            run_id,
            drill,
            os.getpid(),
            origin.host,
            now,
            now + lease_s,
            origin.pidns,
            origin.boot_id,
        )

    @property
    def origin(self) -> Origin:
        return Origin(self.host, self.pidns, self.boot_id)

    def describe(self) -> str:
        since = utc_iso(datetime.fromtimestamp(self.since, UTC))
        return f"run {self.run_id} ({self.drill}; pid {self.pid} on {self.host}, since {since})"


class TargetBusy(SafetyError):
    """Another drill holds the target."""

    def __init__(self, target: str, holder: Holder | None, why: str = "") -> None:
        self.target = target
        self.holder = holder
        who = (
            holder.describe() if holder is not None else "another drill (its record is unreadable)"
        )
        super().__init__(
            f"target {target!r} is being drilled by {who}{why}; one drill per target at a time"
        )


class TargetLock(Protocol):
    """A held target. ``release(clean=True)`` once its faults are reverted and verified;
    ``clean=False`` (a revert did not hold) leaves the holder's record for the next drill."""

    target: str
    taken_over: Holder | None  # the dead holder this lock was taken from, if any

    def release(self, *, clean: bool = True) -> None: ...

    def lost(self) -> str | None:
        """Why the lock stopped being ours while held (a lease that expired, a session the
        server ended: another runner may take the target now), or None. The drill asks while
        it waits, and aborts and reverts rather than go on drilling a target it no longer
        holds."""
        ...


class Arbiter(Protocol):
    """Hands out target locks; refuses with :class:`TargetBusy`, never waits."""

    def acquire(self, target: str, holder: Holder) -> TargetLock: ...


@dataclass
class _FileLock:
    target: str
    taken_over: Holder | None
    fd: int | None

    def lost(self) -> str | None:
        return None  # a flock is held while its descriptor is open: this process's to lose

    def release(self, *, clean: bool = True) -> None:
        fd, self.fd = self.fd, None
        if fd is None:
            return
        try:
            if clean:
                os.ftruncate(fd, 0)
                os.fsync(fd)
        finally:
            os.close(fd)  # releases the flock


class FileArbiter:
    """Lock files under one folder (see the module's docstring)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path_for(self, target: str) -> Path:
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", target)
        if safe != target:
            safe += "-" + hashlib.sha256(target.encode()).hexdigest()[:8]
        return self.folder / f"{safe}.lock"

    def acquire(self, target: str, holder: Holder) -> TargetLock:
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path_for(target), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise TargetBusy(target, _read_holder(fd)) from None
            previous = _read(fd)
            if (
                previous is not None
                and liveness(previous.pid, previous.origin) is Liveness.UNKNOWN
                and previous.lease_until > holder.since
            ):
                lease = utc_iso(datetime.fromtimestamp(previous.lease_until, UTC))
                raise TargetBusy(
                    target,
                    previous,
                    f" (held from another host or PID namespace: it cannot be proved dead from"
                    f" here before its lease ends at {lease})",
                )
            data = json.dumps(asdict(holder)).encode()
            os.ftruncate(fd, 0)
            os.pwrite(fd, data, 0)
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            raise
        return _FileLock(target, previous, fd)


def _read_holder(fd: int) -> Holder | None:
    """The holder's record; it writes it right after taking the lock, so an empty file is
    looked at again for a moment."""
    clock = get_clock()
    for _ in range(50):
        found = _read(fd)
        if found is not None:
            return found
        clock.sleep(0.01)
    return None


def _read(fd: int) -> Holder | None:
    """The record in a lock file; None when empty or unreadable (a holder mid-write)."""
    try:
        raw = os.pread(fd, 65536, 0)
        data = json.loads(raw) if raw.strip() else None
        return Holder(**data) if isinstance(data, dict) else None
    except (OSError, ValueError, TypeError):
        return None

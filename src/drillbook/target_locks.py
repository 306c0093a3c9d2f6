"""One drill per target: the locks a drill takes on its targets and frees at the end
(see :mod:`drillbook.locks`).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Sequence

from drillbook.clock import epoch
from drillbook.drillstate import DrillState
from drillbook.errors import DrillAborted, SafetyError
from drillbook.locks import Holder

__all__ = ["TargetHolding"]


class TargetHolding(DrillState):
    """The targets this drill holds."""

    def _hold_targets(self, targets: Sequence[str], ttl_s: float) -> None:
        """Take the lock of every target not held yet, then refuse a target that still has a
        fault pending from an earlier run (a crashed holder's): drilling over it would measure
        that fault and could revert it under its owner. Dry runs touch nothing, locks included."""
        if self.config.dry_run:
            return
        now = epoch()
        holder = Holder.me(
            self.journal.run_id if self.journal else "adhoc",
            self.id,
            now,
            self.timeout + ttl_s,
        )
        for name in sorted(set(targets) - set(self._locks)):
            lock = self.arbiter.acquire(name, holder)
            self._locks[name] = lock
            if lock.taken_over is not None:
                line = f"took over target {name!r} from {lock.taken_over.describe()}: it is gone"
                self._event("lock", target=name, taken_over=True, detail=line)
                print(f"[drillbook] {self.id}: {line}", file=sys.stderr)
            else:
                self._event("lock", target=name, taken_over=False)
            mine = {i.intent.id for i in self._injected}
            left = [i for i in self.intents.pending() if name in i.targets and i.id not in mine]
            if left:
                old = left[0]
                raise SafetyError(
                    f"target {name!r} still has {old.fault_type} pending from run {old.run_id} "
                    f"(intent {old.id}, {old.status}, pid {old.pid} on {old.host}): run "
                    f"`drillbook rollback` first"
                )

    def _check_locks(self) -> None:
        """Abort (and so revert) once a held target's lock is lost: another runner may be
        drilling the target already, and two drills on one target measure neither."""
        for name, lock in self._locks.items():
            why = lock.lost()
            if why is not None:
                self._event("lock", target=name, lost=True, detail=why)
                raise DrillAborted(f"lost the lock on target {name!r}: {why}: aborting")

    def _release_targets(self) -> None:
        """Free every held target; a target whose fault is not known reverted keeps its
        holder's record (the next drill finds it, and the pending intent refuses it)."""
        failed = {t for i in self._injected if not i.reverted for t in i.spec.targets}
        locks, self._locks = self._locks, {}
        for name, lock in locks.items():
            with contextlib.suppress(OSError):
                lock.release(clean=name not in failed)

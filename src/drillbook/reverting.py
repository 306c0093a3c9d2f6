"""Undoing what a drill injected: every fault reverted newest first, retried with backoff,
each try journaled in the intent ledger.
"""

from __future__ import annotations

import sys

from drillbook.backends.base import Fault
from drillbook.clock import utc_iso
from drillbook.drillstate import DrillState
from drillbook.record import RevertRecord
from drillbook.redact import redact_text
from drillbook.rollback import backoff, still_injected

__all__ = ["Reverting"]


class Reverting(DrillState):
    """Revert every injected fault; idempotent."""

    def revert_all(self) -> None:
        """Revert every injected fault, newest first; idempotent. A revert that does not hold
        is tried again with backoff for ``safety.revert_retry``, every try journaled; one that
        never holds ends with a "still injected" line, and its watchdog is left to try at TTL."""
        for item in reversed(self._injected):
            if item.reverted:
                continue
            ok, verified, detail, tries = False, False, "", 0
            for tries in backoff(self.config.safety.revert_retry_s, self.clock):
                ok, verified, detail = self._revert_once(item.fault)
                if ok:
                    break
                self.intents.revert_failed(item.intent.id, detail, attempt=tries)
                self._event(
                    "revert_try",
                    fault=item.spec.type,
                    intent=item.intent.id,
                    attempt=tries,
                    ok=False,
                    detail=detail,
                )
            if ok:
                self.intents.reverted(item.intent.id, detail)
                item.reverted = True
                self._t_revert_confirmed = self._now()
                if item.watchdog is not None:
                    # Reaped at the end of finish(): its teardown overlaps the journal and verdict.
                    item.watchdog.stop()
                    self._to_reap.append(item.watchdog)
            else:
                line = still_injected(item.spec.type, item.spec.targets, item.intent.id)
                detail = f"{detail}; {line}"
                print(f"[drillbook] {self.id}: {line}", file=sys.stderr, flush=True)
            rec: RevertRecord = {
                "fault": item.spec.type,
                "intent": item.intent.id,
                "at": utc_iso(self.clock.wall()),
                "ok": ok,
                "verified": verified,
                "tries": tries,
                "detail": detail,
            }
            self._reverts.append(rec)
            self._event("revert", **rec)

    def _revert_once(self, fault: Fault) -> tuple[bool, bool, str]:
        """(ok, verified, detail) of one revert, waiting 30 s at most to see it hold."""
        try:
            fault.revert()
            verify_by = self._now() + 30.0
            verified = fault.verify_reverted()
            while not verified and self._now() < verify_by:
                self.clock.sleep(0.1)
                verified = fault.verify_reverted()
            report = fault.revert_report()
        except Exception as exc:
            return False, False, redact_text(f"{type(exc).__name__}: {exc}")
        detail = (
            "reverted and verified"
            if verified
            else "revert ran; verify_reverted() still sees the fault"
        )
        return verified, verified, f"{detail}: {report}" if report else detail

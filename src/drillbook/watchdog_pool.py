"""The drill's TTL watchdogs: one started early for the next inject, one live per injected
fault, and the ones to reap once their fault is reverted (see :mod:`drillbook.watchdog`).
"""

from __future__ import annotations

from drillbook.drillstate import DrillState
from drillbook.errors import SafetyError
from drillbook.intents import Intent
from drillbook.watchdog import Watchdog

__all__ = ["WatchdogPool"]

#: How long inject waits for its watchdog to say it is ready (it was started before the steady
#: state, so it usually is already).
_WATCHDOG_READY_S = 60.0


class WatchdogPool(DrillState):
    """No fault is injected without a live watchdog to revert it if this process dies."""

    def _spawn_watchdog(self, intent_id: str) -> Watchdog | None:
        """The TTL watchdog of intent ``intent_id``, started before this drill records it (it
        leaves if none comes). None when it could not be started."""
        from drillbook.watchdog import spawn

        try:
            return spawn(
                self.config.intent_ledger,
                intent_id,
                self.config.state_dir / "watchdog.log",
                before_intent_s=max(60.0, 2 * self.timeout),
            )
        except OSError as exc:
            self._event("watchdog", live=False, detail=f"could not start: {exc}")
            return None

    def _live_watchdog(self) -> tuple[str, Watchdog | None]:
        """The id of the intent about to be recorded, and its watchdog, ready.

        A fault is not injected without a live watchdog: if this process dies, nothing else
        would revert it before someone runs rollback. Only ``safety.watchdog: false`` (or
        ``DRILLBOOK_NO_WATCHDOG=1``) lets a drill go without one, and the journal says so."""
        spare, self._spare_watchdog = self._spare_watchdog, None
        safety = self.config.safety
        if not safety.watchdog:
            if spare is not None:
                spare[1].stop()
                self._to_reap.append(spare[1])
            intent_id = spare[0] if spare is not None else Intent.new_id()
            self._event("watchdog", live=False, allowed_by=safety.watchdog_off_by)
            return intent_id, None
        if spare is None:
            intent_id = Intent.new_id()
            watchdog = self._spawn_watchdog(intent_id)
        else:
            intent_id, watchdog = spare
        if watchdog is None or not watchdog.wait_ready(_WATCHDOG_READY_S):
            if watchdog is not None:
                watchdog.stop()
                self._to_reap.append(watchdog)
            raise SafetyError(
                "no live TTL watchdog: refusing to inject a fault nothing would revert if this "
                f"process died (see {self.config.state_dir / 'watchdog.log'}); set "
                "`safety.watchdog: false` to drill without one"
            )
        self._event("watchdog", live=True, pid=watchdog.proc.pid, intent=intent_id)
        return intent_id, watchdog

    def _start_watchdog_early(self) -> None:
        """Start the next inject's watchdog now, before the steady-state check: an interpreter
        starting beside the inject would cost it CPU inside the measured window."""
        if (
            self._spare_watchdog is not None
            or self.config.dry_run
            or not self.config.safety.watchdog
        ):
            return
        intent_id = Intent.new_id()
        proc = self._spawn_watchdog(intent_id)
        if proc is not None:
            self._spare_watchdog = (intent_id, proc)

    def adopt_spare_watchdog(self, spare: tuple[str, Watchdog] | None) -> None:
        """Take a watchdog the run started early (:func:`drillbook.watchdog.spare_for`) for
        this drill's inject; one this drill cannot use is stopped."""
        if spare is None:
            return
        if self._spare_watchdog is None and not self.config.dry_run and self.config.safety.watchdog:
            self._spare_watchdog = spare
            return
        spare[1].stop()
        spare[1].reap()

    def _drop_spare_watchdog(self) -> None:
        spare, self._spare_watchdog = self._spare_watchdog, None
        if spare is not None:
            spare[1].stop()
            spare[1].reap()

    def _reap_watchdogs(self) -> None:
        reap, self._to_reap = self._to_reap, []
        for watchdog in reap:
            watchdog.reap()

"""The drill's RPO ledger: started before the fault, given more history than the RPO, stopped
and read back at the end (see :class:`drillbook.backends.base.Ledger`).
"""

from __future__ import annotations

from drillbook.backends.base import Ledger
from drillbook.clock import epoch
from drillbook.drillstate import DrillState
from drillbook.model import LedgerSpec
from drillbook.redact import redact_text
from drillbook.timeline import Check

__all__ = ["LedgerUse"]


class LedgerUse(DrillState):
    """The RPO writer of one drill."""

    def use_ledger(self, spec: LedgerSpec) -> None:
        """Start the RPO writer now, so there are acknowledged writes before the fault."""
        reg = self.registry.ledger(spec.type)
        self._need_backend(reg.backend)
        params = {**spec.params, "rate_per_s": spec.rate_per_s}
        ledger = reg.factory(self._ctx_for(reg.backend, params, spec.targets))
        if self.config.dry_run:  # a dry run writes nothing anywhere: no table, no rows
            self._event("plan", ledger=spec.type, plan="would start the RPO ledger")
            if self.on_plan:
                self.on_plan(f"[dry run] {self.id}: would write the {spec.type} ledger")
            return
        ledger.start()
        self._ledger = ledger
        self._event("ledger_start", ledger=spec.type, rate_per_s=spec.rate_per_s)

    def _await_ledger_history(self) -> None:
        """Before the fault, let the ledger write for longer than the RPO: a loss older than its
        first write cannot be seen, so a shorter history could pass a drill that lost more than
        the RPO (issue 21: 13.7 s lost, 1.3 s of history, RPA 1.33 s reported). Bounded: a
        ledger that cannot write at all is judged in finish()."""
        ledger, rpo = self._ledger, self.objectives.rpo_s
        if ledger is None or rpo is None:
            return
        margin = 2.0 / max(ledger.rate_per_s, 0.1)
        started = self._now()
        give_up = started + rpo + margin + 30.0
        while self._now() < give_up:
            first = ledger.history_start()
            if first is not None and epoch() - first > rpo + margin:
                break
            self.clock.sleep(0.05)
        # In the journal: the pause before the fault is the measure's need, not the harness's.
        self._event("ledger_history", waited_s=round(self._now() - started, 3), needed_s=rpo)

    def _check_ledger_history(self, ledger: Ledger, t_inject_epoch: float) -> None:
        """A ledger that wrote for less than the RPO before the fault cannot show the RPA is
        within it: the drill says so and does not pass on it."""
        rpo = self.objectives.rpo_s
        if rpo is None:
            return
        first = ledger.history_start()
        history = None if first is None else t_inject_epoch - first
        ok = history is not None and history > rpo
        seen = "no write before the fault" if history is None else f"{history:.2f}s"
        detail = f"ledger history before the fault {seen}, RPO {rpo:g}s" + (
            "" if ok else ": older losses cannot be seen, so RPA is not shown within the RPO"
        )
        self._checks.append(Check("ledger history", ok, detail))

    def _stop_ledger(self) -> None:
        """Stop the writer and, once the drill waited for recovery, measure what was lost."""
        if self._ledger is not None:
            try:
                self._ledger.stop()
                if self._t_inject_epoch is not None and self._await_done:
                    self._ledger_measure = self._ledger.measure(self._t_inject_epoch)
                    self._check_ledger_history(self._ledger, self._t_inject_epoch)
            except Exception as lexc:
                self._checks.append(
                    Check("ledger", False, redact_text(f"{type(lexc).__name__}: {lexc}"))
                )

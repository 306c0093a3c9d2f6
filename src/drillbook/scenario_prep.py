"""Getting a YAML scenario ready to be timed: its runbook's drift warned about, and the code
behind every fault, probe, step and ledger it names imported up front.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drillbook.drillstate import DrillState
from drillbook.model import Scenario

__all__ = ["ScenarioPrep"]


class ScenarioPrep(DrillState):
    """Done once, before the steady state."""

    def _runbook_warning(self, scenario: Scenario) -> None:
        """Say so when the runbook changed since the scenario was imported from it: the drill
        then practises a procedure the team no longer has."""
        info = scenario.runbook_import or {}
        warning = info.get("warning")
        if warning:
            self._event("warning", what="runbook_changed", detail=str(warning))
            if self.progress_stream is not None:
                print(f"[drillbook] WARNING {self.id}: {warning}", file=self.progress_stream)

    def _load_factories(self, s: Scenario) -> None:
        """Import the code behind every fault, probe, step and ledger the scenario names before
        anything is timed: a lazy factory imports its module on first use, and neither the
        steady-state check nor a recovery step's measured duration should include an import."""
        registry = self.registry
        wanted: list[tuple[Mapping[str, Any], str | None]] = [
            *((registry.probes, p.type) for p in (*s.probes, *s.steady_state, *s.verify)),
            *((registry.probes, g.probe.type) for g in s.guards),
            *((registry.recoveries, r.type) for r in s.recovery),
            (registry.faults, s.fault.type if s.fault else None),
            (registry.ledgers, s.ledger.type if s.ledger else None),
        ]
        for table, name in wanted:
            reg = table.get(name) if name else None
            resolve = getattr(reg.factory, "resolve", None) if reg is not None else None
            if resolve is not None:
                resolve()

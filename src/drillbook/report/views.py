"""What every report shows about a drill, read once from the journal.

HTML, Markdown, CSV and JUnit properties all start from :class:`DrillSummary`, so the four never
disagree about a number or a verdict.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from drillbook.report.fmt import fmt_bracket, fmt_s
from drillbook.report.journal import drill_target_key, num, seq

__all__ = ["DrillSummary", "StepView", "params_text", "slow_steps", "summarize"]


@dataclass(frozen=True)
class DrillSummary:
    """The headline facts of one drill."""

    id: str
    scenario: str
    verdict: str
    severity: str
    targets: str
    backends: str
    fault_type: str
    fault_plan: str
    started_at: str
    duration_s: float | None
    ttd_s: float | None
    rta_s: float | None
    rta_bracket: tuple[float, float] | None
    rpa_s: float | None
    lost_writes: int | None
    rto_s: float | None
    rpo_s: float | None
    response_target_s: float | None
    reasons: tuple[str, ...]
    outage_observed: bool | None = None  # False: a fault no probe saw, so there is no RTA
    relapse_s: float | None = None

    @property
    def rta_text(self) -> str:
        if self.rta_s is None and self.outage_observed is False:
            return "not observed"
        text = fmt_s(self.rta_s)
        bracket = fmt_bracket(list(self.rta_bracket) if self.rta_bracket else None)
        return f"{text} [{bracket}]" if bracket and self.rta_s is not None else text

    @property
    def rpa_text(self) -> str:
        """RPA as a reader needs it: never "0ms" when a write was lost."""
        if self.rpa_s is not None and 0 < self.rpa_s < 0.0005:
            return "<1ms"
        return fmt_s(self.rpa_s)

    @property
    def rta_ok(self) -> bool | None:
        if self.rta_s is None or self.rto_s is None:
            return None
        return self.rta_s <= self.rto_s

    @property
    def rpa_ok(self) -> bool | None:
        if self.rpa_s is None or self.rpo_s is None:
            return None
        if self.rpo_s == 0 and self.lost_writes:
            return False  # RPO 0 allows no lost write, however short its span
        return self.rpa_s <= self.rpo_s


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def summarize(drill: Mapping[str, Any]) -> DrillSummary:
    """Read one drill of the pinned journal shape."""
    measures = _mapping(drill.get("measures"))
    objectives = _mapping(drill.get("objectives"))
    fault = _mapping(drill.get("fault"))
    bracket = measures.get("rta_bracket_s")
    pair: tuple[float, float] | None = None
    if isinstance(bracket, list) and len(bracket) == 2:
        b0, b1 = num(bracket[0]), num(bracket[1])
        if b0 is not None and b1 is not None:
            pair = (b0, b1)
    lost = measures.get("lost_writes")
    observed = measures.get("outage_observed")
    backends = sorted(
        {
            str(t.get("backend"))
            for t in seq(drill.get("targets"))
            if isinstance(t, Mapping) and t.get("backend")
        }
    )
    reasons = [str(r) for r in seq(drill.get("reasons")) if r]
    if not reasons and drill.get("verdict") != "passed":
        reasons = [
            f"{c.get('name')}: {c.get('detail') or 'failed'}"
            for c in seq(drill.get("checks"))
            if isinstance(c, Mapping) and c.get("ok") is False
        ]
    return DrillSummary(
        id=str(drill.get("id")),
        scenario=str(drill.get("scenario") or drill.get("id")),
        verdict=str(drill.get("verdict") or "error"),
        severity=str(drill.get("severity") or objectives.get("severity") or ""),
        targets=drill_target_key(drill),
        backends=",".join(backends),
        fault_type=str(fault.get("type") or ""),
        fault_plan=str(fault.get("plan") or ""),
        started_at=str(drill.get("started_at") or ""),
        duration_s=num(drill.get("duration_s")),
        ttd_s=num(measures.get("ttd_s")),
        rta_s=num(measures.get("rta_s")),
        rta_bracket=pair,
        rpa_s=num(measures.get("rpa_s")),
        lost_writes=lost if isinstance(lost, int) and not isinstance(lost, bool) else None,
        rto_s=num(objectives.get("rto_s")),
        rpo_s=num(objectives.get("rpo_s")),
        response_target_s=num(objectives.get("response_target_s")),
        reasons=tuple(reasons),
        outage_observed=observed if isinstance(observed, bool) else None,
        relapse_s=num(measures.get("relapse_s")),
    )


@dataclass(frozen=True)
class StepView:
    """A recovery step as the report lists it; ``slow`` makes it stand out."""

    name: str
    kind: str
    type: str
    duration_s: float | None
    ok: bool
    detail: str
    share: float  # of the total step time, 0..1
    slow: bool


def slow_steps(drill: Mapping[str, Any]) -> list[StepView]:
    """The drill's recovery steps, the slow ones flagged.

    A step is slow when it takes half or more of all step time (among two or more steps) or a
    quarter or more of the RTO: those are the runbook steps worth automating or rehearsing first.
    """
    steps = [s for s in seq(drill.get("steps")) if isinstance(s, Mapping)]
    if not steps:  # e.g. only an awaited automatic recovery: it is in the timeline
        steps = [
            {**e, "kind": e.get("step_kind") or e.get("kind")}
            for e in seq(drill.get("timeline"))
            if isinstance(e, Mapping) and e.get("kind") == "step"
        ]
    rto = num(_mapping(drill.get("objectives")).get("rto_s"))
    durations = [num(s.get("duration_s")) or 0.0 for s in steps]
    total = sum(durations)
    out = []
    for s, dur in zip(steps, durations, strict=True):
        share = dur / total if total > 0 else 0.0
        slow = (len(steps) > 1 and share >= 0.5 and dur >= 0.5) or (
            rto is not None and rto > 0 and dur >= 0.25 * rto
        )
        out.append(
            StepView(
                name=str(s.get("name") or s.get("type") or s.get("kind") or "step"),
                kind=str(s.get("kind") or ""),
                type=str(s.get("type") or ""),
                duration_s=num(s.get("duration_s")),
                ok=s.get("ok") is not False,
                detail=str(s.get("detail") or ""),
                share=share,
                slow=slow,
            )
        )
    return out


def params_text(params: object) -> str:
    """Fault parameters as compact JSON for the "what was injected" line."""
    if not isinstance(params, Mapping) or not params:
        return ""
    return json.dumps(params, sort_keys=True, default=str)

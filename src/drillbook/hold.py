"""The hold drill: hold the fault for ``duration`` while the SLO probes must keep passing.

The classic chaos experiment, beside the engine's inject -> detect -> recover: steady state ->
inject -> hold -> revert -> time the return to steady state. Its question is not "how fast do we
recover" but "under this fault, do we stay within the SLO?". So here a failing probe is the
answer, not a detection: the first failing sample after t_inject is the breach; the drill records
its time and value, reverts at once (a breached SLO is a user-visible outage the drill must not
prolong) and fails its verdict. A drill that held then times the return to steady state after the
revert (every probe passing for ``stable_for``) and reports both.

Kept out of engine.py: it drives a :class:`~drillbook.engine.Drill` through the same phases,
journal, guards and revert, and leaves its result where ``finish`` reads it (measures, checks and
the ``hold`` record).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from drillbook.durations import format_duration
from drillbook.timeline import Check, Measures, Sample, compute_measures

if TYPE_CHECKING:
    from drillbook.model import Scenario

#: A :class:`drillbook.engine.Drill`; not imported, even for typing: the engine imports this
#: module, and drillbook keeps its import graph free of cycles.
Drill = Any

__all__ = ["run_hold"]


def _breach_entry(drill: Drill, sample: Sample) -> dict[str, Any]:
    """The timeline entry (detail, value) of the breaching sample."""
    offset = drill._off(sample.start)
    with drill._lock:
        for entry in reversed(drill._timeline):
            if (
                entry.get("kind") == "probe"
                and entry.get("probe") == sample.probe
                and entry.get("offset_s") == offset
            ):
                return dict(entry)
    return {}


def _first_failure(drill: Drill, since: float, seen: int) -> tuple[Sample | None, int]:
    with drill._lock:
        fresh = drill._samples[seen:]
        seen = len(drill._samples)
    for s in fresh:
        if not s.ok and s.start >= since and not s.probe.startswith("guard:"):
            return s, seen
    return None, seen


def run_hold(drill: Drill, scenario: Scenario) -> None:
    """Inject, hold, revert and time the return; raises only what the engine's finish handles."""
    assert scenario.fault is not None and scenario.hold_s is not None
    hold_s = scenario.hold_s
    drill.inject(scenario.fault)
    assert drill._t_inject is not None
    t_inject = drill._t_inject
    hold_end = t_inject + hold_s
    breach: Sample | None = None
    seen = 0
    with drill._phase("hold"):
        while True:
            breach, seen = _first_failure(drill, t_inject, seen)
            if breach is not None:
                break
            drill._check_guards()
            now = drill._now()
            if now >= hold_end or now >= drill.deadline:
                break
            drill._await_sample(min(drill.interval / 2, 0.1, max(0.0, hold_end - now)))
    entry = _breach_entry(drill, breach) if breach is not None else {}
    held_s = (breach.start if breach is not None else min(drill._now(), hold_end)) - t_inject
    if breach is not None:
        drill._event(
            "slo_breach",
            probe=breach.probe,
            at_s=round(breach.start - t_inject, 6),
            value=entry.get("value"),
            detail=entry.get("detail", breach.detail),
        )
    else:
        drill._event("slo_held", held_s=round(held_s, 6))

    drill.revert_all()  # at once: a breached SLO must not be prolonged
    t_revert = drill._t_revert_confirmed or drill._now()
    drill._kick_probes()
    returned: Measures | None = None
    with drill._phase("return"):
        while True:
            with drill._lock:
                after = [
                    s
                    for s in drill._samples
                    if s.start >= t_revert and not s.probe.startswith("guard:")
                ]
            # From the revert on nothing is injected: the first stable passing run is the return,
            # whether or not a probe failed after it (has_fault=False says so).
            m = compute_measures(
                after, t_revert, drill.stable_for, now=drill._now(), has_fault=False
            )
            if m.recovered:
                returned = m
                break
            drill._check_guards()
            if drill._now() >= drill.deadline:
                drill._event("timeout", detail="not back to steady state after the revert")
                break
            drill._await_sample(min(drill.interval / 2, 0.1))

    return_s = returned.rta_s if returned is not None else None
    t_back = t_revert + return_s if return_s is not None else None
    if t_back is not None:
        drill._t_recovered = t_back
        drill._event(
            "recovered", rta_s=round(t_back - t_inject, 6), return_s=round(return_s or 0, 6)
        )
    with drill._lock:
        count = sum(1 for s in drill._samples if not s.probe.startswith("guard:"))
    drill._measures = Measures(
        detected=breach is not None,
        recovered=t_back is not None,
        ttd_s=(breach.start - t_inject) if breach is not None else None,
        ttd_bracket_s=(breach.start - t_inject, breach.end - t_inject) if breach else None,
        rta_s=(t_back - t_inject) if t_back is not None else None,
        failing_probes=(breach.probe,) if breach is not None else (),
        samples=count,
    )
    if breach is not None:
        value = entry.get("value")
        shown = f" (value {value})" if value is not None else ""
        held = Check(
            "slo_held",
            False,
            f"{breach.probe} breached {format_duration(breach.start - t_inject)} into the "
            f"{format_duration(hold_s)} hold: {entry.get('detail', breach.detail)}{shown}; "
            "reverted at once",
        )
    else:
        held = Check("slo_held", True, f"every probe held for {format_duration(held_s)}")
        if held_s + 1e-6 < hold_s:
            held = Check(
                "slo_held",
                False,
                f"the drill's timeout ended the hold after {format_duration(held_s)} of "
                f"{format_duration(hold_s)}",
            )
    back = Check(
        "returned_to_steady_state",
        return_s is not None,
        f"{format_duration(return_s)} after the revert"
        if return_s is not None
        else "not back to steady state before the timeout",
    )
    drill._checks.extend([held, back])
    drill._hold = {
        "duration_s": hold_s,
        "held_s": round(held_s, 6),
        "breach": {
            "probe": breach.probe,
            "at_s": round(breach.start - t_inject, 6),
            "value": entry.get("value"),
            "detail": entry.get("detail", breach.detail),
        }
        if breach is not None
        else None,
        "revert_at_s": round(t_revert - t_inject, 6),
        "return_s": round(return_s, 6) if return_s is not None else None,
    }
    drill._await_done = True

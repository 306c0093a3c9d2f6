"""Probe samples → measures and verdicts. Pure: no I/O, no clock, so every rule is testable
exactly (the data lost, from a ledger's writes, is :mod:`drillbook.dataloss`).

The definitions are :data:`DEFINITIONS` (printed in every report; ARCHITECTURE.md points here).
Two rules run through them: a measure is never optimistic (a recovery is dated when it is certain,
data lost is dated by the widest span the evidence allows), and what was not observed is reported
as not observed, never as a number.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from drillbook.durations import format_duration
from drillbook.model import Objectives, Verdict

__all__ = [
    "DEFINITIONS",
    "Check",
    "Measures",
    "Sample",
    "compute_measures",
    "judge",
]

DEFINITIONS: Mapping[str, str] = {
    "t_inject": (
        "The fault's inject call returned and verify_injected() passed. Time spent inside "
        "inject (until the fault is verified) counts toward no measure: it is the inject phase's "
        "own duration in the timeline, and a probe failing during it is not yet detection."
    ),
    "TTD": (
        "Time to detect: the first failing answer after t_inject (the end of the earliest "
        "failing probe), minus t_inject. A probe's answer is only known at its end, so a probe "
        "that waited out its timeout detected nothing until then. Bracket: [last passing "
        "probe's start, that answer]; the true moment lies in between and TTD is its upper end."
    ),
    "RTA": (
        "Recovery time actual: the moment recovery is certain, minus t_inject: the end of the "
        "first passing probe of the first run of passing probes lasting stable_for (no probe "
        "failing within stable_for of the run's first one; the latest over the probes that "
        "failed). A probe's answer is only known at its end, so a probe "
        "that started while the service hung and answered once it resumed is dated by its "
        "answer, never by its start. Bracket: [last failing probe's start, that passing probe's "
        "end]; the true moment lies in between and RTA is its upper end. A fault no probe ever "
        "saw (an outage shorter than a probe interval) has no RTA: it is reported as not "
        "observed, and fails an RTO. Time spent inside verify counts toward no measure: RTA "
        "ends when the probes hold, before verify; verify's checks decide the verdict."
    ),
    "Relapse": (
        "After recovery is confirmed, the probes keep running until the drill ends (verify "
        "included); a probe failing again is a relapse, reported with its time after t_inject. "
        "It fails the verdict unless the scenario says allow_relapse: true."
    ),
    "RPA": (
        "Recovery point actual: the data actually lost, in time: the span of acknowledged ledger "
        "writes that recovery lost, whichever side of t_inject they were acknowledged on; 0 when "
        "none was lost. The span runs from the recovery point (when the last write that "
        "survived before the oldest lost one was sent; the ledger's start if none did) to the "
        "acknowledgement of the newest lost write, so it is never 0 when a write was lost (one "
        "lost write spans at least one write interval) and losses that are not a tail count. "
        "Several separate losses are spanned as one, oldest to newest."
    ),
    "lost_writes": (
        "Acknowledged ledger writes that were gone after recovery (a write whose answer never "
        "came is in doubt and not counted). With rpo: 0 any lost write fails the drill."
    ),
    "MTTR / MTTD": "Across runs, per scenario and target: mean, p50 and p90 of RTA / TTD.",
    "TTA": (
        "Time to alert (alert drills): t_inject to the first poll of Prometheus' alerts API that "
        "saw the expected alert firing (its start). Bracket: [previous poll's start, that poll's "
        "end]; judged against the severity's target at the bracket's upper end."
    ),
    "TTN": (
        "Time to notify: t_inject to the arrival of Alertmanager's firing notification at the "
        "webhook receiver drillbook runs for the drill (stamped on arrival)."
    ),
    "TTAck": (
        "Time to acknowledge: t_inject to the on-call's acknowledgement: an answer at the prompt "
        "or by --drill-answer, or the first poll that saw a matching Alertmanager silence."
    ),
    "resolution": (
        "Recovery (t_inject + RTA) to the first poll that saw the alert no longer firing; an "
        "alert still firing alerts.resolve_timeout after recovery fails the drill."
    ),
    "MTTA": "Across runs, per scenario: mean, p50 and p90 of TTA.",
}


@dataclass(frozen=True, slots=True)
class Sample:
    """One probe observation on the monotonic clock.

    Slotted: a drill keeps every sample, 10,000 a second with 1,000 probes at 10 Hz, and a slot
    layout takes about a third of the memory of an instance dict."""

    probe: str
    start: float
    end: float
    ok: bool
    detail: str = ""


@dataclass(frozen=True)
class Measures:
    """Offsets are seconds from t_inject; ``None`` where not measured.

    ``recovered`` says the probes held for ``stable_for``; with a fault no probe saw
    (``detected`` false) it carries no ``rta_s``: the outage was not observed."""

    detected: bool = False
    recovered: bool = False
    ttd_s: float | None = None
    ttd_bracket_s: tuple[float, float] | None = None
    rta_s: float | None = None
    rta_bracket_s: tuple[float, float] | None = None
    failing_probes: tuple[str, ...] = ()
    samples: int = 0
    relapse_s: float | None = None  # start of the first failing probe after recovery held
    relapse_probe: str | None = None


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str = ""


def _recovery_of(
    samples: Sequence[Sample], after: float, stable_for: float, now: float | None
) -> tuple[Sample, float] | None:
    """First passing sample after ``after`` starting a run that lasted ``stable_for``.

    Returns the sample and the start of the failing sample before it (the bracket's low end).
    A run "lasted" when no sample of the probe failed within ``stable_for`` of its start and
    stable_for then passed: a later sample started at least that long after it (passing, or
    failing: that failure is after the run lasted, a relapse), or (``now`` given) ``now`` is past
    it. The same rule for a drill still waiting and for the final measures, so the two agree on
    when recovery held whatever the probe interval (a 60 s tick and a 300 ms stable_for too).
    """
    last_fail_start = after
    run_start: Sample | None = None
    run_low = after
    for s in samples:
        if s.start < after:
            continue
        if not s.ok:
            if run_start is not None and s.start - run_start.start >= stable_for:
                return run_start, run_low
            run_start = None
            last_fail_start = s.start
            continue
        if run_start is None:
            run_start, run_low = s, last_fail_start
        if s.start - run_start.start >= stable_for:
            return run_start, run_low
    if run_start is not None and now is not None and now - run_start.start >= stable_for:
        return run_start, run_low
    return None


def _first_failure(failures: Mapping[str, Sequence[Sample]], at_or_after: float) -> Sample | None:
    found = (next((f for f in seq if f.start >= at_or_after), None) for seq in failures.values())
    return min((f for f in found if f is not None), key=lambda f: f.start, default=None)


def compute_measures(
    samples: Iterable[Sample],
    t_inject: float,
    stable_for: float,
    *,
    now: float | None = None,
    has_fault: bool = True,
) -> Measures:
    """Measures from every sample; ``now`` lets a still-running drill ask "recovered yet?".

    ``has_fault`` false (a drill without a fault: a restore, a backup check) makes the first
    stable passing run after t_inject the recovery even though nothing failed; with a fault,
    nothing failing means the outage was not observed, and there is no RTA."""
    by_probe: dict[str, list[Sample]] = {}
    count = 0
    for s in samples:
        by_probe.setdefault(s.probe, []).append(s)
        count += 1
    for seq in by_probe.values():
        seq.sort(key=lambda s: s.start)
    failures = {
        name: fails
        for name, seq in by_probe.items()
        if (fails := [s for s in seq if s.start >= t_inject and not s.ok])
    }

    first_fail = _first_failure(failures, t_inject)
    if first_fail is None:
        best: tuple[Sample, float] | None = None
        for seq in by_probe.values():
            found = _recovery_of(seq, t_inject, stable_for, now)
            if found and (best is None or found[0].end > best[0].end):
                best = found
        if best is None:
            return Measures(samples=count)
        if has_fault:
            # Healthy, but no probe ever saw the fault: a recovery time would be made up.
            return Measures(detected=False, recovered=True, samples=count)
        sample, low = best
        return Measures(
            detected=False,
            recovered=True,
            rta_s=max(0.0, sample.end - t_inject),
            rta_bracket_s=(max(0.0, low - t_inject), max(0.0, sample.end - t_inject)),
            samples=count,
        )

    seq = by_probe[first_fail.probe]
    before = [s for s in seq if s.start < first_fail.start and s.ok]
    ttd_low = max(t_inject, before[-1].start) if before else t_inject
    # Detection is dated by the first failing answer (a probe's answer is known at its end, and
    # a probe that waited out its timeout knew nothing until then), never by a probe's start.
    first_answer = min((fails[0] for fails in failures.values()), key=lambda f: f.end)
    ttd = first_answer.end - t_inject
    ttd_bracket = (ttd_low - t_inject, ttd)
    unrecovered = Measures(
        detected=True,
        ttd_s=ttd,
        ttd_bracket_s=ttd_bracket,
        failing_probes=tuple(sorted(failures)),
        samples=count,
    )

    # Every probe that failed must hold again; a failure (of any probe) before the last of them
    # held is part of the same outage, so that probe must hold again after it. Repeat until no
    # failure falls before the moment recovery was confirmed; only failures after it are relapses.
    after = {first_fail.probe: first_fail.start}
    while True:
        runs: dict[str, tuple[Sample, float]] = {}
        for name, since in after.items():
            found = _recovery_of(by_probe[name], since, stable_for, now)
            if found is None:
                return unrecovered
            runs[name] = found
        confirmed = max(run.start + stable_for for run, _low in runs.values())
        moved = False
        for name, fails in failures.items():
            run = runs.get(name)
            floor = run[0].start if run is not None else t_inject
            late = next((f for f in fails if floor <= f.start < confirmed), None)
            if late is not None and late.start > after.get(name, float("-inf")):
                after[name] = late.start
                moved = True
        if not moved:
            break

    certain = max(run.end for run, _low in runs.values())
    low = max(low for _run, low in runs.values())
    relapse = _first_failure(failures, confirmed)
    return Measures(
        detected=True,
        recovered=True,
        ttd_s=ttd,
        ttd_bracket_s=ttd_bracket,
        rta_s=certain - t_inject,
        rta_bracket_s=(low - t_inject, certain - t_inject),
        failing_probes=tuple(sorted(failures)),
        samples=count,
        relapse_s=relapse.start - t_inject if relapse is not None else None,
        relapse_probe=relapse.probe if relapse is not None else None,
    )


def _span(seconds: float) -> str:
    """A loss's span for a reason line: a loss under a millisecond is not "0ms"."""
    return "<1ms" if 0 < seconds < 0.0005 else format_duration(seconds)


def judge(
    measures: Measures,
    objectives: Objectives,
    *,
    has_fault: bool,
    rpa_s: float | None = None,
    lost_writes: int | None = None,
    allow_relapse: bool = False,
    extra_checks: Sequence[Check] = (),
) -> tuple[Verdict, list[Check], list[str]]:
    """The verdict for a drill that ran to the end (errors and aborts are decided by the engine).

    A fault no probe saw is ``failed``, not ``error``: the drill ran as written, and what it found
    is that the probes cannot tell this outage happened, so nothing it measured can back an RTO."""
    checks: list[Check] = []
    unobserved = has_fault and not measures.detected
    if has_fault:
        checks.append(
            Check(
                "detected",
                measures.detected,
                "a probe saw the fault"
                if measures.detected
                else "no probe failed after injection: the probes cannot see this fault",
            )
        )
    if measures.recovered and measures.rta_s is None:
        recovered = "healthy, but the outage was not observed: no recovery time"
    elif measures.recovered:
        recovered = f"after {format_duration(measures.rta_s)}"
    else:
        recovered = "not within the timeout"
    checks.append(Check("recovered", measures.recovered, recovered))
    if objectives.rto_s is not None and measures.rta_s is not None:
        ok = measures.rta_s <= objectives.rto_s
        checks.append(
            Check(
                "rta<=rto",
                ok,
                f"{format_duration(measures.rta_s)} {'<=' if ok else '>'} {format_duration(objectives.rto_s)}",
            )
        )
    elif objectives.rto_s is not None and unobserved and measures.recovered:
        checks.append(
            Check(
                "rta<=rto",
                False,
                "not observed: no probe saw the outage, so no recovery time can be judged "
                f"against the RTO of {format_duration(objectives.rto_s)}",
            )
        )
    if measures.relapse_s is not None:
        when = (
            f"{measures.relapse_probe} failed again {format_duration(measures.relapse_s)} after "
            "t_inject, after recovery"
        )
        checks.append(
            Check(
                "no relapse",
                allow_relapse,
                f"{when} (allowed by the scenario)" if allow_relapse else when,
            )
        )
    if objectives.response_target_s is not None and measures.ttd_s is not None:
        ok = measures.ttd_s <= objectives.response_target_s
        checks.append(
            Check(
                "ttd<=response_target",
                ok,
                f"{format_duration(measures.ttd_s)} {'<=' if ok else '>'} "
                f"{format_duration(objectives.response_target_s)} ({objectives.severity.value})",
            )
        )
    if objectives.rpo_s is not None:
        lost = f", {lost_writes} acknowledged writes lost" if lost_writes is not None else ""
        if rpa_s is None:
            checks.append(Check("rpa<=rpo", False, "RPO set but no ledger measured RPA"))
        elif objectives.rpo_s == 0 and lost_writes:
            checks.append(
                Check("rpa<=rpo", False, f"{_span(rpa_s)} > 0s: RPO 0 allows no loss{lost}")
            )
        else:
            ok = rpa_s <= objectives.rpo_s
            checks.append(
                Check(
                    "rpa<=rpo",
                    ok,
                    f"{_span(rpa_s)} {'<=' if ok else '>'} {format_duration(objectives.rpo_s)}{lost}",
                )
            )
    checks.extend(extra_checks)
    reasons = [f"{c.name}: {c.detail}" for c in checks if not c.ok]
    return (Verdict.FAILED if reasons else Verdict.PASSED), checks, reasons

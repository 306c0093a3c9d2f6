"""Probe samples → measures and verdicts. Pure: no I/O, no clock, so every rule is testable exactly.

The definitions (printed in every report from :data:`DEFINITIONS`; ARCHITECTURE.md points here):

* t_inject: the fault's inject call returned and ``verify_injected()`` passed.
* TTD = start of the first failing probe after t_inject − t_inject.
* RTA = start of the first run of passing probes that lasts ``stable_for`` − t_inject; with several
  probes, the latest such moment over the probes that failed. Reported with its bracket
  [last failing probe's start, first passing probe's end]: a probe observes its target somewhere
  between its start and its end, so the true moment of recovery lies inside the bracket.
* RPA = t_inject − commit time of the newest write that survived recovery (from the ledger).
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
    "t_inject": "The fault's inject call returned and verify_injected() passed.",
    "TTD": "Time to detect: start of the first failing probe after t_inject, minus t_inject.",
    "RTA": (
        "Recovery time actual: start of the first run of passing probes lasting stable_for, minus "
        "t_inject (the latest over the probes that failed). Bracket: [last failing probe's start, "
        "first passing probe's end]; the true moment lies in between."
    ),
    "RPA": (
        "Recovery point actual: t_inject minus the commit time of the newest ledger write "
        "acknowledged by t_inject that survived recovery; 0 when every write acknowledged by "
        "t_inject survived (else the gap between two writes would read as data loss)."
    ),
    "lost_writes": "Acknowledged ledger writes that were gone after recovery.",
    "MTTR / MTTD": "Across runs, per scenario and target: mean, p50 and p90 of RTA / TTD.",
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
    """Offsets are seconds from t_inject; ``None`` where not measured."""

    detected: bool = False
    recovered: bool = False
    ttd_s: float | None = None
    ttd_bracket_s: tuple[float, float] | None = None
    rta_s: float | None = None
    rta_bracket_s: tuple[float, float] | None = None
    failing_probes: tuple[str, ...] = ()
    samples: int = 0


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
    A run "lasted" when a later sample of the same probe started at least ``stable_for`` after it
    with no failure in between, or (``now`` given) when nothing failed since and ``now`` is past it.
    """
    last_fail_start = after
    run_start: Sample | None = None
    run_low = after
    for s in samples:
        if s.start < after:
            continue
        if not s.ok:
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


def compute_measures(
    samples: Iterable[Sample],
    t_inject: float,
    stable_for: float,
    *,
    now: float | None = None,
) -> Measures:
    """Measures from every sample; ``now`` lets a still-running drill ask "recovered yet?"."""
    by_probe: dict[str, list[Sample]] = {}
    count = 0
    for s in samples:
        by_probe.setdefault(s.probe, []).append(s)
        count += 1
    for seq in by_probe.values():
        seq.sort(key=lambda s: s.start)

    first_fail: Sample | None = None
    failing: list[str] = []
    for name, seq in by_probe.items():
        fail = next((s for s in seq if s.start >= t_inject and not s.ok), None)
        if fail is not None:
            failing.append(name)
            if first_fail is None or fail.start < first_fail.start:
                first_fail = fail

    if first_fail is None:
        # Nothing failed: the fault was not observed. Recovery is the first stable passing run.
        best: tuple[Sample, float] | None = None
        for seq in by_probe.values():
            found = _recovery_of(seq, t_inject, stable_for, now)
            if found and (best is None or found[0].start > best[0].start):
                best = found
        if best is None:
            return Measures(samples=count)
        sample, low = best
        return Measures(
            detected=False,
            recovered=True,
            rta_s=max(0.0, sample.start - t_inject),
            rta_bracket_s=(max(0.0, low - t_inject), sample.end - t_inject),
            samples=count,
        )

    seq = by_probe[first_fail.probe]
    before = [s for s in seq if s.start < first_fail.start and s.ok]
    ttd_low = max(t_inject, before[-1].start) if before else t_inject
    ttd = first_fail.start - t_inject
    ttd_bracket = (ttd_low - t_inject, first_fail.end - t_inject)

    latest: tuple[Sample, float] | None = None
    for name in failing:
        first = next(s for s in by_probe[name] if s.start >= t_inject and not s.ok)
        found = _recovery_of(by_probe[name], first.start, stable_for, now)
        if found is None:
            return Measures(
                detected=True,
                ttd_s=ttd,
                ttd_bracket_s=ttd_bracket,
                failing_probes=tuple(sorted(failing)),
                samples=count,
            )
        if latest is None or found[0].start > latest[0].start:
            latest = found
    assert latest is not None
    sample, low = latest
    return Measures(
        detected=True,
        recovered=True,
        ttd_s=ttd,
        ttd_bracket_s=ttd_bracket,
        rta_s=sample.start - t_inject,
        rta_bracket_s=(low - t_inject, sample.end - t_inject),
        failing_probes=tuple(sorted(failing)),
        samples=count,
    )


def judge(
    measures: Measures,
    objectives: Objectives,
    *,
    has_fault: bool,
    rpa_s: float | None = None,
    lost_writes: int | None = None,
    extra_checks: Sequence[Check] = (),
) -> tuple[Verdict, list[Check], list[str]]:
    """The verdict for a drill that ran to the end (errors and aborts are decided by the engine)."""
    checks: list[Check] = []
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
    checks.append(
        Check(
            "recovered",
            measures.recovered,
            f"after {format_duration(measures.rta_s)}"
            if measures.recovered
            else "not within the timeout",
        )
    )
    if objectives.rto_s is not None and measures.rta_s is not None:
        ok = measures.rta_s <= objectives.rto_s
        checks.append(
            Check(
                "rta<=rto",
                ok,
                f"{format_duration(measures.rta_s)} {'<=' if ok else '>'} {format_duration(objectives.rto_s)}",
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
        if rpa_s is None:
            checks.append(Check("rpa<=rpo", False, "RPO set but no ledger measured RPA"))
        else:
            ok = rpa_s <= objectives.rpo_s
            lost = f", {lost_writes} acknowledged writes lost" if lost_writes is not None else ""
            checks.append(
                Check(
                    "rpa<=rpo",
                    ok,
                    f"{format_duration(rpa_s)} {'<=' if ok else '>'} {format_duration(objectives.rpo_s)}{lost}",
                )
            )
    checks.extend(extra_checks)
    reasons = [f"{c.name}: {c.detail}" for c in checks if not c.ok]
    return (Verdict.FAILED if reasons else Verdict.PASSED), checks, reasons

"""Per-control coverage: which catalog controls a run's evidence answers, and when each is due.

The catalog itself (:mod:`drillbook.controlcatalog`) sits below the scenario loader, which checks
control ids; it is re-exported here for the evidence commands.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from drillbook.controlcatalog import Control, known_controls

__all__ = ["Control", "Coverage", "EvidenceRecord", "coverage", "known_controls"]


@dataclass(frozen=True)
class EvidenceRecord:
    """One run that declared a control: when, with which verdict, and in which bundle (if any)."""

    control: str
    at: datetime
    run_id: str
    scenario: str
    verdict: str
    bundle: str | None


@dataclass(frozen=True)
class Coverage:
    """A control's status at ``now``."""

    control: Control
    last: EvidenceRecord | None
    count_12m: int
    due: datetime | None
    status: str  # "ok" | "due" | "never"


def coverage(records: Iterable[EvidenceRecord], now: datetime) -> list[Coverage]:
    """Per catalog control: latest evidence, tests in the last 12 months, and when the next is due.

    A failed drill still counts as a test (the control asks that recovery be tested; the verdict
    and its remediation are what the auditor reads), so coverage keys on evidence, not on passes.
    """
    by_control: dict[str, list[EvidenceRecord]] = {}
    for record in records:
        by_control.setdefault(record.control, []).append(record)
    year_ago = now - timedelta(days=365)
    result: list[Coverage] = []
    for control in known_controls().values():
        found = sorted(by_control.get(control.id, []), key=lambda r: r.at)
        last = found[-1] if found else None
        count = sum(1 for r in found if r.at >= year_ago)
        if last is None:
            result.append(Coverage(control, None, 0, None, "never"))
            continue
        due = last.at + timedelta(days=control.interval_days)
        result.append(Coverage(control, last, count, due, "ok" if due > now else "due"))
    return result

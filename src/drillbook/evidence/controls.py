"""The shipped control catalog and per-control coverage.

Why a data file: auditors and compliance teams edit control wording more often than code, and the
scenario validator needs the ids without importing anything heavy.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

__all__ = ["Control", "Coverage", "EvidenceRecord", "coverage", "known_controls"]


@dataclass(frozen=True)
class Control:
    """One control: what must be tested, how often, and which bundle fields answer it."""

    id: str
    framework: str
    ref: str
    title: str
    requirement: str
    frequency: str
    interval_days: int
    evidence: tuple[str, ...]
    note: str = ""


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


@cache
def _load() -> Mapping[str, Control]:
    # Beside this module, as the package ships it.
    text = Path(__file__).with_name("controls.yaml").read_text("utf-8")
    # libyaml's loader when PyYAML has it: the pure-Python one is several times slower.
    data: dict[str, Any] = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    catalog: dict[str, Control] = {}
    for entry in data["controls"]:
        control = Control(
            id=str(entry["id"]),
            framework=str(entry["framework"]),
            ref=str(entry["ref"]),
            title=str(entry["title"]),
            requirement=" ".join(str(entry["requirement"]).split()),
            frequency=str(entry["frequency"]),
            interval_days=int(entry["interval_days"]),
            evidence=tuple(str(e) for e in entry["evidence"]),
            note=str(entry.get("note", "")),
        )
        catalog[control.id] = control
    return MappingProxyType(catalog)


def known_controls() -> Mapping[str, Control]:
    """Every control id a scenario may list in ``controls:``, mapped to its definition."""
    return _load()


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

"""The shipped control catalog (SOC 2, ISO 22301, DORA, NIST 800-34 ids), read from its data file.

A leaf: scenario validation needs the ids (a mistyped control would silently lose evidence) and
must not import the evidence package above it, which reads the catalog too for coverage and
after-action reports. Why a data file: auditors and compliance teams edit control wording more
often than code.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

__all__ = ["Control", "known_controls"]


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


@cache
def _load() -> Mapping[str, Control]:
    # Shipped in the evidence package, where compliance teams look for it.
    text = (Path(__file__).parent / "evidence" / "controls.yaml").read_text("utf-8")
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

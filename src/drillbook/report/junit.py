"""Testcase properties for ``--junitxml``, so CI dashboards can chart RTA against RTO per drill."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drillbook.report.views import summarize

__all__ = ["junit_properties"]


def _num(value: float | None) -> str | None:
    return None if value is None else f"{value:.6g}"


def junit_properties(drill: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``drillbook.*`` name/value pairs; a measure that was not measured is left out, not faked."""
    s = summarize(drill)
    pairs: list[tuple[str, str | None]] = [
        ("drillbook.scenario", s.scenario),
        ("drillbook.verdict", s.verdict),
        ("drillbook.severity", s.severity or None),
        ("drillbook.targets", s.targets),
        ("drillbook.fault", s.fault_type or None),
        ("drillbook.ttd_s", _num(s.ttd_s)),
        ("drillbook.rta_s", _num(s.rta_s)),
        (
            "drillbook.rta_bracket_s",
            f"{s.rta_bracket[0]:.6g},{s.rta_bracket[1]:.6g}" if s.rta_bracket else None,
        ),
        ("drillbook.rto_s", _num(s.rto_s)),
        ("drillbook.rpa_s", _num(s.rpa_s)),
        ("drillbook.rpo_s", _num(s.rpo_s)),
        ("drillbook.lost_writes", None if s.lost_writes is None else str(s.lost_writes)),
        ("drillbook.response_target_s", _num(s.response_target_s)),
        ("drillbook.rta_within_rto", None if s.rta_ok is None else str(s.rta_ok).lower()),
        ("drillbook.rpa_within_rpo", None if s.rpa_ok is None else str(s.rpa_ok).lower()),
    ]
    measures = drill.get("measures")
    if isinstance(measures, Mapping):  # alert drills: time to alert, notify, acknowledge
        for key in ("tta_s", "ttn_s", "ttack_s"):
            value = measures.get(key)
            if isinstance(value, int | float) and not isinstance(value, bool):
                pairs.append((f"drillbook.{key}", _num(float(value))))
    return [(k, v) for k, v in pairs if v is not None]

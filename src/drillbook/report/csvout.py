"""``drills.csv``: one row per drill with raw seconds, for spreadsheets and ad-hoc analysis."""

from __future__ import annotations

import csv
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from drillbook.report.journal import seq
from drillbook.report.views import summarize

__all__ = ["CSV_COLUMNS", "write_drills_csv"]

CSV_COLUMNS = (
    "run_id",
    "drill",
    "scenario",
    "verdict",
    "severity",
    "targets",
    "backends",
    "fault",
    "started_at",
    "duration_s",
    "ttd_s",
    "rta_s",
    "rta_lo_s",
    "rta_hi_s",
    "rto_s",
    "rpa_s",
    "rpo_s",
    "lost_writes",
    "response_target_s",
    "reasons",
)


def _cell(value: object) -> object:
    return "" if value is None else value


def write_drills_csv(run_dir: Path, journal: Mapping[str, Any]) -> Path:
    path = run_dir / "drills.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(CSV_COLUMNS)
        for drill in seq(journal.get("drills")):
            if not isinstance(drill, Mapping):
                continue
            s = summarize(drill)
            writer.writerow(
                [
                    _cell(v)
                    for v in (
                        journal.get("run_id"),
                        s.id,
                        s.scenario,
                        s.verdict,
                        s.severity,
                        s.targets,
                        s.backends,
                        s.fault_type,
                        s.started_at,
                        s.duration_s,
                        s.ttd_s,
                        s.rta_s,
                        s.rta_bracket[0] if s.rta_bracket else None,
                        s.rta_bracket[1] if s.rta_bracket else None,
                        s.rto_s,
                        s.rpa_s,
                        s.rpo_s,
                        s.lost_writes,
                        s.response_target_s,
                        "; ".join(s.reasons),
                    )
                ]
            )
    return path

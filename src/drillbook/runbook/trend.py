"""Each runbook step's duration across drills: does practice make the runbook faster?

Read from the run folders' ``journal.json`` (the history database keeps drills, not their steps),
grouped by the runbook the scenario links, then by step name, oldest drill first.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["StepSeries", "step_series", "step_trend_table"]


@dataclass
class StepSeries:
    runbook: str
    step: str
    #: (drill started_at, duration in seconds or None, result), oldest first
    points: list[tuple[str, float | None, str]] = field(default_factory=list)


def _journals(reports_dir: Path) -> list[Mapping[str, Any]]:
    found: list[Mapping[str, Any]] = []
    if not reports_dir.is_dir():
        return found
    for run in sorted(reports_dir.iterdir()):
        if run.is_symlink() or not (run / "journal.json").is_file():
            continue
        try:
            data = json.loads((run / "journal.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, Mapping):
            found.append(data)
    return found


def step_series(reports_dir: Path, runbook: str | None = None) -> list[StepSeries]:
    """Every (runbook, step) seen in a drill with manual or runbook-imported steps."""
    series: dict[tuple[str, str], StepSeries] = {}
    drills = [
        d
        for j in _journals(reports_dir)
        for d in j.get("drills") or []
        if isinstance(d, Mapping) and not d.get("dry_run")
    ]
    drills.sort(key=lambda d: str(d.get("started_at") or ""))
    for d in drills:
        link = str(d.get("runbook") or "")
        steps = [s for s in d.get("steps") or [] if isinstance(s, Mapping)]
        if not link or (runbook and link.split("#")[0] != runbook.split("#")[0]):
            continue
        if not d.get("runbook_import") and not any(s.get("kind") == "manual" for s in steps):
            continue
        for s in steps:
            if s.get("kind") == "automatic":
                continue
            name = str(s.get("name"))
            entry = series.setdefault((link, name), StepSeries(link, name))
            duration = s.get("duration_s")
            result = str(s.get("result") or ("ok" if s.get("ok") else "failed"))
            entry.points.append(
                (
                    str(d.get("started_at") or ""),
                    float(duration) if isinstance(duration, int | float) else None,
                    result,
                )
            )
    return list(series.values())


def _cell(duration: float | None, result: str) -> str:
    from drillbook.report.fmt import fmt_s

    mark = "" if result in ("ok", "done") else f" {result}"
    return f"{fmt_s(duration)}{mark}"


def step_trend_table(reports_dir: Path, *, runbook: str | None = None, last: int = 6) -> str:
    """A table per runbook: one row per step, the last ``last`` drills as columns, and the
    change from the first to the latest drill shown."""
    from tabulate import tabulate

    all_series = step_series(reports_dir, runbook)
    if not all_series:
        return ""
    out: list[str] = []
    for link in dict.fromkeys(s.runbook for s in all_series):
        rows = []
        width = 0
        for s in (x for x in all_series if x.runbook == link):
            shown = s.points[-last:] if last > 0 else s.points
            width = max(width, len(shown))
            first, latest = s.points[0][1], s.points[-1][1]
            change = (
                f"{(latest - first) / first:+.0%}"
                if first and latest is not None and len(s.points) > 1
                else "-"
            )
            rows.append([s.step, len(s.points), *(_cell(d, r) for _, d, r in shown), change])
        headers = ["step", "drills", *(f"#{i + 1}" for i in range(width)), "first→latest"]
        rows = [r[:2] + r[2:-1] + [""] * (width + 3 - len(r)) + r[-1:] for r in rows]
        out.append(f"runbook {link}")
        out.append(tabulate(rows, headers=headers, tablefmt="simple", disable_numparse=True))
        out.append("")
    return "\n".join(out).rstrip() + "\n"

"""The quarterly DR drill report: the document a team brings to its quarterly review.

Every drill run in the quarter; per scenario and target the best, median and worst RTA and RPA
against the objectives; what failed and why; the findings still open (a drill that did not pass
and has not passed since); and the scenarios drilled before but not this quarter.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tabulate import tabulate

from drillbook.clock import get_clock
from drillbook.history import DrillRow, HistoryLocation, drill_rows, percentile, quarter_bounds
from drillbook.report.definitions import MEASURE_DEFINITIONS, PERCENTILE_NOTE
from drillbook.report.fmt import fmt_pct, fmt_s

__all__ = ["QuarterReport", "ScenarioQuarter", "build_quarter_report", "write_quarter_report"]


@dataclass(frozen=True)
class Spread:
    """Best, median and worst of a measure, and how many runs missed the objective."""

    best: float | None
    median: float | None
    worst: float | None
    objective: float | None
    missed: int


def _spread(values: Sequence[float | None], objective: float | None) -> Spread:
    measured = sorted(v for v in values if v is not None)
    return Spread(
        best=measured[0] if measured else None,
        median=percentile(measured, 50),
        worst=measured[-1] if measured else None,
        objective=objective,
        missed=sum(1 for v in measured if objective is not None and v > objective),
    )


@dataclass(frozen=True)
class ScenarioQuarter:
    """One scenario on one target in the quarter."""

    scenario: str
    target: str
    runs: int
    passed: int
    rta: Spread
    rpa: Spread
    unrecovered: int

    @property
    def pass_rate(self) -> float:
        return self.passed / self.runs if self.runs else 0.0


@dataclass(frozen=True)
class QuarterReport:
    """Everything the quarterly report shows."""

    quarter: str
    start: str
    end: str
    drills: list[DrillRow]
    scenarios: list[ScenarioQuarter]
    failures: list[DrillRow]
    open_findings: list[DrillRow]
    not_drilled: list[tuple[str, str, str]] = field(default_factory=list)  # scenario, target, last


def build_quarter_report(db_path: HistoryLocation, quarter: str) -> QuarterReport:
    """Read the quarter and the history before it."""
    start, end = quarter_bounds(quarter)
    quarter = quarter.strip().upper()
    rows = drill_rows(db_path, with_details=True)
    in_q = [r for r in rows if start <= r.started_at < end]
    groups: dict[tuple[str, str], list[DrillRow]] = {}
    for r in in_q:
        groups.setdefault((r.scenario, r.target), []).append(r)
    scenarios = []
    for (scenario, target), group in sorted(groups.items()):
        rto = next((r.rto_s for r in reversed(group) if r.rto_s is not None), None)
        rpo = next((r.rpo_s for r in reversed(group) if r.rpo_s is not None), None)
        scenarios.append(
            ScenarioQuarter(
                scenario=scenario,
                target=target,
                runs=len(group),
                passed=sum(r.verdict == "passed" for r in group),
                rta=_spread([r.rta_s for r in group], rto),
                rpa=_spread([r.rpa_s for r in group], rpo),
                unrecovered=sum(r.rta_s is None for r in group),
            )
        )
    failures = sorted((r for r in in_q if r.verdict != "passed"), key=lambda r: r.started_at)
    # A finding stays open until the same scenario on the same target passes later, by the end of
    # the quarter (the report states the quarter as it closed, whenever it is rendered).
    last_pass: dict[tuple[str, str], str] = {}
    for r in rows:
        if r.verdict == "passed" and r.started_at < end:
            key = (r.scenario, r.target)
            last_pass[key] = max(last_pass.get(key, ""), r.started_at)
    open_findings = [
        r for r in failures if last_pass.get((r.scenario, r.target), "") < r.started_at
    ]
    seen_before: dict[tuple[str, str], str] = {}
    for r in rows:
        if r.started_at < start:
            seen_before[(r.scenario, r.target)] = r.started_at
    not_drilled = sorted(
        (s, t, last) for (s, t), last in seen_before.items() if (s, t) not in groups
    )
    return QuarterReport(
        quarter,
        start,
        end,
        sorted(in_q, key=lambda r: r.started_at),
        scenarios,
        failures,
        open_findings,
        not_drilled,
    )


def _vs(spread: Spread) -> list[str]:
    return [
        fmt_s(spread.best),
        fmt_s(spread.median),
        fmt_s(spread.worst),
        fmt_s(spread.objective),
        str(spread.missed),
    ]


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_quarter_md(report: QuarterReport) -> str:
    """The Markdown twin of the HTML report (for a wiki page or a pull request)."""
    lines = [
        f"# DR drill report {report.quarter}",
        "",
        f"{len(report.drills)} drills from {report.start} to {report.end} (exclusive); "
        f"{sum(1 for d in report.drills if d.verdict == 'passed')} passed, "
        f"{len(report.failures)} did not pass, {len(report.open_findings)} findings open.",
        "",
        "## Per scenario",
        "",
        _means_line(report.drills),
        "",
    ]
    if report.scenarios:
        lines.append(
            tabulate(
                [
                    [s.scenario, s.target, s.runs, fmt_pct(s.pass_rate), *_vs(s.rta), *_vs(s.rpa)]
                    for s in report.scenarios
                ],
                headers=[
                    "scenario",
                    "target",
                    "runs",
                    "pass",
                    "RTA best",
                    "RTA median",
                    "RTA worst",
                    "RTO",
                    "over RTO",
                    "RPA best",
                    "RPA median",
                    "RPA worst",
                    "RPO",
                    "over RPO",
                ],
                tablefmt="github",
                disable_numparse=True,
            )
        )
    else:
        lines.append("No drills ran this quarter.")
    lines += ["", "## What failed and why", ""]
    if report.failures:
        for r in report.failures:
            why = "; ".join(r.reasons) or "no reason recorded"
            lines.append(
                f"- {r.started_at[:16].replace('T', ' ')} **{_md_cell(r.scenario)}** on "
                f"{_md_cell(r.target)} ({r.verdict}, run `{r.run_id}`): {_md_cell(why)}"
            )
    else:
        lines.append("Every drill passed.")
    lines += ["", "## Open findings", ""]
    if report.open_findings:
        lines.append(
            tabulate(
                [
                    [
                        r.scenario,
                        r.target,
                        r.started_at[:10],
                        r.verdict,
                        _md_cell("; ".join(r.reasons)),
                    ]
                    for r in report.open_findings
                ],
                headers=["scenario", "target", "since", "verdict", "why"],
                tablefmt="github",
                disable_numparse=True,
            )
        )
    else:
        lines.append("None: every scenario that failed has passed since.")
    if report.not_drilled:
        lines += ["", "## Drilled before, not this quarter", ""]
        lines += [f"- {s} on {t} (last {last[:10]})" for s, t, last in report.not_drilled]
    lines += ["", "## Every drill", ""]
    lines.append(
        tabulate(
            [
                [
                    r.started_at[:16].replace("T", " "),
                    r.scenario,
                    r.target,
                    r.verdict,
                    fmt_s(r.ttd_s),
                    fmt_s(r.tta_s),
                    fmt_s(r.rta_s),
                    fmt_s(r.rto_s),
                    fmt_s(r.rpa_s),
                    fmt_s(r.rpo_s),
                    r.run_id,
                ]
                for r in report.drills
            ],
            headers=[
                "started (UTC)",
                "scenario",
                "target",
                "verdict",
                "TTD",
                "TTA",
                "RTA",
                "RTO",
                "RPA",
                "RPO",
                "run",
            ],
            tablefmt="github",
            disable_numparse=True,
        )
        if report.drills
        else "None."
    )
    lines += ["", "## Definitions", ""]
    lines += [f"- **{term}**: {text}" for term, text in MEASURE_DEFINITIONS]
    lines += ["", f"_{PERCENTILE_NOTE}_", ""]
    return "\n".join(lines)


def _means_line(drills: Sequence[DrillRow]) -> str:
    """MTTD, MTTA and MTTR over the quarter, each with p50/p90 (means alone mislead)."""
    from drillbook.history import stats

    parts = []
    for label, values in (
        ("MTTD", [d.ttd_s for d in drills]),
        ("MTTA", [d.tta_s for d in drills]),
        ("MTTR", [d.rta_s for d in drills]),
    ):
        st = stats(values)
        parts.append(
            f"{label} {fmt_s(st.mean)} (p50 {fmt_s(st.p50)}, p90 {fmt_s(st.p90)}, n={st.n})"
        )
    return "; ".join(parts) + "."


def render_quarter_html(report: QuarterReport) -> str:
    from drillbook.report.html import environment

    return (
        environment()
        .get_template("quarter.html.j2")
        .render(
            r=report,
            passed=sum(1 for d in report.drills if d.verdict == "passed"),
            means=_means_line(report.drills),
            generated=get_clock().wall().strftime("%Y-%m-%d %H:%M UTC"),
            definitions=MEASURE_DEFINITIONS,
            percentile_note=PERCENTILE_NOTE,
        )
    )


def write_quarter_report(db_path: HistoryLocation, quarter: str, out_dir: Path) -> list[Path]:
    """Write ``quarterly-<Q>.html`` and ``quarterly-<Q>.md`` into ``out_dir``."""
    report = build_quarter_report(db_path, quarter)
    out_dir.mkdir(parents=True, exist_ok=True)
    html = out_dir / f"quarterly-{report.quarter}.html"
    md = out_dir / f"quarterly-{report.quarter}.md"
    html.write_text(render_quarter_html(report), encoding="utf-8")
    md.write_text(render_quarter_md(report), encoding="utf-8")
    return [html, md]

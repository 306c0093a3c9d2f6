"""``drillbook trend``: MTTR/MTTD per scenario, target and quarter, in a terminal and trend.html.

The question it answers is the quarterly review's: are we recovering faster or slower than last
quarter, and inside our RTOs? Each row shows the mean beside p50/p90, and the regression flag
fires when the latest RTA is above the previous quarter's p90 or above the RTO.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tabulate import tabulate

from drillbook.clock import get_clock
from drillbook.history import TrendSeries
from drillbook.report.definitions import MEASURE_DEFINITIONS, PERCENTILE_NOTE
from drillbook.report.fmt import fmt_pct, fmt_s
from drillbook.report.svg import trend_chart

__all__ = ["TREND_HEADERS", "render_trend_html", "trend_rows", "trend_table", "write_trend_html"]

TREND_HEADERS = [
    "scenario",
    "target",
    "quarter",
    "runs",
    "pass",
    "MTTD",
    "TTD p50",
    "TTD p90",
    "MTTA",
    "TTA p50",
    "TTA p90",
    "MTTR",
    "RTA p50",
    "RTA p90",
    "RTO",
    "over RTO",
    "latest RTA",
    "flag",
]


def trend_rows(series: Sequence[TrendSeries], last_quarters: int = 0) -> list[list[str]]:
    """One row per scenario, target and quarter; latest RTA and the flag on the latest quarter.

    ``last_quarters`` > 0 shows only that many recent quarters per series (the flag and the
    statistics still come from all of them).
    """
    rows = []
    for s in series:
        shown = s.quarters[-last_quarters:] if last_quarters > 0 else s.quarters
        for i, q in enumerate(shown):
            last = i == len(shown) - 1
            over = f"{q.over_rto}" + (
                f" (+{q.not_recovered} unrecovered)" if q.not_recovered else ""
            )
            rows.append(
                [
                    s.scenario if i == 0 else "",
                    s.target if i == 0 else "",
                    q.quarter,
                    str(q.count),
                    fmt_pct(q.pass_rate),
                    fmt_s(q.mttd.mean),
                    fmt_s(q.mttd.p50),
                    fmt_s(q.mttd.p90),
                    fmt_s(q.mtta.mean),
                    fmt_s(q.mtta.p50),
                    fmt_s(q.mtta.p90),
                    fmt_s(q.mttr.mean),
                    fmt_s(q.mttr.p50),
                    fmt_s(q.mttr.p90),
                    fmt_s(q.rto_s),
                    over,
                    fmt_s(s.latest_rta_s) if last else "",
                    ("REGRESSION" if s.regression else "ok") if last else "",
                ]
            )
    return rows


def trend_table(series: Sequence[TrendSeries], last_quarters: int = 0) -> str:
    """The terminal table, plus one line per regression saying why."""
    if not series:
        return "No recorded drills match."
    text = tabulate(
        trend_rows(series, last_quarters),
        headers=TREND_HEADERS,
        tablefmt="simple",
        disable_numparse=True,
    )
    flagged = [s for s in series if s.regression]
    if flagged:
        text += "\n\nRegressions:\n" + "\n".join(
            f"  {s.scenario} on {s.target}: {s.regression_reason}" for s in flagged
        )
    return text


def render_trend_html(series: Sequence[TrendSeries], *, title_note: str = "") -> str:
    from drillbook.report.html import environment

    cards = []
    for s in series:
        chart = trend_chart(
            s.points, [(q.quarter, q.mttr.p50, q.mttr.p90) for q in s.quarters], s.rto_s
        )
        cards.append({"s": s, "chart": chart})
    return (
        environment()
        .get_template("trend.html.j2")
        .render(
            cards=cards,
            headers=TREND_HEADERS,
            generated=get_clock().wall().strftime("%Y-%m-%d %H:%M UTC"),
            note=title_note,
            total_runs=sum(s.count for s in series),
            regressions=[s for s in series if s.regression],
            definitions=MEASURE_DEFINITIONS,
            percentile_note=PERCENTILE_NOTE,
        )
    )


def write_trend_html(path: Path, series: Sequence[TrendSeries], *, title_note: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_trend_html(series, title_note=title_note), encoding="utf-8")
    return path

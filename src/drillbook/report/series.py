"""Probe values over time (an SLO probe's error rate, a latency percentile) as small SVG series.

A binary timeline shows when a probe failed; a degradation drill also asks by how much. Probes
that report a numeric ``value`` get one chart each: the value over seconds from t_inject, passing
looks green and failing ones red, t_inject and (for hold drills) the breach marked.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drillbook.report.journal import inject_offset, mapping, num, seq
from drillbook.report.svg import Chart, nice_ticks

__all__ = ["value_series"]


def _label(v: float) -> str:
    return f"{v:.3g}"


def value_series(drill: Mapping[str, Any], width: float = 1000.0) -> list[tuple[str, Chart]]:
    """(probe name, chart) for every probe that reported a numeric value."""
    shift = inject_offset(drill)
    series: dict[str, list[tuple[float, float, bool]]] = {}
    for e in seq(drill.get("timeline")):
        if not isinstance(e, Mapping) or e.get("kind") != "probe":
            continue
        off, value = num(e.get("offset_s")), num(e.get("value"))
        if off is None or value is None:
            continue
        series.setdefault(str(e.get("probe") or "probe"), []).append(
            (off - shift, value, e.get("ok") is True)
        )
    breach = mapping(mapping(drill.get("hold")).get("breach"))
    charts: list[tuple[str, Chart]] = []
    for name, points in series.items():
        charts.append((name, _chart(name, points, breach, width)))
    return charts


def _chart(
    name: str,
    points: list[tuple[float, float, bool]],
    breach: Mapping[str, Any],
    width: float,
) -> Chart:
    height, left, right, top, bottom = 150.0, 60.0, 20.0, 12.0, 30.0
    plot_w, plot_h = width - left - right, height - top - bottom
    xs = [p[0] for p in points] + [0.0]
    lo, hi = min(xs), max(xs)
    if hi - lo < 0.001:
        hi = lo + 1.0
    ymax = max([p[1] for p in points] + [1e-9]) * 1.15
    chart = Chart(width, height, label=f"values of {name}")

    def x(t: float) -> float:
        return left + (t - lo) / (hi - lo) * plot_w

    def y(v: float) -> float:
        return top + plot_h - v / ymax * plot_h

    for tick in nice_ticks(0.0, ymax, 4):
        chart.line(left, y(tick), left + plot_w, y(tick), "grid")
        chart.text(left - 6, y(tick) + 4, _label(tick), "tick", "end")
    for tick in nice_ticks(lo, hi):
        chart.text(x(tick), top + plot_h + 16, f"{tick:g}", "tick", "middle")
    chart.text(left + plot_w, top + plot_h + 28, "seconds from t_inject", "axis-note", "end")
    chart.rect(left, top, plot_w, plot_h, "frame")
    chart.line(x(0.0), top, x(0.0), top + plot_h, "m-rto", "t_inject")
    line = "".join(
        f"{'M' if i == 0 else 'L'}{x(t):.1f} {y(v):.1f}" for i, (t, v, _) in enumerate(points)
    )
    chart.path(line, "q-p50", f"{name} value")
    ok_d = "".join(f"M{x(t):.1f} {y(v):.1f}h0" for t, v, ok in points if ok)
    bad_d = "".join(f"M{x(t):.1f} {y(v):.1f}h0" for t, v, ok in points if not ok)
    if ok_d:
        chart.path(ok_d, "dots-ok", "passing looks")
    if bad_d:
        chart.path(bad_d, "dots-bad", "failing looks")
    at = num(breach.get("at_s"))
    if breach.get("probe") == name and at is not None:
        chart.line(x(at), top, x(at), top + plot_h, "m-rto", f"SLO breach at {at:.3f}s")
        chart.text(x(at) + 4, top + 12, "breach", "m-rto-label")
    return chart

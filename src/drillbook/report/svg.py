"""Chart geometry for the HTML reports, as plain shape records the templates draw as inline SVG.

Geometry lives here (testable, no markup); the templates only turn shapes into elements, with
Jinja's autoescaping on every label, so a probe detail or step name can never inject markup.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from drillbook.report.fmt import fmt_s
from drillbook.report.journal import inject_offset, mapping, num, seq
from drillbook.report.views import slow_steps

__all__ = ["Chart", "measure_bar", "nice_ticks", "timeline_chart", "trend_chart"]

Shape = dict[str, Any]

_PHASE_ORDER = ("steady_state", "inject", "detect", "recover", "verify", "revert")


@dataclass
class Chart:
    """One SVG: its size and shapes, drawn in order."""

    width: float
    height: float
    shapes: list[Shape] = field(default_factory=list)
    label: str = ""

    def rect(self, x: float, y: float, w: float, h: float, cls: str, title: str = "") -> None:
        self.shapes.append(
            {
                "el": "rect",
                "x": _r(x),
                "y": _r(y),
                "w": _r(max(w, 0.0)),
                "h": _r(h),
                "cls": cls,
                "title": title,
            }
        )

    def line(self, x1: float, y1: float, x2: float, y2: float, cls: str, title: str = "") -> None:
        self.shapes.append(
            {
                "el": "line",
                "x1": _r(x1),
                "y1": _r(y1),
                "x2": _r(x2),
                "y2": _r(y2),
                "cls": cls,
                "title": title,
            }
        )

    def text(self, x: float, y: float, text: str, cls: str = "", anchor: str = "start") -> None:
        self.shapes.append(
            {"el": "text", "x": _r(x), "y": _r(y), "text": text, "cls": cls, "anchor": anchor}
        )

    def circle(self, x: float, y: float, r: float, cls: str, title: str = "") -> None:
        self.shapes.append(
            {"el": "circle", "x": _r(x), "y": _r(y), "r": _r(r), "cls": cls, "title": title}
        )

    def path(self, d: str, cls: str, title: str = "") -> None:
        self.shapes.append({"el": "path", "d": d, "cls": cls, "title": title})


def _r(v: float) -> float:
    return round(v, 1)


def nice_ticks(lo: float, hi: float, count: int = 6) -> list[float]:
    """Round tick values (1, 2, 5 × 10^n steps) covering [lo, hi]."""
    span = hi - lo
    if span <= 0:
        return [lo]
    raw = span / max(count, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step) * step
    ticks = []
    v = first
    while v <= hi + step * 1e-9:
        ticks.append(round(v, 10))
        v += step
    return ticks


def _tick_label(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 60:
        return fmt_s(v)
    return f"{v:g}s"


def timeline_chart(drill: Mapping[str, Any], width: float = 1000.0) -> Chart:
    """Phases, probe samples, recovery steps and the measured moments on one time axis.

    The axis is seconds from t_inject (the measures' origin); phases and events are stored as
    offsets from the drill's start and shifted here.
    """
    shift = inject_offset(drill)
    measures = mapping(drill.get("measures"))
    objectives = mapping(drill.get("objectives"))
    phases = [p for p in seq(drill.get("phases")) if isinstance(p, Mapping)]
    events = [e for e in seq(drill.get("timeline")) if isinstance(e, Mapping)]
    steps = [s for s in seq(drill.get("steps")) if isinstance(s, Mapping)]

    probes: dict[str, list[tuple[float, bool, str]]] = {}
    for e in events:
        if e.get("kind") == "probe":
            off = num(e.get("offset_s"))
            if off is not None:
                detail = str(e.get("detail") or "")
                probes.setdefault(str(e.get("probe") or "probe"), []).append(
                    (off - shift, e.get("ok") is True, detail)
                )

    points: list[float] = [0.0]
    for p in phases:
        points += [v - shift for v in (num(p.get("start_s")), num(p.get("end_s"))) if v is not None]
    for marks in probes.values():
        points += [m[0] for m in marks]
    for s in steps:
        start, dur = num(s.get("start_s")), num(s.get("duration_s")) or 0.0
        if start is not None:
            points += [start - shift, start - shift + dur]
    for key in ("ttd_s", "rta_s"):
        v = num(measures.get(key))
        if v is not None:
            points.append(v)
    alert_marks = _alert_marks(drill)
    points += [t for t, _, _, _ in alert_marks]
    duration = num(drill.get("duration_s"))
    if duration is not None:
        points.append(duration - shift)
    lo, hi = min(points), max(points)
    rto = num(objectives.get("rto_s"))
    # Show the RTO deadline on the axis when it is near enough not to squash the drill.
    rto_on_axis = rto is not None and rto <= max(hi, 0.001) * 2.5
    if rto_on_axis and rto is not None:
        hi = max(hi, rto)
    if hi - lo < 0.001:
        hi = lo + 1.0
    pad = (hi - lo) * 0.02
    lo, hi = lo - pad, hi + pad

    left, right = 120.0, 20.0
    plot_w = width - left - right
    lane_h, gap = 22.0, 8.0
    lanes = ["phases", *probes.keys()] + (["steps"] if steps else [])
    # An alert drill's firing/notified/acked marks need a third row of labels above the lanes.
    top = 53.0 if alert_marks else 40.0
    height = top + len(lanes) * (lane_h + gap) + 34.0
    chart = Chart(width, height, label="timeline")

    def x(t: float) -> float:
        return left + (t - lo) / (hi - lo) * plot_w

    bottom = top + len(lanes) * (lane_h + gap)
    for tick in nice_ticks(lo, hi):
        chart.line(x(tick), top - 4, x(tick), bottom, "grid")
        chart.text(x(tick), bottom + 16, _tick_label(tick), "tick", "middle")
    chart.text(left + plot_w, bottom + 30, "seconds from t_inject", "axis-note", "end")

    # Bracket of the recovery moment, behind everything.
    bracket = measures.get("rta_bracket_s")
    if isinstance(bracket, list) and len(bracket) == 2:
        b0, b1 = num(bracket[0]), num(bracket[1])
        if b0 is not None and b1 is not None:
            chart.rect(
                x(b0),
                top - 4,
                x(b1) - x(b0),
                bottom - top + 4,
                "bracket",
                f"RTA bracket {fmt_s(b0)}–{fmt_s(b1)}",
            )

    for i, name in enumerate(lanes):
        y = top + i * (lane_h + gap)
        chart.text(left - 8, y + lane_h * 0.68, name, "lane", "end")
        chart.rect(left, y, plot_w, lane_h, "lane-bg")
        if name == "phases" and i == 0:
            for p in phases:
                p0, p1 = num(p.get("start_s")), num(p.get("end_s"))
                if p0 is None:
                    continue
                ps = p0 - shift
                pe = (p1 - shift) if p1 is not None else ps
                phase = str(p.get("phase") or "")
                cls = "ph-" + phase if phase in _PHASE_ORDER else "ph-other"
                chart.rect(
                    x(ps),
                    y,
                    max(x(pe) - x(ps), 1.5),
                    lane_h,
                    cls,
                    f"{phase}: {fmt_s(ps)} → {fmt_s(pe)} ({fmt_s(pe - ps)})",
                )
                if x(pe) - x(ps) > 8 * len(phase) * 0.75:
                    chart.text(
                        (x(ps) + x(pe)) / 2,
                        y + lane_h * 0.68,
                        phase.replace("_", " "),
                        "ph-label",
                        "middle",
                    )
        elif name == "steps" and i == len(lanes) - 1 and steps:
            slow = [v.slow for v in slow_steps(drill)]
            for s, is_slow in zip(steps, slow, strict=False):
                start, dur = num(s.get("start_s")), num(s.get("duration_s")) or 0.0
                if start is None:
                    continue
                start -= shift
                ok = s.get("ok") is not False
                label = str(s.get("name") or s.get("type") or s.get("kind") or "step")
                chart.rect(
                    x(start),
                    y + 3,
                    max(x(start + dur) - x(start), 2.0),
                    lane_h - 6,
                    ("step-slow" if is_slow else "step-ok") if ok else "step-bad",
                    f"{label}: {fmt_s(dur)}" + (" (slow)" if is_slow else ""),
                )
                if x(start + dur) - x(start) > 7 * len(label):
                    chart.text(x(start) + 4, y + lane_h * 0.68, label, "step-label")
        else:
            marks = probes.get(name, [])
            for t, ok, detail in _thin(marks):
                chart.rect(
                    x(t) - 1.5,
                    y + 4,
                    3,
                    lane_h - 8,
                    "probe-ok" if ok else "probe-bad",
                    f"{name} {'ok' if ok else 'FAIL'} at {fmt_s(t)}"
                    + (f": {detail}" if detail else ""),
                )

    labels: list[tuple[float, str, str]] = []  # (x, text, class) drawn above the lanes
    chart.line(x(0), top - 6, x(0), bottom, "m-inject", "t_inject")
    labels.append((x(0), "inject", "m-label"))
    ttd = num(measures.get("ttd_s"))
    if ttd is not None:
        chart.line(x(ttd), top - 6, x(ttd), bottom, "m-detect", f"detected at {fmt_s(ttd)}")
        labels.append((x(ttd), f"detect {fmt_s(ttd)}", "m-label"))
    for t, cls, label, title in alert_marks:
        chart.line(x(t), top - 6, x(t), bottom, cls, title)
        labels.append((x(t), label, "m-label"))
    rta = num(measures.get("rta_s"))
    if rta is not None:
        chart.line(x(rta), top - 6, x(rta), bottom, "m-recovered", f"recovered (RTA) {fmt_s(rta)}")
        labels.append((x(rta), f"recovered {fmt_s(rta)}", "m-label"))
    if rto is not None:
        if rto_on_axis:
            chart.line(x(rto), top - 6, x(rto), bottom, "m-rto", f"RTO deadline {fmt_s(rto)}")
            labels.append((x(rto), f"RTO {fmt_s(rto)}", "m-rto-label"))
        else:
            labels.append((left + plot_w, f"RTO {fmt_s(rto)} →", "m-rto-label"))
    _place_labels(chart, labels, top - 10, left + plot_w, rows=3 if alert_marks else 2)
    return chart


def _alert_marks(drill: Mapping[str, Any]) -> list[tuple[float, str, str, str]]:
    """An alert drill's moments, as (offset from t_inject, class, label, tooltip): the expected
    alert firing (TTA), its notification (TTN) and acknowledgement (TTAck); a must-stay-silent
    alert that fired is drawn too."""
    marks: list[tuple[float, str, str, str]] = []
    for a in drill.get("alerts") or []:
        if not isinstance(a, Mapping):
            continue
        name = str(a.get("name") or "alert")
        for key, cls, word in (
            ("tta_s", "m-alert", "firing"),
            ("ttn_s", "m-notify", "notified"),
            ("ttack_s", "m-ack", "acked"),
        ):
            t = num(a.get(key))
            if t is None or (a.get("silent") and key != "tta_s"):
                continue
            what = "fired (must stay silent)" if a.get("silent") else word
            marks.append(
                (
                    t,
                    "m-silent" if a.get("silent") else cls,
                    f"{word} {fmt_s(t)}",
                    f"{name} {what} at {fmt_s(t)}",
                )
            )
    return marks


def _place_labels(
    chart: Chart, labels: list[tuple[float, str, str]], y: float, x_max: float, rows: int = 2
) -> None:
    """Marker labels above the lanes on ``rows`` rows, so close moments (inject, detect) never
    clash: each goes on the first row with room, else the last."""
    row_end = [-1e9] * rows
    for x, text, cls in sorted(labels):
        w = 6.3 * len(text)
        start = min(x - 2, x_max - w)
        row = next((r for r in range(rows) if start > row_end[r] + 4), rows - 1)
        chart.text(start, y - 13 * row, text, cls)
        row_end[row] = start + w


def _thin(
    marks: Sequence[tuple[float, bool, str]], limit: int = 1500
) -> list[tuple[float, bool, str]]:
    """Keep every state change and an even spread of the rest, so long drills stay light."""
    if len(marks) <= limit:
        return list(marks)
    step = math.ceil(len(marks) / limit)
    return [m for i, m in enumerate(marks) if i % step == 0 or marks[i - 1][1] != m[1]]


def measure_bar(
    name: str,
    actual: float | None,
    objective: float | None,
    bracket: object = None,
    width: float = 640.0,
) -> Chart:
    """One measure against its objective: the bar, the objective line and the bracket whisker."""
    chart = Chart(width, 34.0, label=name)
    left, right, y, h = 4.0, 70.0, 8.0, 14.0
    plot_w = width - left - right
    lo_hi: tuple[float, float] | None = None
    if isinstance(bracket, list | tuple) and len(bracket) == 2:
        b0, b1 = num(bracket[0]), num(bracket[1])
        if b0 is not None and b1 is not None:
            lo_hi = (b0, b1)
    top_value = max(
        v for v in (actual, objective, lo_hi[1] if lo_hi else None, 0.001) if v is not None
    )
    scale = top_value * 1.1

    def x(v: float) -> float:
        return left + max(v, 0.0) / scale * plot_w

    chart.rect(left, y, plot_w, h, "bar-bg")
    if actual is not None:
        over = objective is not None and actual > objective
        chart.rect(
            left,
            y,
            max(x(actual) - left, 1.5),
            h,
            "bar-bad" if over else "bar-ok",
            f"{name} {fmt_s(actual)}",
        )
    if lo_hi is not None:
        b0, b1 = lo_hi
        mid = y + h / 2
        chart.line(x(b0), mid, x(b1), mid, "whisker", f"bracket {fmt_s(b0)}–{fmt_s(b1)}")
        chart.line(x(b0), mid - 5, x(b0), mid + 5, "whisker")
        chart.line(x(b1), mid - 5, x(b1), mid + 5, "whisker")
    if objective is not None:
        chart.line(
            x(objective),
            y - 5,
            x(objective),
            y + h + 5,
            "objective",
            f"objective {fmt_s(objective)}",
        )
        chart.text(x(objective) + 4, y + h + 9, fmt_s(objective), "obj-label")
    value = fmt_s(actual) if actual is not None else "not measured"
    chart.text(width - 2, y + h - 2, value, "bar-value", "end")
    return chart


def trend_chart(
    points: Sequence[tuple[str, float | None, str]],
    quarters: Sequence[tuple[str, float | None, float | None]],
    rto: float | None,
    width: float = 640.0,
    height: float = 170.0,
) -> Chart:
    """RTA of every run over time (failed runs red), quarterly p50/p90 steps, and the RTO line.

    ``points`` are (started_at, rta_s, verdict) oldest first; ``quarters`` are (quarter, p50, p90).
    The x axis is run order, not wall time, so a burst of runs stays readable.
    """
    chart = Chart(width, height, label="trend")
    left, right, top, bottom = 52.0, 12.0, 12.0, 26.0
    plot_w, plot_h = width - left - right, height - top - bottom
    values = [v for _, v, _ in points if v is not None]
    ymax = max([*values, rto or 0.0, 0.001]) * 1.12
    n = max(len(points), 1)

    def x(i: float) -> float:
        return left + (i + 0.5) / n * plot_w

    def y(v: float) -> float:
        return top + plot_h - v / ymax * plot_h

    for tick in nice_ticks(0.0, ymax, 4):
        chart.line(left, y(tick), left + plot_w, y(tick), "grid")
        chart.text(left - 6, y(tick) + 4, _tick_label(tick), "tick", "end")
    chart.rect(left, top, plot_w, plot_h, "frame")
    # Quarter bands: boundaries and p50/p90 steps across each quarter's runs.
    qname = [_quarter(s) for s, _, _ in points]
    qstats = {q: (p50, p90) for q, p50, p90 in quarters}
    start = 0
    for i in range(1, len(points) + 1):
        if i == len(points) or qname[i] != qname[start]:
            q = qname[start]
            x0, x1 = left + start / n * plot_w, left + i / n * plot_w
            if start:
                chart.line(x0, top, x0, top + plot_h, "q-sep")
            chart.text((x0 + x1) / 2, top + plot_h + 16, q, "tick", "middle")
            p50, p90 = qstats.get(q, (None, None))
            if p90 is not None:
                chart.line(x0, y(p90), x1, y(p90), "q-p90", f"{q} p90 {fmt_s(p90)}")
            if p50 is not None:
                chart.line(x0, y(p50), x1, y(p50), "q-p50", f"{q} p50 {fmt_s(p50)}")
            start = i
    if rto is not None:
        chart.line(left, y(rto), left + plot_w, y(rto), "m-rto", f"RTO {fmt_s(rto)}")
        chart.text(left + plot_w - 4, y(rto) - 4, f"RTO {fmt_s(rto)}", "m-rto-label", "end")
    # Runs as one path per class: thousands of marks stay a small file.
    ok_d: list[str] = []
    bad_d: list[str] = []
    x_step, x0 = plot_w / n, left + 0.5 * plot_w / n
    y_scale, y_base, floor = plot_h / ymax, top + plot_h, top + plot_h - 3
    for i, (_when, v, verdict) in enumerate(points):
        mark = f"M{x0 + i * x_step:.1f} {floor if v is None else y_base - v * y_scale:.1f}h0"
        (ok_d if v is not None and verdict == "passed" else bad_d).append(mark)
    if ok_d:
        chart.path("".join(ok_d), "dots-ok", "passed runs")
    if bad_d:
        chart.path("".join(bad_d), "dots-bad", "runs that did not pass")
    if points:
        last_v = points[-1][1]
        cy = y(last_v) if last_v is not None else top + plot_h - 3
        chart.circle(x(len(points) - 1), cy, 5.5, "latest", f"latest: {fmt_s(last_v)}")
    return chart


def _quarter(started_at: str) -> str:
    try:
        return f"{started_at[:4]}Q{(int(started_at[5:7]) - 1) // 3 + 1}"
    except ValueError:
        return "?"

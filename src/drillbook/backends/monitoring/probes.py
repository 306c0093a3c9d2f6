"""Probes on Prometheus and Alertmanager.

* ``prometheus``: an instant PromQL query judged by a comparator and a threshold (the Litmus
  promProbe model). Every sample of the result must pass; an empty result fails unless
  ``empty: ok``. The value is reported (``ProbeResult.value`` and the detail), so it serves as
  a steady-state, recovery or SLO probe.
* ``alert``: alert NAME (with label matchers) is firing, or is not (``expect``).
* ``alerts.quiet``: the guard: no firing alert matches ``labels`` (default severity=critical)
  other than those the drill ``expected``; a firing one fails it, and a failing guard aborts the
  drill and reverts (the stop condition AWS FIS takes from CloudWatch alarms).

A probe never raises for an unhealthy target: an unreachable Prometheus is a not-ok result.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from typing import Any

from drillbook.backends.base import Context, Probe
from drillbook.backends.monitoring.api import (
    Alert,
    AlertmanagerClient,
    MonitoringError,
    PrometheusClient,
    settings_from,
)
from drillbook.clock import get_clock
from drillbook.model import ProbeResult

__all__ = ["COMPARATORS", "AlertProbe", "PrometheusProbe", "QuietProbe"]

COMPARATORS: Mapping[str, Callable[[float, float], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def _fmt(v: float) -> str:
    return f"{v:.6g}"


class PrometheusProbe(Probe):
    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.client = PrometheusClient(settings_from(ctx.settings))
        self.query = str(ctx.param("query"))
        self.comparator = str(ctx.param("comparator", ">="))
        self.threshold = float(ctx.param("value", 0))
        self.empty_ok = ctx.param("empty", "fail") == "ok"

    def check(self) -> ProbeResult:
        start = get_clock().monotonic()
        try:
            samples = self.client.query(self.query)
        except MonitoringError as exc:
            return ProbeResult(False, get_clock().monotonic() - start, str(exc))
        latency = get_clock().monotonic() - start
        if not samples:
            return ProbeResult(self.empty_ok, latency, f"{self.query}: empty result", None)
        compare = COMPARATORS[self.comparator]
        bad = [(labels, v) for labels, v in samples if not compare(v, self.threshold)]
        shown = bad[0] if bad else samples[0]
        value = shown[1]
        labels = ",".join(f"{k}={v}" for k, v in sorted(shown[0].items()) if k != "__name__")
        verdict = "fails" if bad else "holds"
        detail = (
            f"{_fmt(value)} {self.comparator} {_fmt(self.threshold)} {verdict}"
            f"{' for {' + labels + '}' if labels else ''}"
            f"{f' ({len(bad)} of {len(samples)} samples fail)' if len(samples) > 1 and bad else ''}"
        )
        return ProbeResult(not bad, latency, detail, value)


def _firing(ctx: Context, source: str) -> Callable[[], list[Alert]]:
    settings = settings_from(ctx.settings)
    if source == "alertmanager":
        am = AlertmanagerClient(settings)
        return lambda: [a for a in am.alerts() if a.state == "active"]
    prom = PrometheusClient(settings)
    return lambda: [a for a in prom.alerts() if a.state == "firing"]


class AlertProbe(Probe):
    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.name = str(ctx.param("alert"))
        self.labels = {str(k): str(v) for k, v in (ctx.param("labels") or {}).items()}
        self.want_firing = ctx.param("expect", "not_firing") == "firing"
        self.source = str(ctx.param("source", "prometheus"))
        self.firing = _firing(ctx, self.source)

    def check(self) -> ProbeResult:
        start = get_clock().monotonic()
        try:
            found = [a for a in self.firing() if a.matches(self.name, self.labels)]
        except MonitoringError as exc:
            return ProbeResult(False, get_clock().monotonic() - start, str(exc))
        latency = get_clock().monotonic() - start
        state = f"{self.name} is {'firing' if found else 'not firing'} ({self.source})"
        return ProbeResult(bool(found) == self.want_firing, latency, state, len(found))


class QuietProbe(Probe):
    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        raw: Any = ctx.param("labels") or {"severity": "critical"}
        self.labels = {str(k): str(v) for k, v in raw.items()}
        self.expected = {str(n) for n in ctx.param("expected", ()) or ()}
        self.source = str(ctx.param("source", "prometheus"))
        self.firing = _firing(ctx, self.source)

    def check(self) -> ProbeResult:
        start = get_clock().monotonic()
        try:
            found = [
                a
                for a in self.firing()
                if a.matches(None, self.labels) and a.name not in self.expected
            ]
        except MonitoringError as exc:
            return ProbeResult(False, get_clock().monotonic() - start, str(exc))
        latency = get_clock().monotonic() - start
        if found:
            names = ", ".join(sorted({a.name for a in found}))
            return ProbeResult(False, latency, f"unexpected alert firing: {names}", len(found))
        return ProbeResult(True, latency, "no unexpected alert firing", 0)

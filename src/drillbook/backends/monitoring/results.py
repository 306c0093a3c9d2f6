"""Drill results into the team's own tools: a Pushgateway, and start/end/abort notifications.

* Pushgateway (``backends.monitoring.pushgateway_url`` or ``$DRILLBOOK_PUSHGATEWAY_URL``): each
  finished drill pushes its measures as gauges (RTA, RTO, TTD, TTA, TTN, TTAck, RPA, verdict)
  under ``job="drillbook", scenario=<id>``, so teams chart drills beside their service metrics.
* Notifications (``backends.monitoring.notify``: a list of ``{url, format: json | slack,
  events: [start, end, abort]}``): "communicate early and often". ``json`` posts drillbook's own
  small document; ``slack`` posts ``{"text": ...}``, which Slack incoming webhooks (and Mattermost,
  Rocket.Chat, Teams' Slack-compatible connectors) accept.

Neither may fail or hang a drill: every call has a short timeout, every error is returned to the
engine, which journals it (``notify_failed`` / ``push_failed``) and goes on.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["notification_targets", "notify", "push_results", "pushgateway_url"]

_TIMEOUT_S = 2.0
_GAUGES = (
    ("rta_seconds", "measures", "rta_s", "Recovery time actual"),
    ("ttd_seconds", "measures", "ttd_s", "Time to detect"),
    ("tta_seconds", "measures", "tta_s", "Time to alert"),
    ("ttn_seconds", "measures", "ttn_s", "Time to notify"),
    ("ttack_seconds", "measures", "ttack_s", "Time to acknowledge"),
    ("rpa_seconds", "measures", "rpa_s", "Recovery point actual"),
    ("rto_seconds", "objectives", "rto_s", "Recovery time objective"),
    ("rpo_seconds", "objectives", "rpo_s", "Recovery point objective"),
)
VERDICTS = ("passed", "failed", "aborted", "error")


def pushgateway_url(settings: Mapping[str, Any]) -> str | None:
    url = os.environ.get("DRILLBOOK_PUSHGATEWAY_URL") or settings.get("pushgateway_url")
    return str(url).rstrip("/") if url else None


def push_results(url: str, record: Mapping[str, Any], run_id: str) -> None:
    """Push one drill's measures to the Pushgateway (replacing that scenario's group)."""
    from prometheus_client import CollectorRegistry, Gauge, push_to_gateway

    registry = CollectorRegistry()
    for name, section, key, help_ in _GAUGES:
        value = (record.get(section) or {}).get(key)
        if value is not None:
            Gauge(f"drillbook_drill_{name}", help_, registry=registry).set(float(value))
    verdict = Gauge(
        "drillbook_drill_verdict", "1 for the drill's verdict", ["verdict"], registry=registry
    )
    for v in VERDICTS:
        verdict.labels(v).set(1.0 if record.get("verdict") == v else 0.0)
    Gauge(
        "drillbook_drill_last_run_timestamp_seconds", "When the drill ended", registry=registry
    ).set_to_current_time()
    info = Gauge(
        "drillbook_drill_info",
        "The run and severity of the last drill",
        ["run_id", "severity"],
        registry=registry,
    )
    info.labels(run_id, str(record.get("severity", ""))).set(1.0)
    scenario = str(record.get("scenario") or record.get("id"))
    push_to_gateway(
        url,
        job="drillbook",
        grouping_key={"scenario": scenario},
        registry=registry,
        timeout=_TIMEOUT_S,
    )


def notification_targets(settings: Mapping[str, Any]) -> Sequence[Mapping[str, Any]]:
    raw = settings.get("notify") or []
    return [t for t in raw if isinstance(t, Mapping) and t.get("url")]


def _text(event: str, drill: str, record: Mapping[str, Any] | None, reason: str) -> str:
    if event == "start":
        return f":rotating_light: drillbook: drill {drill} started (a fault will be injected)"
    verdict = (record or {}).get("verdict", "?")
    m = (record or {}).get("measures") or {}
    parts = [
        f"{k.upper().removesuffix('_S')} {m[k]:.1f}s"
        for k in ("ttd_s", "rta_s", "tta_s")
        if isinstance(m.get(k), int | float)
    ]
    head = "aborted" if event == "abort" else f"ended: {verdict}"
    return (
        f"drillbook: drill {drill} {head}"
        + (f" ({', '.join(parts)})" if parts else "")
        + (f": {reason}" if reason else "")
    )


def notify(
    targets: Sequence[Mapping[str, Any]],
    event: str,
    drill: str,
    run_id: str,
    record: Mapping[str, Any] | None = None,
) -> list[tuple[str, str]]:
    """Send ``event`` (start | end | abort) to every target that wants it; returns
    (url, error) for each failure, never raises."""
    failures: list[tuple[str, str]] = []
    reasons = "; ".join((record or {}).get("reasons") or [])[:500]
    for t in targets:
        wanted = t.get("events") or ("start", "end", "abort")
        if event not in wanted:
            continue
        url = str(t["url"])
        if t.get("format") == "slack":
            body: dict[str, Any] = {"text": _text(event, drill, record, reasons)}
        else:
            body = {
                "source": "drillbook",
                "event": event,
                "drill": drill,
                "run_id": run_id,
                "verdict": (record or {}).get("verdict"),
                "reasons": (record or {}).get("reasons", []),
                "measures": {
                    k: v
                    for k, v in ((record or {}).get("measures") or {}).items()
                    if k.endswith("_s") and not isinstance(v, dict | list)
                },
            }
        req = urllib.request.Request(
            url,
            data=json.dumps(body).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=float(t.get("timeout_s", _TIMEOUT_S))):
                pass
        except (OSError, ValueError, urllib.error.URLError) as exc:
            failures.append((url, f"{type(exc).__name__}: {exc}"))
    return failures

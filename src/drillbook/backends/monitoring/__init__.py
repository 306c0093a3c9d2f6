"""The monitoring backend: the team's Prometheus and Alertmanager, read through their HTTP APIs.

Probes ``prometheus`` (PromQL + comparator + threshold), ``alert`` (an alert firing / not
firing) and ``alerts.quiet`` (the guard: no unexpected critical alert). Alert drills
(``alerts:`` in a scenario) use :mod:`drillbook.backends.monitoring.watch`. Available when a
Prometheus is configured and answers ``/-/ready``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drillbook.backends.base import Registry, lazy, params

__all__ = ["register"]

_LABELS = {
    "type": "object",
    "additionalProperties": {"type": "string", "maxLength": 256},
}
_SOURCE = {"enum": ["prometheus", "alertmanager"]}


def _available(settings: Mapping[str, Any]) -> str | None:
    from drillbook.backends.monitoring.api import (
        MonitoringError,
        PrometheusClient,
        settings_from,
    )
    from drillbook.errors import ConfigError

    try:
        client = PrometheusClient(settings_from(settings))
        client.ready()
    except ConfigError as exc:
        return f"{exc.reason} (scripts/testenv up monitoring)"
    except MonitoringError as exc:
        return f"Prometheus does not answer: {exc}"
    return None


def register(registry: Registry) -> None:
    registry.add_backend("monitoring", _available, "the team's Prometheus and Alertmanager")
    registry.add_probe(
        "prometheus",
        "monitoring",
        lazy("drillbook.backends.monitoring.probes:PrometheusProbe"),
        help="a PromQL instant query: every sample must satisfy `comparator value`",
        params_schema=params(
            {
                "query": {"type": "string", "minLength": 1, "maxLength": 4000},
                "comparator": {"enum": ["==", "!=", "<", "<=", ">", ">="]},
                "value": {"type": "number"},
                "empty": {"enum": ["fail", "ok"]},
            },
            required=["query", "comparator", "value"],
        ),
    )
    registry.add_probe(
        "alert",
        "monitoring",
        lazy("drillbook.backends.monitoring.probes:AlertProbe"),
        help="alert NAME (with label matchers) is firing / not firing",
        params_schema=params(
            {
                "alert": {"type": "string", "minLength": 1, "maxLength": 200},
                "labels": _LABELS,
                "expect": {"enum": ["firing", "not_firing"]},
                "source": _SOURCE,
            },
            required=["alert"],
        ),
    )
    registry.add_probe(
        "alerts.quiet",
        "monitoring",
        lazy("drillbook.backends.monitoring.probes:QuietProbe"),
        help="the guard: no firing alert matches `labels` (default severity=critical) "
        "except those the drill expects",
        params_schema=params(
            {
                "labels": _LABELS,
                "expected": {"type": "array", "items": {"type": "string"}, "maxItems": 100},
                "source": _SOURCE,
            }
        ),
    )

"""The HTTP API calls drillbook makes to Prometheus, Alertmanager and a Pushgateway.

Standard library only (urllib): a handful of GETs per poll does not justify an HTTP client import
in every drill. Every call has a timeout, so a hung server costs a poll, never a drill. Where the
servers are comes from ``backends.monitoring`` in drillbook.yaml, overridden by the environment
(``DRILLBOOK_PROMETHEUS_URL``, ``DRILLBOOK_ALERTMANAGER_URL``, ``DRILLBOOK_PUSHGATEWAY_URL``,
``DRILLBOOK_PROMETHEUS_SD_DIR``, ``DRILLBOOK_ALERT_RECEIVER``), as everywhere else in the config.
An optional bearer token (``bearer_token_env``: the name of a variable holding it) is sent to
Prometheus and Alertmanager, for a team's servers behind an auth proxy.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from drillbook.errors import ConfigError

__all__ = [
    "Alert",
    "AlertmanagerClient",
    "MonitoringError",
    "MonitoringSettings",
    "PrometheusClient",
    "settings_from",
]

_ENV = {
    "prometheus_url": "DRILLBOOK_PROMETHEUS_URL",
    "alertmanager_url": "DRILLBOOK_ALERTMANAGER_URL",
    "pushgateway_url": "DRILLBOOK_PUSHGATEWAY_URL",
    "file_sd_dir": "DRILLBOOK_PROMETHEUS_SD_DIR",
    "receiver": "DRILLBOOK_ALERT_RECEIVER",
}


class MonitoringError(Exception):
    """A monitoring API answered badly or not at all (probes turn it into not-ok)."""


@dataclass(frozen=True)
class MonitoringSettings:
    prometheus_url: str | None = None
    alertmanager_url: str | None = None
    pushgateway_url: str | None = None
    file_sd_dir: str | None = None
    #: host:port drillbook's webhook receiver listens on while an alert drill runs.
    receiver: str | None = None
    bearer_token: str | None = None
    timeout_s: float = 2.0


def settings_from(settings: Mapping[str, Any]) -> MonitoringSettings:
    """``backends.monitoring`` with the environment on top (env > file)."""
    values: dict[str, Any] = {}
    for key, env in _ENV.items():
        value = os.environ.get(env) or settings.get(key)
        values[key] = str(value).rstrip("/") if value else None
    token = None
    token_env = settings.get("bearer_token_env")
    if token_env:
        token = os.environ.get(str(token_env))
        if not token:
            raise ConfigError(
                f"backends.monitoring.bearer_token_env names ${token_env}, which is not set",
                field="backends.monitoring.bearer_token_env",
            )
        from drillbook.redact import register_secret

        register_secret(token)
    timeout = float(settings.get("timeout_s", 2.0))
    return MonitoringSettings(**values, bearer_token=token, timeout_s=timeout)


def _request(
    url: str,
    *,
    token: str | None,
    timeout: float,
    method: str = "GET",
    body: bytes | None = None,
    content_type: str = "application/json",
) -> bytes:
    req = urllib.request.Request(url, data=body, method=method)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    if body is not None:
        req.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            data: bytes = resp.read()
            return data
    except urllib.error.HTTPError as exc:
        text = exc.read()[:300].decode("utf-8", "replace")
        raise MonitoringError(f"{method} {url}: HTTP {exc.code}: {text}") from None
    except (OSError, ValueError) as exc:
        raise MonitoringError(f"{method} {url}: {type(exc).__name__}: {exc}") from None


@dataclass(frozen=True)
class Alert:
    """One alert as Prometheus or Alertmanager reports it."""

    name: str
    labels: Mapping[str, str]
    state: str  # Prometheus: pending | firing; Alertmanager: active | suppressed | unprocessed
    active_at: str | None = None  # Prometheus: when the rule's condition became true
    value: str | None = None

    def matches(self, name: str | None, matchers: Mapping[str, str]) -> bool:
        if name is not None and self.name != name:
            return False
        return all(self.labels.get(k) == v for k, v in matchers.items())


class PrometheusClient:
    """The read-only Prometheus HTTP API: /api/v1/query, /api/v1/alerts, /api/v1/rules,
    /api/v1/targets. Needs nothing but read access to the API."""

    def __init__(self, settings: MonitoringSettings) -> None:
        if not settings.prometheus_url:
            raise ConfigError(
                "no Prometheus configured: set backends.monitoring.prometheus_url or "
                "$DRILLBOOK_PROMETHEUS_URL",
                field="backends.monitoring.prometheus_url",
            )
        self.url = settings.prometheus_url
        self.settings = settings

    def _get(self, path: str, **params: str) -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        raw = _request(
            f"{self.url}{path}{query}",
            token=self.settings.bearer_token,
            timeout=self.settings.timeout_s,
        )
        try:
            doc = json.loads(raw)
        except ValueError as exc:
            raise MonitoringError(f"{path}: not JSON: {exc}") from None
        if doc.get("status") != "success":
            raise MonitoringError(f"{path}: {doc.get('errorType')}: {doc.get('error')}")
        return doc.get("data")

    def ready(self) -> None:
        _request(
            f"{self.url}/-/ready", token=self.settings.bearer_token, timeout=self.settings.timeout_s
        )

    def query(self, promql: str) -> list[tuple[dict[str, str], float]]:
        """An instant query; every sample as (labels, value). A scalar is one unlabelled sample."""
        data = self._get("/api/v1/query", query=promql)
        kind, result = data.get("resultType"), data.get("result")
        if kind == "vector":
            return [(dict(r.get("metric", {})), float(r["value"][1])) for r in result]
        if kind == "scalar":
            return [({}, float(result[1]))]
        raise MonitoringError(f"query {promql!r} returned a {kind}, expected a vector or scalar")

    def alerts(self) -> list[Alert]:
        """Every pending and firing alert (``/api/v1/alerts``)."""
        data = self._get("/api/v1/alerts")
        return [
            Alert(
                name=a["labels"].get("alertname", ""),
                labels=dict(a["labels"]),
                state=a.get("state", ""),
                active_at=a.get("activeAt"),
                value=a.get("value"),
            )
            for a in data.get("alerts", [])
        ]

    def alert_rules(self) -> dict[str, dict[str, Any]]:
        """Alerting rules by name (``/api/v1/rules?type=alert``): what the monitoring can say."""
        data = self._get("/api/v1/rules", type="alert")
        rules: dict[str, dict[str, Any]] = {}
        for group in data.get("groups", []):
            for rule in group.get("rules", []):
                if rule.get("type") == "alerting":
                    rules.setdefault(rule["name"], {**rule, "group": group.get("name")})
        return rules

    def target_health(self, scrape_url: str) -> str | None:
        """The health Prometheus reports for the active target scraping ``scrape_url``."""
        data = self._get("/api/v1/targets", state="active")
        for t in data.get("activeTargets", []):
            if t.get("scrapeUrl") == scrape_url:
                return str(t.get("health"))
        return None


class AlertmanagerClient:
    """Alertmanager's v2 API: GET /api/v2/alerts and /api/v2/silences (read-only)."""

    def __init__(self, settings: MonitoringSettings) -> None:
        if not settings.alertmanager_url:
            raise ConfigError(
                "no Alertmanager configured: set backends.monitoring.alertmanager_url or "
                "$DRILLBOOK_ALERTMANAGER_URL",
                field="backends.monitoring.alertmanager_url",
            )
        self.url = settings.alertmanager_url
        self.settings = settings

    def _get(self, path: str) -> Any:
        raw = _request(
            f"{self.url}{path}", token=self.settings.bearer_token, timeout=self.settings.timeout_s
        )
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise MonitoringError(f"{path}: not JSON: {exc}") from None

    def alerts(self) -> list[Alert]:
        return [
            Alert(
                name=a["labels"].get("alertname", ""),
                labels=dict(a["labels"]),
                state=str(a.get("status", {}).get("state", "")),
                active_at=a.get("startsAt"),
            )
            for a in self._get("/api/v2/alerts")
        ]

    def silences(self) -> list[dict[str, Any]]:
        """Every silence; an active one whose matchers cover an alert counts as acknowledged."""
        result: list[dict[str, Any]] = self._get("/api/v2/silences")
        return result

    def create_silence(
        self,
        matchers: Mapping[str, str],
        *,
        created_by: str,
        comment: str,
        starts_at: str,
        ends_at: str,
    ) -> str:
        """POST /api/v2/silences (tests and the docs' "acknowledge by silence"); returns its id."""
        body = json.dumps(
            {
                "matchers": [
                    {"name": k, "value": v, "isRegex": False, "isEqual": True}
                    for k, v in matchers.items()
                ],
                "startsAt": starts_at,
                "endsAt": ends_at,
                "createdBy": created_by,
                "comment": comment,
            }
        ).encode()
        raw = _request(
            f"{self.url}/api/v2/silences",
            token=self.settings.bearer_token,
            timeout=self.settings.timeout_s,
            method="POST",
            body=body,
        )
        return str(json.loads(raw).get("silenceID", ""))

    def expire_silence(self, silence_id: str) -> None:
        _request(
            f"{self.url}/api/v2/silence/{urllib.parse.quote(silence_id)}",
            token=self.settings.bearer_token,
            timeout=self.settings.timeout_s,
            method="DELETE",
        )

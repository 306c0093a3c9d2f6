"""The alert drill's observer: polls Prometheus for the expected alerts, listens for
Alertmanager's notifications, looks for acknowledgements, and times each against t_inject.

Why polling Prometheus' ``/api/v1/alerts``: it is the monitoring's own answer to "is it firing?",
and the poll before the one that saw an alert firing bounds the moment from below, so TTA comes
with a bracket [previous poll's start, this poll's end]; Prometheus' ``activeAt`` (when the
rule's condition became true) is kept beside it, for the fidelity benchmark. TTN is exact to the
receiver: each webhook POST is stamped on arrival. A silence counts as an acknowledgement from
the poll that first saw it active, bracketed by the poll before.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from drillbook.alerting import AlertOutcome
from drillbook.backends.monitoring.api import (
    Alert,
    AlertmanagerClient,
    MonitoringError,
    MonitoringSettings,
    PrometheusClient,
    settings_from,
)
from drillbook.backends.monitoring.receiver import WebhookReceiver
from drillbook.clock import Clock, real_wall
from drillbook.config import Config
from drillbook.errors import ConfigError, DrillbookError
from drillbook.model import AlertSpec, AlertsSpec

__all__ = ["AlertWatch", "parse_ts"]

Event = Callable[..., None]


def parse_ts(value: str | None) -> float | None:
    """An RFC 3339 time from Prometheus/Alertmanager as epoch seconds."""
    if not value:
        return None
    try:
        text = value.replace("Z", "+00:00")
        if "." in text:  # Go prints nanoseconds; Python takes microseconds
            head, _, rest = text.partition(".")
            digits = "".join(c for c in rest if c.isdigit())
            tz = rest[len(digits) :]
            text = f"{head}.{digits[:6]}{tz}"
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


def _matches(alert_labels: Mapping[str, Any], spec: AlertSpec) -> bool:
    return alert_labels.get("alertname") == spec.name and all(
        alert_labels.get(k) == v for k, v in spec.labels.items()
    )


def _silence_covers(silence: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    import re

    for m in silence.get("matchers", []):
        value = labels.get(m.get("name", ""), "")
        pattern = str(m.get("value", ""))
        hit = re.fullmatch(pattern, value) is not None if m.get("isRegex") else value == pattern
        if hit != m.get("isEqual", True):
            return False
    return bool(silence.get("matchers"))


class AlertWatch:
    """One drill's alert observation. ``prepare`` → ``start`` (at t_inject) → ``await_alerts`` →
    ``mark_recovered`` → ``await_resolved`` → ``stop``; ``outcomes`` at any time."""

    def __init__(
        self,
        spec: AlertsSpec,
        config: Config,
        clock: Clock,
        event: Event,
    ) -> None:
        self.spec = spec
        self.config = config
        self.clock = clock
        self.event = event
        self.settings: MonitoringSettings = settings_from(config.backend_settings("monitoring"))
        self.prom = PrometheusClient(self.settings)
        self.am = AlertmanagerClient(self.settings) if self.settings.alertmanager_url else None
        self.receiver: WebhookReceiver | None = None
        self.outcomes = [self._outcome(a, silent=False) for a in spec.expect] + [
            self._outcome(a, silent=True) for a in spec.silent
        ]
        self._specs = list(spec.expect) + list(spec.silent)
        self._sd_files: list[Path] = []
        self._t_inject: float | None = None
        self._t_inject_epoch: float | None = None
        self._t_recovered: float | None = None
        self._last_poll: tuple[float, float] | None = None  # (start, end) of the previous poll
        self._firing_now: list[bool] = [False] * len(self._specs)
        #: (previous poll's start, start, end) of the poll that first saw each alert stop firing.
        self._stopped: list[tuple[float, float, float] | None] = [None] * len(self._specs)
        self._stop = threading.Event()
        self._changed = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.errors: list[str] = []
        #: await_resolved ran to its end: an alert still firing then did not resolve.
        self.resolve_awaited = False

    @staticmethod
    def _outcome(a: AlertSpec, *, silent: bool) -> AlertOutcome:
        return AlertOutcome(
            a.name,
            dict(a.labels),
            silent=silent,
            notify=a.notify and not silent,
            ack=None if silent else a.ack,
        )

    # ------------------------------------------------------------------ before the fault
    def prepare(self, settle_s: float = 30.0) -> None:
        """Register scrape targets, start the receiver, read the rules, and wait until no
        expected alert is still firing from an earlier drill (else TTA would be zero)."""
        try:
            self.prom.ready()
        except MonitoringError as exc:
            raise DrillbookError(f"Prometheus is not ready: {exc}") from None
        self._register_scrape()
        if any(o.notify for o in self.outcomes):
            if not self.settings.receiver:
                for o in self.outcomes:
                    if o.notify:
                        o.detail = (
                            "no receiver configured (backends.monitoring.receiver or "
                            "$DRILLBOOK_ALERT_RECEIVER): the notification cannot be timed"
                        )
            else:
                try:
                    self.receiver = WebhookReceiver.listen(
                        self.settings.receiver, self.clock.monotonic
                    )
                except OSError as exc:
                    raise DrillbookError(
                        f"cannot listen for Alertmanager's webhook on {self.settings.receiver}: {exc}"
                    ) from None
        try:
            rules = self.prom.alert_rules()
        except MonitoringError as exc:
            rules = None
            self.errors.append(f"rules: {exc}")
        for o in self.outcomes:
            if rules is not None:
                o.rule_exists = o.name in rules
                if o.name in rules:
                    o.for_s = float(rules[o.name].get("duration") or 0.0)
        self.event(
            "alerts_armed",
            expect=[o.name for o in self.outcomes if not o.silent],
            silent=[o.name for o in self.outcomes if o.silent],
            missing_rules=[o.name for o in self.outcomes if o.rule_exists is False],
        )
        give_up = self.clock.monotonic() + settle_s
        while True:
            firing = self._expected_firing()
            if not firing:
                return
            if self.clock.monotonic() >= give_up:
                raise DrillbookError(
                    f"expected alert(s) {', '.join(firing)} already firing before injection "
                    f"(for {settle_s:.0f}s): the drill could not tell its alert from an earlier one"
                )
            self.clock.sleep(0.5)

    def _expected_firing(self) -> list[str]:
        alerts = self.prom.alerts()
        return sorted(
            {
                o.name
                for o, s in zip(self.outcomes, self._specs, strict=True)
                if not o.silent
                and any(a.state == "firing" and _matches(a.labels, s) for a in alerts)
            }
        )

    def _register_scrape(self) -> None:
        """Write one file_sd JSON per scraped target and wait until Prometheus scrapes it up."""
        if not self.spec.scrape:
            return
        if not self.settings.file_sd_dir:
            raise ConfigError(
                "alerts.scrape needs a file_sd folder Prometheus reads (backends.monitoring."
                "file_sd_dir or $DRILLBOOK_PROMETHEUS_SD_DIR)",
                field="alerts.scrape",
            )
        from drillbook.backends.monitoring.scrape import metrics_url

        folder = Path(self.settings.file_sd_dir)
        folder.mkdir(parents=True, exist_ok=True)
        urls: list[tuple[str, str]] = []
        for name in self.spec.scrape:
            url = metrics_url(self.config, name)
            hostport = url.split("://", 1)[1].split("/", 1)[0]
            path = folder / f"drillbook-{name}.json"
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps([{"targets": [hostport], "labels": {"target": name}}]))
            tmp.replace(path)
            if path not in self._sd_files:
                self._sd_files.append(path)
            urls.append((name, url))
        give_up = self.clock.monotonic() + 30.0
        pending = dict(urls)
        while pending:
            for name, url in list(pending.items()):
                with contextlib.suppress(MonitoringError):
                    if self.prom.target_health(url) == "up":
                        pending.pop(name)
            if not pending:
                break
            if self.clock.monotonic() >= give_up:
                raise DrillbookError(
                    f"Prometheus does not scrape {', '.join(pending)} within 30s "
                    f"({', '.join(pending.values())})"
                )
            self.clock.sleep(0.25)
        self.event("alerts_scraping", targets=[n for n, _ in urls])

    # ------------------------------------------------------------------ during the drill
    def start(self, t_inject: float, t_inject_epoch: float) -> None:
        self._t_inject, self._t_inject_epoch = t_inject, t_inject_epoch
        self._thread = threading.Thread(target=self._run, name="drillbook-alerts", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.poll_once()
            self._stop.wait(self.spec.poll_interval_s)

    def poll_once(self) -> None:
        start = self.clock.monotonic()
        try:
            alerts = self.prom.alerts()
            silences = (
                self.am.silences()
                if self.am and any(o.ack == "silence" for o in self.outcomes)
                else []
            )
        except MonitoringError as exc:
            with self._lock:
                self.errors.append(str(exc))
                self._last_poll = None  # a gap: the next sighting's bracket must not span it
            return
        end = self.clock.monotonic()
        with self._lock:
            self._observe(alerts, silences, start, end)
            self._look_at_receiver()
            self._last_poll = (start, end)
        self._changed.set()

    def _observe(
        self,
        alerts: Sequence[Alert],
        silences: Sequence[Mapping[str, Any]],
        start: float,
        end: float,
    ) -> None:
        assert self._t_inject is not None and self._t_inject_epoch is not None
        ti = self._t_inject
        low = self._last_poll[0] if self._last_poll else ti
        for i, (o, s) in enumerate(zip(self.outcomes, self._specs, strict=True)):
            hits = [a for a in alerts if a.state == "firing" and _matches(a.labels, s)]
            was = self._firing_now[i]
            self._firing_now[i] = bool(hits)
            if hits and o.tta_s is None:
                o.tta_s = max(0.0, start - ti)
                o.tta_bracket_s = (max(0.0, low - ti), end - ti)
                act = parse_ts(hits[0].active_at)
                if act is not None:
                    o.active_at_s = act - self._t_inject_epoch
                self.event(
                    "alert_firing",
                    alert=o.name,
                    tta_s=round(o.tta_s, 6),
                    tta_bracket_s=[round(x, 6) for x in o.tta_bracket_s],
                    silent=o.silent,
                    labels=dict(hits[0].labels),
                )
            if was and not hits:
                # Kept even before recovery is known: the probes confirm recovery only after
                # stable_for, and the alert may resolve in between.
                self._stopped[i] = (low, start, end)
                self._resolved(i)
            elif hits:
                self._stopped[i] = None
            if o.ack == "silence" and o.ttack_s is None and o.tta_s is not None:
                labels = hits[0].labels if hits else {"alertname": o.name, **o.labels}
                for sil in silences:
                    if sil.get("status", {}).get("state") != "active":
                        continue
                    made = parse_ts(sil.get("updatedAt") or sil.get("startsAt"))
                    if made is not None and made < self._t_inject_epoch:
                        continue  # a silence from before the drill acknowledges nothing
                    if _silence_covers(sil, labels):
                        o.ttack_s = max(0.0, start - ti)
                        o.ttack_bracket_s = (max(0.0, low - ti), end - ti)
                        o.ack_detail = f"silence {sil.get('id')} by {sil.get('createdBy')}"
                        self.event(
                            "alert_acknowledged",
                            alert=o.name,
                            ttack_s=round(o.ttack_s, 6),
                            by="silence",
                            detail=o.ack_detail,
                        )
                        break

    def _resolved(self, i: int) -> None:
        o, stopped, tr = self.outcomes[i], self._stopped[i], self._t_recovered
        if stopped is None or tr is None or o.resolve_s is not None or o.tta_s is None:
            return
        low, start, end = stopped
        o.resolve_s = max(0.0, start - tr)
        o.resolve_bracket_s = (max(0.0, low - tr), max(0.0, end - tr))
        self.event("alert_resolved", alert=o.name, resolve_s=round(o.resolve_s, 6))

    def _look_at_receiver(self) -> None:
        if self.receiver is None or self._t_inject is None:
            return
        ti = self._t_inject
        for d in self.receiver.snapshot():
            if d.at < ti:
                continue
            for a in d.alerts:
                labels = a.get("labels", {})
                for o, s in zip(self.outcomes, self._specs, strict=True):
                    if o.silent or not _matches(labels, s):
                        continue
                    if a.get("status") == "firing" and o.ttn_s is None:
                        o.ttn_s = d.at - ti
                        o.ttn_bracket_s = (o.ttn_s, o.ttn_s)
                        self.event(
                            "alert_notified",
                            alert=o.name,
                            ttn_s=round(o.ttn_s, 6),
                            receiver=self.receiver.url,
                        )
                    elif (
                        a.get("status") == "resolved"
                        and self._t_recovered is not None
                        and o.ttn_s is not None
                        and o.resolve_notified_s is None
                        and d.at >= ti + o.ttn_s
                    ):
                        o.resolve_notified_s = max(0.0, d.at - self._t_recovered)
                        self.event(
                            "alert_resolve_notified",
                            alert=o.name,
                            after_recovery_s=round(o.resolve_notified_s, 6),
                        )

    def acknowledge(self, name: str, detail: str) -> None:
        """An acknowledgement by answer (a prompt or ``--drill-answer``), stamped now."""
        assert self._t_inject is not None
        now = self.clock.monotonic() - self._t_inject
        with self._lock:
            for o in self.outcomes:
                if o.name == name and o.ack == "answer" and o.ttack_s is None:
                    o.ttack_s = now
                    o.ttack_bracket_s = (now, now)
                    o.ack_detail = detail
                    self.event(
                        "alert_acknowledged",
                        alert=name,
                        ttack_s=round(now, 6),
                        by="answer",
                        detail=detail,
                    )

    def _done(self, *, resolved: bool) -> bool:
        with self._lock:
            for o in self.outcomes:
                if o.silent:
                    continue
                if o.rule_exists is False and o.tta_s is None:
                    continue  # no rule: it can never fire; waiting would only delay the verdict
                if resolved:
                    if self._firing_now[self.outcomes.index(o)]:
                        return False
                    continue
                if o.tta_s is None or (o.notify and self.receiver and o.ttn_s is None):
                    return False
                if o.ack == "silence" and o.ttack_s is None:
                    return False
            return True

    def await_alerts(self, until: float, ask: Callable[[str], str | None]) -> None:
        """Wait (to ``until`` on the monotonic clock) until every expected alert fired, was
        notified and, where asked, acknowledged; answer-acknowledgements are asked for as soon
        as their alert is seen (``ask`` returns the operator's answer, or None)."""
        asked: set[str] = set()
        while self.clock.monotonic() < until:
            for o in self.outcomes:
                if (
                    o.ack == "answer"
                    and o.tta_s is not None
                    and o.name not in asked
                    and (not o.notify or self.receiver is None or o.ttn_s is not None)
                ):
                    asked.add(o.name)
                    answer = ask(o.name)
                    if answer is None or answer.lower() in ("fail", "failed", "no", "n"):
                        o.ack_detail = (
                            "not acknowledged" if answer is None else f"answered {answer!r}"
                        )
                    else:
                        self.acknowledge(o.name, f"answered: {answer}")
            if self._done(resolved=False) and all(
                o.ack != "answer" or o.name in asked or o.tta_s is None for o in self.outcomes
            ):
                return
            self._changed.wait(
                min(self.spec.poll_interval_s, max(0.0, until - self.clock.monotonic()))
            )
            self._changed.clear()

    def mark_recovered(self, t_recovered: float) -> None:
        with self._lock:
            self._t_recovered = t_recovered
            for i in range(len(self.outcomes)):
                self._resolved(i)
        # A restarted service may listen on a new port (``port: auto``): point Prometheus at it,
        # else the old address stays down and the alert can never resolve.
        try:
            self._register_scrape()
        except DrillbookError as exc:
            self.errors.append(f"re-registering scrape targets: {exc}")

    def await_resolved(self, until: float) -> None:
        self.resolve_awaited = True
        until = min(until, self.clock.monotonic() + self.spec.resolve_timeout_s)
        while self.clock.monotonic() < until and not self._done(resolved=True):
            self._changed.wait(self.spec.poll_interval_s)
            self._changed.clear()
        # one more look for the resolved notification, which trails the rule by a group interval
        if self.receiver is not None:
            give_up = min(until, self.clock.monotonic() + 5.0)
            while self.clock.monotonic() < give_up and any(
                o.ttn_s is not None and o.resolve_notified_s is None
                for o in self.outcomes
                if not o.silent
            ):
                self._changed.wait(self.spec.poll_interval_s)
                self._changed.clear()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self.receiver is not None:
            with self._lock:
                self._look_at_receiver()
            self.receiver.stop()
            self.receiver = None
        for path in self._sd_files:
            with contextlib.suppress(OSError):
                path.unlink()
        self._sd_files = []

    def silence_for(self, name: str, minutes: float = 5.0) -> str:
        """Create an Alertmanager silence for ``name`` (tests; an on-call does this by hand)."""
        if self.am is None:
            raise ConfigError(
                "no Alertmanager configured", field="backends.monitoring.alertmanager_url"
            )
        now = real_wall()
        return self.am.create_silence(
            {"alertname": name},
            created_by="drillbook-test",
            comment="acknowledged",
            starts_at=now.isoformat(),
            ends_at=(now + timedelta(minutes=minutes)).isoformat(),
        )

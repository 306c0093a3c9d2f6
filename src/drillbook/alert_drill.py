"""Alert drills: the team's monitoring armed before the fault, the expected alerts awaited
(fired, notified, acknowledged) after it, and judged at the end (see
:mod:`drillbook.alerting` and :mod:`drillbook.backends.monitoring`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from typing import Any

from drillbook.clock import epoch
from drillbook.drillstate import SteadyStateFailed
from drillbook.errors import DrillbookError
from drillbook.model import Scenario
from drillbook.record import AlertMeasures, DrillRecord
from drillbook.sampling import SampleBook
from drillbook.timeline import Check

__all__ = ["AlertDrill"]


class AlertDrill(SampleBook):
    """The alerts one drill expects."""

    def _arm_alerts(self, scenario: Scenario) -> None:
        """Get the team's monitoring ready to be timed: scrape targets registered, the receiver
        listening, no expected alert left firing from before (else: verdict error)."""
        if self.seams.alert_watch is None:
            raise SteadyStateFailed(
                "monitoring not ready, nothing injected: no alert watch is wired"
            )
        watch_cls = self.seams.alert_watch()
        assert scenario.alerts is not None
        watch = watch_cls(scenario.alerts, self.config, self.clock, self._event)
        self._alerts = watch
        with self._phase("alerts_armed"):
            try:
                watch.prepare()
            except DrillbookError as exc:
                raise SteadyStateFailed(f"monitoring not ready, nothing injected: {exc}") from None

    def await_alerts(self) -> None:
        """After inject: wait until the expected alerts fired, were notified and acknowledged
        (where asked), within the largest response target and the drill's deadline. The
        incident's response starts with the page, so recovery steps wait for it."""
        watch = self._alerts
        if watch is None or self._t_inject is None:
            return
        watch.start(self._t_inject, self._t_inject_epoch or epoch())
        targets = self._alert_targets()
        until = min(self.deadline, self._t_inject + max(targets.values(), default=60.0))
        with self._phase("alert"):
            while self._now() < until:
                watch.await_alerts(min(until, self._now() + 0.25), self._ack_answer)
                self._check_guards()
                if watch._done(resolved=False) and all(
                    o.ack != "answer" or o.ttack_s is not None or o.ack_detail or o.tta_s is None
                    for o in watch.outcomes
                ):
                    break

    def _alert_targets(self) -> dict[str, float]:
        from drillbook.alerting import response_targets

        spec = self.scenario.alerts if self.scenario else None
        table = self.config.backend_settings("monitoring").get("response_targets")
        parsed: dict[str, dict[str, float]] = {}
        if isinstance(table, Mapping):
            from drillbook.durations import parse_duration

            for sev, row in table.items():
                if isinstance(row, Mapping):
                    parsed[str(sev)] = {str(k): parse_duration(v) for k, v in row.items()}
        return response_targets(
            self.objectives.severity.value, parsed, spec.targets_s if spec else {}
        )

    def _ack_answer(self, alert: str) -> str | None:
        """The on-call's acknowledgement of ``alert``: ``--drill-answer 'ack NAME=done'`` (or
        ``*``), else a prompt on the terminal, else None (not acknowledged)."""
        answers = self.config.manual_answers
        answer = answers.get(f"ack {alert}") or answers.get("*")
        if answer is not None:
            return answer
        try:
            with open("/dev/tty", "r+", encoding="utf-8") as tty:
                if not tty.isatty():
                    return None
                tty.write(f"\n[drillbook] ACKNOWLEDGE alert {alert} for {self.id}: press Enter: ")
                tty.flush()
                return tty.readline().strip() or "acknowledged at the terminal"
        except OSError:
            return None

    def _finish_alerts(self) -> tuple[list[Check], list[dict[str, Any]]]:
        watch, self._alerts = self._alerts, None
        if watch is None:
            return [], []
        with contextlib.suppress(Exception):
            watch.stop()
        from drillbook.alerting import alert_checks

        outcomes = list(watch.outcomes)
        if self._t_inject is None:  # never injected: nothing to judge
            return [], [o.as_dict() for o in outcomes]
        return (
            alert_checks(
                outcomes,
                self._alert_targets(),
                self.objectives.severity.value,
                recovered=self._t_recovered is not None and watch.resolve_awaited,
            ),
            [o.as_dict() for o in outcomes],
        )

    def _add_alert_records(self, record: DrillRecord, alert_records: list[dict[str, Any]]) -> None:
        """Each alert's outcome, the response targets and the first alert's TTA/TTN/TTAck."""
        if alert_records:
            record["alerts"] = alert_records
            record["objectives"]["alert_targets_s"] = self._alert_targets()
            _alert_measures(record["measures"], alert_records)


def _alert_measures(measures: AlertMeasures, alerts: Sequence[Mapping[str, Any]]) -> None:
    """The drill's TTA/TTN/TTAck for the journal and history: the first expected alert's (the
    page the runbook starts from); each alert's own are in ``record["alerts"]``."""
    first = next((a for a in alerts if not a.get("silent")), None)
    if first is None:
        return
    measures["tta_s"] = first.get("tta_s")
    measures["tta_bracket_s"] = first.get("tta_bracket_s")
    measures["ttn_s"] = first.get("ttn_s")
    measures["ttn_bracket_s"] = first.get("ttn_bracket_s")
    measures["ttack_s"] = first.get("ttack_s")
    measures["ttack_bracket_s"] = first.get("ttack_bracket_s")
    measures["resolve_s"] = first.get("resolve_s")
    measures["resolve_bracket_s"] = first.get("resolve_bracket_s")
    measures["alert"] = first.get("name")

"""Alert drills: what the team's monitoring said about the fault, judged. Pure: no I/O.

The watcher (``drillbook.backends.monitoring.watch``) observes; this module turns what it saw
into the checks of the verdict, so every rule can be tested exactly:

* an expected alert that never fired fails the drill, naming it, and saying when no alerting
  rule of that name exists at all (the monitoring has a blind spot, not merely a slow rule);
* TTA, TTN and TTAck are judged against the severity's response target at their bracket's upper
  end (never optimistic: the alert is only certain to have fired by the end of the poll that saw
  it);
* an alert that must stay silent and fired fails the drill.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from drillbook.durations import format_duration
from drillbook.model import DEFAULT_ALERT_TARGETS_S
from drillbook.timeline import Check

__all__ = ["MEASURES", "AlertOutcome", "alert_checks", "response_targets"]

#: The measures an alert drill times, in order.
MEASURES = ("tta", "ttn", "ttack")


@dataclass
class AlertOutcome:
    """One expected (or must-stay-silent) alert, as observed. Offsets are seconds from t_inject."""

    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    silent: bool = False
    rule_exists: bool | None = None  # None: the rules could not be read
    notify: bool = False
    ack: str | None = None
    tta_s: float | None = None
    tta_bracket_s: tuple[float, float] | None = None
    #: Prometheus' own record: when the rule's condition became true, and the rule's ``for``.
    active_at_s: float | None = None
    for_s: float | None = None
    ttn_s: float | None = None
    ttn_bracket_s: tuple[float, float] | None = None
    ttack_s: float | None = None
    ttack_bracket_s: tuple[float, float] | None = None
    ack_detail: str = ""
    #: Seconds from recovery until the alert stopped firing / the resolved notification arrived.
    resolve_s: float | None = None
    resolve_bracket_s: tuple[float, float] | None = None
    resolve_notified_s: float | None = None
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        def rnd(v: Any) -> Any:
            if isinstance(v, float):
                return round(v, 6)
            if isinstance(v, tuple):
                return [rnd(x) for x in v]
            return v

        return {k: rnd(v) for k, v in self.__dict__.items()} | {"labels": dict(self.labels)}


def response_targets(
    severity: str,
    table: Mapping[str, Mapping[str, Any]] | None,
    override: Mapping[str, float],
) -> dict[str, float]:
    """TTA/TTN/TTAck targets: the scenario's own, over drillbook.yaml's table for the severity,
    over the shipped P0-P3 matrix."""
    targets = dict(DEFAULT_ALERT_TARGETS_S.get(severity, DEFAULT_ALERT_TARGETS_S["P2"]))
    if table and severity in table:
        targets.update({k: float(v) for k, v in table[severity].items()})
    targets.update(override)
    return targets


def _within(
    name: str, what: str, value: float | None, bracket: Any, target: float | None, severity: str
) -> Check | None:
    if value is None or target is None:
        return None
    judged = bracket[1] if bracket else value  # the upper end: never optimistic
    ok = judged <= target
    return Check(
        f"{what}<=target:{name}",
        ok,
        f"{format_duration(judged)} {'<=' if ok else '>'} {format_duration(target)} ({severity})",
    )


def alert_checks(
    outcomes: Sequence[AlertOutcome],
    targets: Mapping[str, float],
    severity: str,
    *,
    recovered: bool = False,
) -> list[Check]:
    """The verdict's alert checks; ``recovered``: the drill recovered, so every alert that fired
    must have resolved (the watcher waited ``alerts.resolve_timeout`` for it)."""
    checks: list[Check] = []
    for o in outcomes:
        if o.silent:
            fired = o.tta_s is not None
            checks.append(
                Check(
                    f"silent:{o.name}",
                    not fired,
                    f"{o.name} fired {format_duration(o.tta_s)} after injection but must stay silent"
                    if fired
                    else "stayed silent",
                )
            )
            continue
        if o.tta_s is None:
            if o.rule_exists is False:
                why = (
                    f"expected alert {o.name} never fired: Prometheus has no alerting rule named "
                    f"{o.name}, so the monitoring cannot see this failure (a blind spot)"
                )
            else:
                why = f"expected alert {o.name} never fired{': ' + o.detail if o.detail else ''}"
            checks.append(Check(f"alert:{o.name}", False, why))
            continue
        checks.append(Check(f"alert:{o.name}", True, f"fired after {format_duration(o.tta_s)}"))
        if recovered and o.resolve_s is None:
            checks.append(
                Check(
                    f"resolved:{o.name}",
                    False,
                    f"{o.name} still firing after recovery: it would keep paging a fixed incident",
                )
            )
        for check in (
            _within(o.name, "tta", o.tta_s, o.tta_bracket_s, targets.get("tta"), severity),
        ):
            if check:
                checks.append(check)
        if o.notify:
            if o.ttn_s is None:
                checks.append(
                    Check(
                        f"notified:{o.name}",
                        False,
                        f"{o.name} fired but no notification reached the receiver"
                        f"{': ' + o.detail if o.detail else ''}",
                    )
                )
            else:
                c = _within(o.name, "ttn", o.ttn_s, o.ttn_bracket_s, targets.get("ttn"), severity)
                if c:
                    checks.append(c)
        if o.ack:
            if o.ttack_s is None:
                checks.append(
                    Check(
                        f"acknowledged:{o.name}",
                        False,
                        f"{o.name} was not acknowledged ({o.ack}){': ' + o.ack_detail if o.ack_detail else ''}",
                    )
                )
            else:
                c = _within(
                    o.name, "ttack", o.ttack_s, o.ttack_bracket_s, targets.get("ttack"), severity
                )
                if c:
                    checks.append(c)
    return checks

"""The drill record's shape: one typed structure for the engine that writes it and for every
reader (the session, the runner, the pytest plugin, reports and history).

The record is JSON in the run journal, so it is a :class:`typing.TypedDict`: the shape is
checked where it is built and where it is read, and the journal's bytes stay what they were.
Keys that only some drills have (a hold drill's outcome, an alert drill's alerts, a dry run's
flag) are ``NotRequired``. Reads of old journals still go through ``.get()``: a record written
by an older drillbook may lack a key this one always writes.
"""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict

__all__ = [
    "AlertMeasures",
    "CheckRecord",
    "DrillRecord",
    "FaultRecord",
    "GuardRecord",
    "LedgerRecord",
    "MeasuresRecord",
    "ObjectivesRecord",
    "PhaseRecord",
    "RevertRecord",
    "StepRecord",
    "TargetRecord",
]


class TargetRecord(TypedDict):
    name: str
    backend: str
    resolved: list[str]


class ObjectivesRecord(TypedDict):
    rto_s: float | None
    rpo_s: float | None
    response_target_s: float | None
    severity: str
    controls: list[str]
    #: "scenario", or "resiliency_policy:<arn>" when a Resilience Hub policy set RTO/RPO.
    source: str
    #: Alert drills: the response target of each expected alert's measure, in seconds.
    alert_targets_s: NotRequired[dict[str, float]]


class FaultRecord(TypedDict):
    type: str
    plan: str
    params: dict[str, Any]


class PhaseRecord(TypedDict):
    phase: str
    start_s: float
    end_s: float | None


class StepRecord(TypedDict):
    name: str
    kind: str
    type: str | None
    start_s: float
    duration_s: float | None
    ok: bool
    detail: str
    #: Manual steps: done | failed | skipped (see drillbook.operator), and the room's note.
    result: NotRequired[str]
    note: NotRequired[str]
    instruction: NotRequired[str]
    params: NotRequired[dict[str, Any]]


class LedgerRecord(TypedDict):
    acknowledged: int
    survived: int
    lost_before_inject: int
    oldest_lost_at: str | None
    newest_lost_at: str | None
    recovery_point: str | None
    detail: str


class AlertMeasures(TypedDict, total=False):
    """The first expected alert's times (the page the runbook starts from)."""

    tta_s: float | None
    tta_bracket_s: list[float] | None
    ttn_s: float | None
    ttn_bracket_s: list[float] | None
    ttack_s: float | None
    ttack_bracket_s: list[float] | None
    resolve_s: float | None
    resolve_bracket_s: list[float] | None
    alert: str | None


class MeasuresRecord(AlertMeasures):
    ttd_s: float | None
    ttd_bracket_s: list[float | None] | None
    rta_s: float | None
    rta_bracket_s: list[float | None] | None
    rpa_s: float | None
    lost_writes: int | None
    ledger: LedgerRecord | None
    #: None when the drill had no fault (nothing could be observed).
    outage_observed: bool | None
    relapse_s: float | None
    relapse_probe: str | None
    t_relapse: str | None
    t_inject: str | None
    t_detect: str | None
    t_recovered: str | None
    t_verified: str | None
    t_revert_confirmed: str | None
    probe_samples: int
    probe_ticks_skipped: int
    detected: bool
    recovered: bool


class CheckRecord(TypedDict):
    name: str
    ok: bool
    detail: str


class GuardRecord(TypedDict):
    name: str
    failures: int
    max_failures: int
    tripped: bool


class RevertRecord(TypedDict):
    fault: str
    intent: str
    at: str
    ok: bool
    verified: bool
    tries: int
    detail: str


class DrillRecord(TypedDict):
    id: str
    nodeid: str
    scenario: str | None
    description: str
    runbook: str
    source: str
    severity: str
    controls: list[str]
    targets: list[TargetRecord]
    objectives: ObjectivesRecord
    fault: FaultRecord | None
    started_at: str
    ended_at: str
    duration_s: float | None
    probe_interval_s: float
    stable_for_s: float
    timeout_s: float
    phases: list[PhaseRecord]
    #: The drill's events in order (see drillbook.drillstate.DrillState._event).
    timeline: list[dict[str, Any]]
    steps: list[StepRecord]
    runbook_import: dict[str, Any] | None
    measures: MeasuresRecord
    checks: list[CheckRecord]
    #: passed | failed | aborted | error (drillbook.model.Verdict).
    verdict: str
    reasons: list[str]
    guards: list[GuardRecord]
    reverts: list[RevertRecord]
    #: A hold drill's outcome (drillbook.hold).
    hold: NotRequired[dict[str, Any]]
    #: The scenario's ``expect:`` verdict, when it declares one.
    expected_verdict: NotRequired[str]
    #: An alert drill's outcome per expected alert.
    alerts: NotRequired[list[dict[str, Any]]]
    #: A dry run's record: nothing ran, so it enters neither the journal's drills nor history.
    dry_run: NotRequired[bool]

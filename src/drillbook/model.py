"""The nouns of a drill, as frozen dataclasses.

Scenarios (YAML) and Python drills both end up as these objects, so the engine has one input
shape. They are frozen because a drill's definition must not change while it runs: what the
journal says was planned is what ran.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "DEFAULT_ALERT_TARGETS_S",
    "DEFAULT_RESPONSE_TARGETS_S",
    "AlertSpec",
    "AlertsSpec",
    "FaultSpec",
    "GuardSpec",
    "LedgerSpec",
    "Objectives",
    "ProbeResult",
    "ProbeSpec",
    "RecoveryKind",
    "RecoverySpec",
    "Scenario",
    "Severity",
    "TargetSpec",
    "Verdict",
]


class Verdict(enum.StrEnum):
    """How a drill ended (the rules are in :mod:`drillbook.timeline`)."""

    PASSED = "passed"  # RTA <= RTO, RPA <= RPO, every check held
    FAILED = "failed"  # an objective was missed
    ABORTED = "aborted"  # a guard tripped or a signal arrived; reverted
    ERROR = "error"  # harness/setup broke, or the target was unhealthy before injection


class Severity(enum.StrEnum):
    P0 = "P0"
    P1 = "P1"
    P2 = "P2"
    P3 = "P3"


#: Time-to-detect targets per severity, overridable in drillbook.yaml (defaults.response_targets).
DEFAULT_RESPONSE_TARGETS_S: Mapping[str, float] = {
    "P0": 15 * 60.0,
    "P1": 3600.0,
    "P2": 4 * 3600.0,
    "P3": 24 * 3600.0,
}


#: Alert drills: time to alert, to notify and to acknowledge per severity (the runbooks' P0-P3
#: matrix), overridable in drillbook.yaml (``backends.monitoring.response_targets``) and per
#: scenario (``alerts.targets``).
DEFAULT_ALERT_TARGETS_S: Mapping[str, Mapping[str, float]] = {
    "P0": {"tta": 5 * 60.0, "ttn": 5 * 60.0, "ttack": 15 * 60.0},
    "P1": {"tta": 15 * 60.0, "ttn": 15 * 60.0, "ttack": 60 * 60.0},
    "P2": {"tta": 60 * 60.0, "ttn": 60 * 60.0, "ttack": 4 * 3600.0},
    "P3": {"tta": 4 * 3600.0, "ttn": 4 * 3600.0, "ttack": 24 * 3600.0},
}


class RecoveryKind(enum.StrEnum):
    AUTOMATIC = "automatic"  # the platform recovers; drillbook only waits
    SCRIPTED = "scripted"  # drillbook runs the step and times it
    MANUAL = "manual"  # an operator does it; drillbook prompts and times it


@dataclass(frozen=True)
class TargetSpec:
    """A named thing under drill, as configured in drillbook.yaml ``targets:``."""

    name: str
    backend: str
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Objectives:
    """What the drill must achieve. ``None`` means "not judged"."""

    rto_s: float | None = None
    rpo_s: float | None = None
    severity: Severity = Severity.P2
    response_target_s: float | None = None  # TTD must be <= this; from severity unless given
    controls: tuple[str, ...] = ()
    #: RTO/RPO to be read, when the drill starts, from an AWS Resilience Hub resiliency policy:
    #: ``{"arn": ..., "disruption": "AZ" | "Hardware" | "Software" | "Region"}``.
    resiliency_policy: Mapping[str, str] | None = None


@dataclass(frozen=True)
class FaultSpec:
    type: str
    params: Mapping[str, Any] = field(default_factory=dict)
    targets: tuple[str, ...] = ()  # target names from the config
    ttl_s: float | None = None


@dataclass(frozen=True)
class ProbeSpec:
    type: str
    name: str
    params: Mapping[str, Any] = field(default_factory=dict)
    targets: tuple[str, ...] = ()


@dataclass(frozen=True)
class RecoverySpec:
    kind: RecoveryKind
    type: str | None = None  # registered step name; None for automatic/manual
    name: str = ""
    params: Mapping[str, Any] = field(default_factory=dict)
    targets: tuple[str, ...] = ()
    instruction: str = ""  # what the operator must do (manual)
    timeout_s: float | None = None


@dataclass(frozen=True)
class GuardSpec:
    """A stop condition: a probe that must keep passing while the drill runs."""

    probe: ProbeSpec
    max_failures: int = 1


@dataclass(frozen=True)
class LedgerSpec:
    """The RPO writer: which backend, which target, how fast."""

    type: str
    params: Mapping[str, Any] = field(default_factory=dict)
    targets: tuple[str, ...] = ()
    rate_per_s: float = 50.0


@dataclass(frozen=True)
class AlertSpec:
    """One alert an alert drill expects to fire (or to stay silent): name plus label matchers."""

    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    #: Expected alerts: the notification must reach drillbook's receiver (TTN).
    notify: bool = True
    #: How a person acknowledges: None (not asked), "silence" (an Alertmanager silence that
    #: matches the alert) or "answer" (a prompt, or ``--drill-answer 'ack NAME=done'``).
    ack: str | None = None


@dataclass(frozen=True)
class AlertsSpec:
    """The alert part of a scenario: what the team's monitoring must say about the fault."""

    expect: tuple[AlertSpec, ...] = ()
    silent: tuple[AlertSpec, ...] = ()
    #: Targets drillbook registers with Prometheus (file_sd) for the drill: their ``/metrics``.
    scrape: tuple[str, ...] = ()
    poll_interval_s: float = 0.25
    #: Per-measure response targets (``tta``/``ttn``/``ttack``), over the severity's defaults.
    targets_s: Mapping[str, float] = field(default_factory=dict)
    #: How long to wait, after recovery, for the expected alerts to resolve.
    resolve_timeout_s: float = 60.0


@dataclass(frozen=True)
class Scenario:
    """One declarative drill (scenarios/*.yaml) or the plan a Python drill builds."""

    id: str
    description: str = ""
    runbook: str = ""
    #: set when the scenario was imported from a Markdown runbook (drillbook.runbook): its hash,
    #: shape, rollback steps, and a ``warning`` when the file changed since the import
    runbook_import: Mapping[str, Any] | None = None
    source: str = ""  # file it came from, for error messages and the journal
    backends: tuple[str, ...] = ()
    targets: tuple[str, ...] = ()
    fault: FaultSpec | None = None
    probes: tuple[ProbeSpec, ...] = ()
    steady_state: tuple[ProbeSpec, ...] = ()  # empty: use probes
    recovery: tuple[RecoverySpec, ...] = ()
    verify: tuple[ProbeSpec, ...] = ()
    guards: tuple[GuardSpec, ...] = ()
    ledger: LedgerSpec | None = None
    objectives: Objectives = field(default_factory=Objectives)
    probe_interval_s: float | None = None
    stable_for_s: float | None = None
    timeout_s: float | None = None
    tags: tuple[str, ...] = ()
    #: ``recover`` (inject -> detect -> recover) or ``hold`` (hold the fault for ``hold_s`` while
    #: the probes, the SLO, must keep passing; then revert and time the return to steady state).
    shape: str = "recover"
    hold_s: float | None = None
    allow_relapse: bool = False  # a failure after recovery is reported but does not fail it
    alerts: AlertsSpec | None = None
    #: The verdict the scenario is meant to end with (a drill that proves a blind spot is meant
    #: to fail); None: passed. The test passes when the verdict is this one.
    expect: Verdict | None = None


@dataclass(frozen=True)
class ProbeResult:
    """One health check. Probes return this; they never raise for an unhealthy target."""

    ok: bool
    latency_s: float = 0.0
    detail: str = ""
    value: Any = None

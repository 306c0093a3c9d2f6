"""What one drill holds while it runs, and the helpers every part of it uses to journal.

:class:`DrillState` is the base of :class:`drillbook.engine.Drill`: the lifecycle core in
engine.py and each part beside it (sampling, watchdogs, target locks, reverting, alerts,
recovery steps, the record) read and write this one state, so a part moved out of the engine
keeps the attributes it always had.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from drillbook.backends.base import Fault, Ledger, LedgerMeasure, Probe, Registry, get_registry
from drillbook.clock import Clock, get_clock, utc_iso
from drillbook.config import Config
from drillbook.errors import ConfigError, DrillbookError
from drillbook.intents import Intent, IntentLedger
from drillbook.journal import RunJournal
from drillbook.locks import Arbiter, TargetLock
from drillbook.locks_pg import arbiter_for
from drillbook.model import (
    FaultSpec,
    Objectives,
    ProbeSpec,
    Scenario,
    Verdict,
)
from drillbook.probing import NamedProbe, ProbeScheduler
from drillbook.record import DrillRecord, RevertRecord, TargetRecord
from drillbook.redact import redact
from drillbook.seams import Seams
from drillbook.timeline import Check, Measures, Sample
from drillbook.watchdog import Watchdog
from drillbook.wiring import context_for

__all__ = ["DrillResult", "DrillState", "DryRun", "SteadyStateFailed"]


class SteadyStateFailed(DrillbookError):
    """The target was unhealthy before injection: verdict ``error``, nothing injected."""


class DryRun(DrillbookError):
    """``--drill-dry-run``: the plan was resolved and printed; nothing was touched."""


@dataclass
class _Injected:
    spec: FaultSpec
    fault: Fault
    intent: Intent
    plan: str
    resolved: tuple[str, ...]
    watchdog: Watchdog | None = None
    reverted: bool = False


@dataclass
class _Phase:
    name: str
    start: float
    end: float | None = None


@dataclass
class _Step:
    name: str
    kind: str
    type: str | None
    start: float
    duration: float
    ok: bool
    detail: str
    result: str = ""  # manual steps: done | failed | skipped (drillbook.operator)
    note: str = ""
    instruction: str = ""
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class _Guard:
    name: str
    probe: Probe
    max_failures: int
    failures: int = 0
    tripped: bool = False


@dataclass
class DrillResult:
    verdict: Verdict
    reasons: list[str]
    record: DrillRecord


class DrillState:
    """The drill's inputs, clocks and everything it has seen so far."""

    def __init__(
        self,
        drill_id: str,
        config: Config,
        *,
        journal: RunJournal | None = None,
        objectives: Objectives | None = None,
        scenario: Scenario | None = None,
        nodeid: str = "",
        registry: Registry | None = None,
        clock: Clock | None = None,
        progress_stream: IO[str] | None = None,
        on_plan: Callable[[str], None] | None = None,
        seams: Seams | None = None,
    ) -> None:
        self.id = drill_id
        #: The features wired in (drillbook.seams); the plugin and the runner pass them all.
        self.seams = seams if seams is not None else Seams()
        self.config = config
        self.journal = journal
        self.scenario = scenario
        self.objectives = objectives or (scenario.objectives if scenario else Objectives())
        self._objectives_error: DrillbookError | None = None
        if self.objectives.resiliency_policy:
            self.objectives = self._objectives_from_policy(self.objectives)
        self.nodeid = nodeid
        self.registry = registry or get_registry()
        self.clock = clock or get_clock()
        self.progress_stream = progress_stream
        self.on_plan = on_plan
        self.intents = IntentLedger(config.intent_ledger)

        self.interval = (
            scenario.probe_interval_s if scenario else None
        ) or config.defaults.probe_interval_s
        self.stable_for = (
            scenario.stable_for_s
            if scenario and scenario.stable_for_s is not None
            else config.defaults.stable_for_s
        )
        self.timeout = self._timeout()
        self.started_mono = self.clock.monotonic()
        self.started_at = utc_iso(self.clock.wall())
        self.deadline = self.started_mono + self.timeout

        self._lock = threading.Lock()
        self._samples: list[Sample] = []
        self._sample_arrived = threading.Event()
        self._measure_cost_s = 0.0  # how long the last _measure_now took (see _await_sample)
        self._failure_seen = False  # a non-guard sample failed after t_inject (see _on_sample)
        # Whether a passing sample wakes a waiting drill: detection changes only on a failing
        # one, and at 1,000 probes a wake per sample kept the main thread contending for the GIL.
        self._wake_on_pass = True
        self._probe_specs: list[ProbeSpec] = []
        self._probes: list[NamedProbe] = []
        self._scheduler: ProbeScheduler | None = None
        self._guards: list[_Guard] = []
        self._injected: list[_Injected] = []
        #: A watchdog started before the intent it will watch exists: (intent id, watchdog).
        self._spare_watchdog: tuple[str, Watchdog] | None = None
        self._to_reap: list[Watchdog] = []  # watchdogs killed after a revert
        #: One drill per target: the locks this drill holds, by target name (see drillbook.locks).
        self.arbiter: Arbiter = arbiter_for(config)  # shared when the history is PostgreSQL
        self._locks: dict[str, TargetLock] = {}
        self._phases: list[_Phase] = []
        self._steps: list[_Step] = []
        self._timeline: list[dict[str, Any]] = []
        self._checks: list[Check] = []
        self._reverts: list[RevertRecord] = []
        self._targets: dict[str, TargetRecord] = {}
        self._ledger: Ledger | None = None
        self._ledger_measure: LedgerMeasure | None = None
        self._t_inject: float | None = None
        self._t_inject_epoch: float | None = None
        self._t_detect: float | None = None
        self._t_recovered: float | None = None
        self._t_verified: float | None = None
        self._t_revert_confirmed: float | None = None
        self._measures: Measures | None = None
        self._await_done = False
        self._plans: list[str] = []
        self._hold: dict[str, Any] | None = None  # a hold drill's outcome (drillbook.hold)
        self._alerts: Any = None  # an alert drill's AlertWatch (drillbook.backends.monitoring)
        self.result: DrillResult | None = None
        self._progress_cls: Any = None

    def _objectives_from_policy(self, objectives: Objectives) -> Objectives:
        """RTO/RPO from the AWS Resilience Hub policy the scenario names, read when the drill
        starts so the drill is judged against what the policy says today."""
        import dataclasses

        policy = objectives.resiliency_policy or {}
        if self.seams.policy_objectives is None:  # never judged without the policy's RTO/RPO
            self._objectives_error = ConfigError(
                f"resiliency policy {policy.get('arn')}: no resiliency-policy provider is wired "
                "into this drill (build it with seams=drillbook.features.wired_seams())"
            )
            return objectives
        try:
            rto, rpo = self.seams.policy_objectives()(
                self.config.backend_settings("aws"), policy["arn"], policy["disruption"]
            )
        except DrillbookError as exc:
            self._objectives_error = exc
            return objectives
        except Exception as exc:
            self._objectives_error = ConfigError(f"resiliency policy {policy.get('arn')}: {exc}")
            return objectives
        return dataclasses.replace(objectives, rto_s=rto, rpo_s=rpo)

    def _timeout(self) -> float:
        if self.scenario and self.scenario.timeout_s:
            return self.scenario.timeout_s
        if self.config.defaults.timeout_s:
            return self.config.defaults.timeout_s
        if self.objectives.rto_s:
            return self.objectives.rto_s * 2 + 30.0
        return 300.0

    def _now(self) -> float:
        return self.clock.monotonic()

    def _check_locks(self) -> None:
        """A stop condition: see :meth:`drillbook.target_locks.TargetHolding._check_locks`."""

    def _off(self, mono: float | None = None) -> float:
        return round((self._now() if mono is None else mono) - self.started_mono, 6)

    def _event(self, kind: str, **data: Any) -> None:
        entry = {"t": utc_iso(self.clock.wall()), "offset_s": self._off(), "kind": kind, **data}
        with self._lock:
            self._timeline.append(redact(entry))
        if self.journal is not None:
            self.journal.event(kind, drill=self.id, offset_s=entry["offset_s"], **data)

    @contextlib.contextmanager
    def _phase(self, name: str) -> Any:
        phase = _Phase(name, self._now())
        self._phases.append(phase)
        self._event("phase", phase=name, detail="start")
        try:
            yield
        finally:
            phase.end = self._now()

    def _ctx_for(self, backend: str, params: Mapping[str, Any], targets: Sequence[str]) -> Any:
        return context_for(
            self.config, backend, params, targets, clock=self.clock, deadline=self.deadline
        )

    def _build_probe(self, spec: ProbeSpec) -> Probe:
        reg = self.registry.probe(spec.type)
        self._need_backend(reg.backend)
        return reg.factory(self._ctx_for(reg.backend, spec.params, spec.targets))

    def _need_backend(self, backend: str) -> None:
        if backend in self.registry.broken:
            raise ConfigError(f"backend {backend} failed to load: {self.registry.broken[backend]}")

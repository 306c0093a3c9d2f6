"""The drill lifecycle: steady state → inject → detect → recover → verify → revert → verdict.

A :class:`Drill` is driven step by step, by a Python drill through the ``drill`` fixture or by
:meth:`Drill.run_scenario` for a YAML scenario: one engine, two ways to author. It sees faults,
probes, steps and ledgers only through :mod:`drillbook.backends.base`. Whatever happens —
pass, fail, exception, SIGINT/SIGTERM/SIGHUP — :meth:`Drill.finish` reverts every injected fault,
and the intent ledger plus a TTL watchdog cover the case where this process cannot.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from drillbook.backends.base import Fault, Ledger, LedgerMeasure, Probe, Registry, get_registry
from drillbook.clock import Clock, SystemClock, get_clock, utc_iso
from drillbook.config import Config
from drillbook.durations import format_duration
from drillbook.errors import (
    ConfigError,
    DrillAborted,
    DrillbookError,
    FaultError,
    RecoveryError,
    SafetyError,
)
from drillbook.intents import Intent, IntentLedger
from drillbook.journal import RunJournal
from drillbook.locks import Arbiter, Holder, TargetLock
from drillbook.locks_pg import arbiter_for
from drillbook.model import (
    FaultSpec,
    LedgerSpec,
    Objectives,
    ProbeResult,
    ProbeSpec,
    RecoveryKind,
    RecoverySpec,
    Scenario,
    Verdict,
)
from drillbook.operator import ManualOutcome, StepInfo, open_tty
from drillbook.probing import NamedProbe, ProbeScheduler, run_once
from drillbook.redact import redact, redact_text
from drillbook.rollback import backoff, still_injected
from drillbook.safety import Interrupted, check_blast_radius, check_environment
from drillbook.timeline import Check, Measures, Sample, compute_measures, judge
from drillbook.watchdog import Watchdog
from drillbook.wiring import context_for

__all__ = ["Drill", "DryRun", "SteadyStateFailed"]

#: How long inject waits for its watchdog to say it is ready (it was started before the steady
#: state, so it usually is already).
_WATCHDOG_READY_S = 60.0


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


def _manual_result(spec: RecoverySpec, ok: bool) -> str:
    """A manual step answered by --answer or the plain prompt: done, or failed."""
    if spec.kind is not RecoveryKind.MANUAL:
        return ""
    return "done" if ok else "failed"


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
    record: dict[str, Any] = field(default_factory=dict)


class Drill:
    """One drill. Use the authoring methods in lifecycle order; always end with :meth:`finish`."""

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
    ) -> None:
        self.id = drill_id
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
        self._reverts: list[dict[str, Any]] = []
        self._targets: dict[str, dict[str, Any]] = {}
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
        self._progress_cls = self._load_progress()
        self._event("drill_start", scenario=scenario.id if scenario else None, nodeid=nodeid)
        self._tell_team("start")

    # ------------------------------------------------------------------ helpers
    def _objectives_from_policy(self, objectives: Objectives) -> Objectives:
        """RTO/RPO from the AWS Resilience Hub policy the scenario names, read when the drill
        starts so the drill is judged against what the policy says today."""
        import dataclasses
        import importlib

        policy = objectives.resiliency_policy or {}
        try:
            module = importlib.import_module("drillbook.backends.aws.resiliencehub")
            rto, rpo = module.policy_objectives(
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

    def _on_sample(self, sample: Sample, result: ProbeResult) -> None:
        # Runs on the probe loop for every sample (10,000 a second with 1,000 probes at 10 Hz):
        # each value is computed once and shared by the timeline entry and the journal event.
        detail = redact_text(sample.detail)[:300]
        latency = round(result.latency_s, 6)
        offset, end_offset = self._off(sample.start), self._off(sample.end)
        t = utc_iso(self.clock.wall())
        entry = {
            "t": t,
            "offset_s": offset,
            "kind": "probe",
            "probe": sample.probe,
            "ok": sample.ok,
            "latency_s": latency,
            "end_offset_s": end_offset,
            "detail": detail,
        }
        value = result.value if isinstance(result.value, int | float) else None
        if value is not None:  # a measured probe (an SLO's share, a percentile): reports draw it
            entry["value"] = value
        with self._lock:
            self._samples.append(sample)
            self._timeline.append(entry)
        if (
            not sample.ok
            and self._t_inject is not None
            and sample.start >= self._t_inject
            and not sample.probe.startswith("guard:")
        ):
            self._failure_seen = True  # await_detection measures only once this is true
        if self._wake_on_pass or not sample.ok:
            self._sample_arrived.set()
        if self.journal is not None:
            self.journal.probe_event(
                drill=self.id,
                t=t,
                probe=sample.probe,
                ok=sample.ok,
                latency_s=latency,
                offset_s=offset,
                end_offset_s=end_offset,
                detail=detail,
                value=value,
            )
        for guard in self._guards:
            if guard.name == sample.probe and not sample.ok:
                guard.failures += 1

    # ------------------------------------------------------------------ authoring API
    def watch(self, *probes: ProbeSpec) -> None:
        """Add probes that define "healthy" for detection and recovery."""
        for spec in probes:
            if any(p.name == spec.name for p in self._probes):
                continue
            self._probe_specs.append(spec)
            self._probes.append(NamedProbe(spec.name, self._build_probe(spec)))

    def guard(self, spec: ProbeSpec, max_failures: int = 1) -> None:
        """A stop condition: if this probe fails ``max_failures`` times, abort and revert."""
        probe = self._build_probe(spec)
        name = f"guard:{spec.name}"
        self._guards.append(_Guard(name, probe, max_failures))
        self._probes.append(NamedProbe(name, probe))

    def use_ledger(self, spec: LedgerSpec) -> None:
        """Start the RPO writer now, so there are acknowledged writes before the fault."""
        reg = self.registry.ledger(spec.type)
        self._need_backend(reg.backend)
        params = {**spec.params, "rate_per_s": spec.rate_per_s}
        ledger = reg.factory(self._ctx_for(reg.backend, params, spec.targets))
        if self.config.dry_run:  # a dry run writes nothing anywhere: no table, no rows
            self._event("plan", ledger=spec.type, plan="would start the RPO ledger")
            if self.on_plan:
                self.on_plan(f"[dry run] {self.id}: would write the {spec.type} ledger")
            return
        ledger.start()
        self._ledger = ledger
        self._event("ledger_start", ledger=spec.type, rate_per_s=spec.rate_per_s)

    def _await_ledger_history(self) -> None:
        """Before the fault, let the ledger write for longer than the RPO: a loss older than its
        first write cannot be seen, so a shorter history could pass a drill that lost more than
        the RPO (issue 21: 13.7 s lost, 1.3 s of history, RPA 1.33 s reported). Bounded: a
        ledger that cannot write at all is judged in finish()."""
        ledger, rpo = self._ledger, self.objectives.rpo_s
        if ledger is None or rpo is None:
            return
        margin = 2.0 / max(ledger.rate_per_s, 0.1)
        give_up = self._now() + rpo + margin + 30.0
        while self._now() < give_up:
            first = ledger.history_start()
            if first is not None and time.time() - first > rpo + margin:
                return
            self.clock.sleep(0.05)

    def steady_state(self, *probes: ProbeSpec, warmup_s: float = 0.0) -> None:
        """Check the target is healthy before anything is injected; unhealthy → verdict error."""
        with self._phase("steady_state"):
            if self._objectives_error is not None:
                raise self._objectives_error
            if probes:
                self.watch(*probes)
            checks = [NamedProbe(p.name, p.probe) for p in self._probes]
            if not checks:
                raise ConfigError("steady_state needs at least one probe", field="probes")
            if self.config.dry_run:  # probes may write (an app's /health): plan only
                self._event("plan", probes=[c.name for c in checks], plan="steady state skipped")
                return
            if warmup_s > 0:
                self.clock.sleep(warmup_s)
            timeout = self.config.defaults.probe_timeout_s
            scheduler = self._probe_scheduler()
            if scheduler.driving:  # asked again after inject: the ticks own the connections
                results = run_once(checks, timeout)
            else:  # on the loop the ticks will use, leaving its connections open for them
                found = scheduler.check_all(timeout)
                results = [(p.name, r) for p, r in zip(scheduler.probes, found, strict=True)]
            bad = [(n, r) for n, r in results if not r.ok]
            for name, result in results:
                self._event(
                    "probe",
                    probe=name,
                    ok=result.ok,
                    detail=result.detail[:300],
                    phase="steady_state",
                )
            if bad:
                detail = "; ".join(f"{n}: {r.detail or 'not ok'}" for n, r in bad)
                raise SteadyStateFailed(f"unhealthy before injection, nothing injected: {detail}")

    def _probe_scheduler(self) -> ProbeScheduler:
        """The scheduler of every probe so far; one opened before more probes were added (a
        Python drill may watch more after its steady state) is replaced while it is not ticking."""
        sched = self._scheduler
        if sched is not None and not sched.driving and len(sched.probes) != len(self._probes):
            sched.stop()
            sched = None
        if sched is None:
            sched = self._scheduler = ProbeScheduler(
                self._probes,
                interval=self.interval,
                timeout=self.config.defaults.probe_timeout_s,
                on_sample=self._on_sample,
                clock=self.clock,
            )
        return sched

    def _start_probes(self) -> None:
        if self._probes and (self._scheduler is None or not self._scheduler.driving):
            self._probe_scheduler().start()

    def _kick_probes(self) -> None:
        """Look now rather than at the next tick (see ProbeScheduler.kick)."""
        if self._scheduler is not None:
            self._scheduler.kick()

    def inject(self, spec: FaultSpec) -> None:
        """Check safety, record the intent, inject, and wait until the fault is verified."""
        with self._phase("inject"):
            reg = self.registry.fault(spec.type)
            self._need_backend(reg.backend)
            ctx = self._ctx_for(reg.backend, spec.params, spec.targets)
            fault = reg.factory(ctx)
            read_only = fault.read_only
            check_environment(self.config, read_only=read_only)
            selection = fault.resolve()
            check_blast_radius(selection, self.config, read_only=read_only, fault_type=spec.type)
            fault.preflight()
            plan = fault.plan()
            self._plans.append(plan)
            for name in spec.targets:
                t = self.config.target(name)
                self._targets.setdefault(name, {"name": name, "backend": t.backend, "resolved": []})
                self._targets[name]["resolved"] = list(selection.chosen)
            # The seed of a random subset goes in the journal: `seed:` replays the drill.
            seeded = {} if selection.seed is None else {"seed": selection.seed}
            self._event(
                "plan", fault=spec.type, plan=plan, resolved=list(selection.chosen), **seeded
            )
            if self.config.dry_run:
                if self.on_plan:
                    seed_note = f" (seed {selection.seed})" if seeded else ""
                    self.on_plan(f"[dry run] {self.id}: would inject {spec.type}: {plan}{seed_note}")
                raise DryRun(f"dry run: would inject {spec.type}: {plan}")

            self._await_ledger_history()

            ttl = spec.ttl_s or self.config.safety.fault_ttl_s
            self._hold_targets(spec.targets, ttl)
            intent_id, watchdog = self._live_watchdog()
            self._start_probes()
            now_epoch = time.time()
            intent = Intent(
                id=intent_id,
                run_id=self.journal.run_id if self.journal else "adhoc",
                drill=self.id,
                fault_type=spec.type,
                params=dict(spec.params),
                targets=tuple(spec.targets),
                config_path=str(self.config.config_path) if self.config.config_path else None,
                workdir=str(self.config.workdir),
                environment=self.config.environment,
                created_at=now_epoch,
                expires_at=now_epoch + ttl,
                plan=plan,
                # What resolve() already knows (pids, names): a crash mid-inject can still be
                # reverted from it.
                state=dict(fault.state()),
            )
            self.intents.record(intent)
            self._spare_watchdog = None
            injected = _Injected(spec, fault, intent, plan, selection.chosen, watchdog)
            self._injected.append(injected)
            self._event("intent", intent=intent.id, fault=spec.type, ttl_s=ttl, plan=plan)
            try:
                fault.inject()
            finally:
                # Whatever inject managed to do, remember how to undo it.
                with contextlib.suppress(Exception):
                    self.intents.injected(intent.id, fault.state())
            verify_by = self._now() + min(30.0, max(5.0, self.timeout / 4))
            # t_inject is when the fault is seen: first looks come fast (a killed process is
            # usually gone within a millisecond), so the stamp is not a poll period late.
            pause = 0.0005
            while not fault.verify_injected():
                if self._now() > verify_by:
                    raise FaultError(
                        f"{spec.type}: inject returned but the fault is not observable"
                    )
                self.clock.sleep(pause)
                pause = min(pause * 2, 0.005)
            self._t_inject = self._now()
            self._t_inject_epoch = time.time()
            self._kick_probes()  # the first failing look is TTD: take it now, not a tick later
            self._event("inject", fault=spec.type, plan=plan, intent=intent.id)

    def _hold_targets(self, targets: Sequence[str], ttl_s: float) -> None:
        """Take the lock of every target not held yet, then refuse a target that still has a
        fault pending from an earlier run (a crashed holder's): drilling over it would measure
        that fault and could revert it under its owner. Dry runs touch nothing, locks included."""
        if self.config.dry_run:
            return
        now = time.time()
        holder = Holder.me(
            self.journal.run_id if self.journal else "adhoc",
            self.id,
            now,
            self.timeout + ttl_s,
        )
        for name in sorted(set(targets) - set(self._locks)):
            lock = self.arbiter.acquire(name, holder)
            self._locks[name] = lock
            if lock.taken_over is not None:
                line = f"took over target {name!r} from {lock.taken_over.describe()}: it is gone"
                self._event("lock", target=name, taken_over=True, detail=line)
                print(f"[drillbook] {self.id}: {line}", file=sys.stderr)
            else:
                self._event("lock", target=name, taken_over=False)
            mine = {i.intent.id for i in self._injected}
            left = [i for i in self.intents.pending() if name in i.targets and i.id not in mine]
            if left:
                old = left[0]
                raise SafetyError(
                    f"target {name!r} still has {old.fault_type} pending from run {old.run_id} "
                    f"(intent {old.id}, {old.status}, pid {old.pid} on {old.host}): run "
                    f"`drillbook rollback` first"
                )

    def _release_targets(self) -> None:
        """Free every held target; a target whose fault is not known reverted keeps its
        holder's record (the next drill finds it, and the pending intent refuses it)."""
        failed = {t for i in self._injected if not i.reverted for t in i.spec.targets}
        locks, self._locks = self._locks, {}
        for name, lock in locks.items():
            with contextlib.suppress(OSError):
                lock.release(clean=name not in failed)

    def _spawn_watchdog(self, intent_id: str) -> Watchdog | None:
        """The TTL watchdog of intent ``intent_id``, started before this drill records it (it
        leaves if none comes). None when it could not be started."""
        from drillbook.watchdog import spawn

        try:
            return spawn(
                self.config.intent_ledger,
                intent_id,
                self.config.state_dir / "watchdog.log",
                before_intent_s=max(60.0, 2 * self.timeout),
            )
        except OSError as exc:
            self._event("watchdog", live=False, detail=f"could not start: {exc}")
            return None

    def _live_watchdog(self) -> tuple[str, Watchdog | None]:
        """The id of the intent about to be recorded, and its watchdog, ready.

        A fault is not injected without a live watchdog: if this process dies, nothing else
        would revert it before someone runs rollback. Only ``safety.watchdog: false`` (or
        ``DRILLBOOK_NO_WATCHDOG=1``) lets a drill go without one, and the journal says so."""
        spare, self._spare_watchdog = self._spare_watchdog, None
        safety = self.config.safety
        if not safety.watchdog:
            if spare is not None:
                spare[1].stop()
                self._to_reap.append(spare[1])
            intent_id = spare[0] if spare is not None else Intent.new_id()
            self._event("watchdog", live=False, allowed_by=safety.watchdog_off_by)
            return intent_id, None
        if spare is None:
            intent_id = Intent.new_id()
            watchdog = self._spawn_watchdog(intent_id)
        else:
            intent_id, watchdog = spare
        if watchdog is None or not watchdog.wait_ready(_WATCHDOG_READY_S):
            if watchdog is not None:
                watchdog.stop()
                self._to_reap.append(watchdog)
            raise SafetyError(
                "no live TTL watchdog: refusing to inject a fault nothing would revert if this "
                f"process died (see {self.config.state_dir / 'watchdog.log'}); set "
                "`safety.watchdog: false` to drill without one"
            )
        self._event("watchdog", live=True, pid=watchdog.proc.pid, intent=intent_id)
        return intent_id, watchdog

    def _start_watchdog_early(self) -> None:
        """Start the next inject's watchdog now, before the steady-state check: an interpreter
        starting beside the inject would cost it CPU inside the measured window."""
        if (
            self._spare_watchdog is not None
            or self.config.dry_run
            or not self.config.safety.watchdog
        ):
            return
        intent_id = Intent.new_id()
        proc = self._spawn_watchdog(intent_id)
        if proc is not None:
            self._spare_watchdog = (intent_id, proc)

    def _drop_spare_watchdog(self) -> None:
        spare, self._spare_watchdog = self._spare_watchdog, None
        if spare is not None:
            spare[1].stop()
            spare[1].reap()

    def mark_start(self) -> None:
        """For drills without a fault (e.g. backup verification): t_inject is now."""
        if self.config.dry_run:  # the recovery steps of a drill without a fault change things
            if self.on_plan:
                self.on_plan(f"[dry run] {self.id}: would start the clock and run recovery")
            raise DryRun("dry run: no fault; would start the clock and run the recovery steps")
        self._await_ledger_history()
        self._start_probes()
        self._t_inject = self._now()
        self._t_inject_epoch = time.time()
        self._event("inject", fault=None, detail="no fault: the clock starts with recovery")

    def await_detection(self, timeout: float | None = None) -> bool:
        """Wait until a probe fails after injection (or ``timeout``); True if detected."""
        if self._t_inject is None:
            raise RuntimeError("await_detection() before inject()")
        self._start_probes()
        limit = self._now() + (timeout if timeout is not None else self._detect_budget())
        self._wake_on_pass = False
        with self._phase("detect"), contextlib.ExitStack() as restore:
            restore.callback(setattr, self, "_wake_on_pass", True)
            while True:
                # Nothing is detected without a failing sample after t_inject; until one
                # arrives, skip measuring (linear in the samples: costly at a thousand probes).
                m = self._measure_now() if self._failure_seen else None
                if m is not None and m.detected:
                    self._note_detect(m)
                    return True
                self._check_guards()
                if self._now() >= min(limit, self.deadline):
                    # One full look before giving up: a failing sample that landed while
                    # t_inject was being set did not raise the flag.
                    m = self._measure_now()
                    if m.detected:
                        self._note_detect(m)
                    return m.detected
                self._await_sample(min(self.interval / 2, 0.1))

    def _detect_budget(self) -> float:
        budget = self.deadline - self._now()
        if self.objectives.response_target_s:
            budget = min(budget, self.objectives.response_target_s)
        return max(0.0, budget)

    def _note_detect(self, m: Measures) -> None:
        if self._t_detect is None and m.ttd_s is not None and self._t_inject is not None:
            self._t_detect = self._t_inject + m.ttd_s
            self._event("detect", ttd_s=round(m.ttd_s, 6), probes=list(m.failing_probes))

    def _measure_now(self) -> Measures:
        assert self._t_inject is not None
        started = self.clock.monotonic()
        with self._lock:  # a slice copy only: the probe loop waits on this lock
            snapshot = self._samples[:]
        samples = [s for s in snapshot if not s.probe.startswith("guard:")]
        if not self._injected and self._steps:
            # No fault: nothing is recovered before the runbook's steps are done, so only samples
            # taken after the last step count (else a healthy source would make RTA zero).
            floor = max(st.start + st.duration for st in self._steps)  # automatic: duration 0
            samples = [s for s in samples if s.start >= floor]
        measures = compute_measures(
            samples,
            self._t_inject,
            self.stable_for,
            now=self._now(),
            has_fault=bool(self._injected),
        )
        self._measure_cost_s = self.clock.monotonic() - started
        return measures

    def _await_sample(self, at_most: float) -> None:
        """Wait until the next probe sample arrives, or ``at_most`` seconds.

        Detection and recovery are computed from samples only, so the moment a sample lands is
        the earliest either can change: waking on it ends the wait without the up-to-a-poll lag
        a fixed sleep added (half an interval per wait). The measures are not affected; guards,
        the deadline and the progress line are still looked at every ``at_most`` seconds. A fake
        clock (tests) moves only when slept on, so it keeps the plain sleep."""
        if not isinstance(self.clock, SystemClock):
            self.clock.sleep(at_most)
            return
        # Measuring is linear in the samples so far: with a thousand probes a wake per sample,
        # or even one per poll, would take a core from the probe loop. Waiting nine times the
        # last measuring cost first keeps it under a tenth of a core, even past ``at_most``; only
        # the reaction is later (by 9x the cost, at most 1 s), never the measures (they come
        # from the samples' own times).
        gap = min(9.0 * self._measure_cost_s, 1.0)
        if gap >= 0.0005:
            self.clock.sleep(gap)
        if gap < at_most:
            self._sample_arrived.wait(at_most - gap)
        self._sample_arrived.clear()

    def _check_guards(self) -> None:
        for guard in self._guards:
            if not guard.tripped and guard.failures >= guard.max_failures:
                guard.tripped = True
                self._event("guard", guard=guard.name, failures=guard.failures, tripped=True)
                raise DrillAborted(f"guard {guard.name} failed {guard.failures} times: aborting")

    def _step_info(self, spec: RecoverySpec) -> StepInfo:
        s = self.scenario
        total = len(s.recovery) if s is not None and spec in s.recovery else len(self._steps) + 1
        return StepInfo(
            drill_id=self.id,
            index=len(self._steps) + 1,
            total=max(total, len(self._steps) + 1),
            name=spec.name,
            kind=spec.kind.value,
            instruction=spec.instruction,
            params=spec.params,
            t_zero_mono=self._t_inject,
            rto_s=self.objectives.rto_s,
            response_target_s=self.objectives.response_target_s,
            severity=self.objectives.severity.value,
        )

    def recover(self, spec: RecoverySpec) -> None:
        """Run one recovery step: scripted (run and timed), manual (prompted and timed)."""
        operator = self.config.operator
        info = self._step_info(spec) if operator is not None else None
        if operator is not None and info is not None:
            operator.step_started(info)
        try:
            self._recover(spec, info)
        finally:
            if operator is not None and info is not None and len(self._steps) >= info.index:
                operator.step_finished(info, self._step_record(self._steps[info.index - 1]))

    def _recover(self, spec: RecoverySpec, info: StepInfo | None) -> None:
        if spec.kind is RecoveryKind.AUTOMATIC:
            detail = "awaiting the platform's own recovery"
            self._steps.append(
                _Step(spec.name or "automatic", "automatic", None, self._now(), 0.0, True, detail)
            )
            self._event(
                "step", name=spec.name or "automatic", step_kind="automatic", ok=True, detail=detail
            )
            return
        with self._phase("recover"):
            start = self._now()
            ok, detail, result, note = True, "", "", ""
            try:
                if spec.kind is RecoveryKind.SCRIPTED:
                    assert spec.type is not None
                    reg = self.registry.recovery(spec.type)
                    self._need_backend(reg.backend)
                    deadline = (
                        self.deadline
                        if spec.timeout_s is None
                        else min(self.deadline, start + spec.timeout_s)
                    )
                    ctx = context_for(
                        self.config,
                        reg.backend,
                        spec.params,
                        spec.targets,
                        clock=self.clock,
                        deadline=deadline,
                        artifacts_dir=self.journal.dir / self.id if self.journal else None,
                    )
                    detail = reg.factory(ctx).run() or ""
                else:
                    detail, outcome = self._manual(spec, info)
                    if outcome is not None:
                        result, note = outcome.result, redact_text(outcome.note)
                        ok = outcome.result != "failed"
                        if not ok:  # the room carries on; the drill's checks fail
                            self._checks.append(
                                Check(f"runbook step {spec.name}", False, note or "failed")
                            )
            except RecoveryError as exc:
                ok, detail = False, str(exc)
                raise
            except DrillbookError as exc:
                ok, detail = False, str(exc)
                raise RecoveryError(f"{spec.name}: {exc}") from exc
            except Exception as exc:
                ok, detail = False, f"{type(exc).__name__}: {exc}"
                raise RecoveryError(f"{spec.name}: {detail}") from exc
            finally:
                duration = self._now() - start
                self._kick_probes()  # the step may have brought it back: look now
                step = _Step(
                    spec.name,
                    spec.kind.value,
                    spec.type,
                    start,
                    duration,
                    ok,
                    redact_text(detail),
                    result or _manual_result(spec, ok),
                    note,
                    redact_text(spec.instruction)[:4000],
                    redact(dict(spec.params)),
                )
                self._steps.append(step)
                extra = {"result": step.result, "note": note} if step.result else {}
                self._event(
                    "step",
                    name=spec.name,
                    step_kind=spec.kind.value,
                    type=spec.type,
                    ok=ok,
                    duration_s=round(duration, 6),
                    detail=redact_text(detail)[:500],
                    **extra,
                )

    def _manual(
        self, spec: RecoverySpec, info: StepInfo | None
    ) -> tuple[str, ManualOutcome | None]:
        answer = self.config.manual_answers.get(spec.name) or self.config.manual_answers.get("*")
        if answer is not None:
            if answer.lower() in ("fail", "failed", "no"):
                raise RecoveryError(
                    f"manual step {spec.name!r} answered as failed by --drill-answer"
                )
            return f"answered by --drill-answer: {answer}", None
        if self.config.operator is not None and info is not None:
            outcome = self.config.operator.manual_step(info)
            return f"{outcome.result} (operator)", outcome
        return self._prompt(spec), None

    def _prompt(self, spec: RecoverySpec) -> str:
        try:
            tty = open_tty()
        except OSError:
            raise RecoveryError(
                f"manual step {spec.name!r} needs an operator but there is no terminal; "
                f"answer it with --drill-answer '{spec.name}=done'"
            ) from None
        with tty:
            if not tty.isatty():
                raise RecoveryError(f"manual step {spec.name!r}: no terminal to prompt on")
            tty.write(
                f"\n[drillbook] OPERATOR STEP for {self.id}: {spec.instruction}\n"
                "Press Enter when done, or type 'fail' and Enter: "
            )
            tty.flush()
            reply = tty.readline().strip()
        if reply.lower() in ("fail", "failed", "no", "n"):
            raise RecoveryError(f"manual step {spec.name!r}: operator answered {reply!r}")
        return "confirmed by the operator at the terminal"

    def await_recovery(self, timeout: float | None = None) -> Measures:
        """Wait until every probe that failed has passed for ``stable_for`` (or the deadline)."""
        if self._t_inject is None:
            raise RuntimeError("await_recovery() before inject()")
        self._start_probes()
        limit = min(self.deadline, self._now() + timeout) if timeout is not None else self.deadline
        progress = self._progress()
        with self._phase("recover"):
            try:
                while True:
                    m = self._measure_now()
                    self._note_detect(m)
                    if m.recovered and (
                        m.detected
                        or not self._injected
                        or self._now() - self._t_inject >= self.stable_for
                    ):
                        if m.rta_s is None:
                            self._event(
                                "not_observed",
                                detail="healthy, but no probe saw the fault: no recovery time",
                            )
                        else:
                            self._t_recovered = self._t_inject + m.rta_s
                            self._event(
                                "recovered",
                                rta_s=round(m.rta_s, 6),
                                rta_bracket_s=list(m.rta_bracket_s) if m.rta_bracket_s else None,
                            )
                        self._measures = m
                        break
                    self._check_guards()
                    if self._now() >= limit:
                        self._measures = m
                        self._event(
                            "timeout",
                            detail=f"not recovered within {format_duration(limit - self._t_inject)}",
                        )
                        break
                    if progress is not None:
                        progress.update(
                            self._now() - self._t_inject, self.objectives.rto_s, self._probe_state()
                        )
                    self._await_sample(min(self.interval / 2, 0.1))
            finally:
                if progress is not None:
                    progress.close()
        self._await_done = True
        return self._measures

    def _load_progress(self) -> Any:
        """Import the progress line's class up front: importing mid-drill would hold the GIL
        while probes are due and skew their timing."""
        if self.progress_stream is None:
            return None
        import importlib

        try:
            return importlib.import_module("drillbook.report.progress").Progress
        except Exception:
            return None

    def _progress(self) -> Any:
        """The live "elapsed vs RTO" line; absent, no line."""
        if self._progress_cls is None or self.progress_stream is None:
            return None
        try:
            return self._progress_cls(
                self.progress_stream, is_tty=self.progress_stream.isatty(), label=self.id
            )
        except Exception:
            return None

    def _probe_state(self) -> str:
        latest: dict[str, bool] = {}
        with self._lock:
            for s in self._samples[-len(self._probes) * 2 :]:
                latest[s.probe] = s.ok
        return " ".join(f"{n}={'ok' if ok else 'FAIL'}" for n, ok in sorted(latest.items()))

    def verify(self, *probes: ProbeSpec) -> list[Check]:
        """Checks that must hold once recovered (row counts, data integrity)."""
        checks: list[Check] = []
        with self._phase("verify"):
            named = [NamedProbe(p.name, self._build_probe(p)) for p in probes]
            for name, result in run_once(named, max(self.config.defaults.probe_timeout_s, 10.0)):
                check = Check(f"verify:{name}", result.ok, redact_text(result.detail)[:300])
                checks.append(check)
                self._event("verify", check=check.name, ok=check.ok, detail=check.detail)
            for p in named:
                with contextlib.suppress(Exception):
                    p.probe.close()
        self._checks.extend(checks)
        if all(c.ok for c in checks):
            self._t_verified = self._now()
        return checks

    # ------------------------------------------------------------------ scenario runner
    def run_scenario(self) -> DrillResult:
        """Run the whole scenario plan; returns the result (also on failure, after revert)."""
        scenario = self.scenario
        if scenario is None:
            raise RuntimeError("run_scenario() needs a scenario")
        try:
            self._runbook_warning(scenario)
            if scenario.fault is not None:
                fault = scenario.fault
                self._hold_targets(fault.targets, fault.ttl_s or self.config.safety.fault_ttl_s)
                self._start_watchdog_early()
            self._load_factories(scenario)
            self.watch(*scenario.probes)
            for g in scenario.guards:
                self.guard(g.probe, g.max_failures)
            if scenario.ledger is not None:
                self.use_ledger(scenario.ledger)
            warmup = 1.0 if scenario.ledger is not None else 0.0
            steady = list(scenario.steady_state)
            if scenario.alerts is not None:
                self._arm_alerts(scenario)
            self.steady_state(*steady, warmup_s=warmup)
            if scenario.shape == "hold":
                from drillbook.hold import run_hold

                run_hold(self, scenario)
                return self.finish()
            if scenario.fault is not None:
                self.inject(scenario.fault)
                if self._alerts is not None:
                    self.await_alerts()
                elif any(r.kind is not RecoveryKind.AUTOMATIC for r in scenario.recovery):
                    self.await_detection()
            else:
                self.mark_start()
            for step in scenario.recovery:
                self.recover(step)
            self.await_recovery()
            if self._alerts is not None and self._t_recovered is not None:
                self._alerts.mark_recovered(self._t_recovered)
                self._alerts.await_resolved(self.deadline)
            if scenario.verify:
                self.verify(*scenario.verify)
        except BaseException as exc:
            return self.finish(exc)
        return self.finish()

    def _tell_team(self, event: str, record: Mapping[str, Any] | None = None) -> None:
        """Start/end/abort notifications and the Pushgateway export (``backends.monitoring``),
        when configured. Never fails or hangs the drill: each call is bounded by a short
        timeout, and a failure is journaled (``notify_failed`` / ``push_failed``)."""
        settings = self.config.backend_settings("monitoring")
        if self.config.dry_run or not (
            settings.get("notify")
            or settings.get("pushgateway_url")
            or os.environ.get("DRILLBOOK_PUSHGATEWAY_URL")
        ):
            return
        import importlib
        from urllib.parse import urlsplit

        run_id = self.journal.run_id if self.journal else "adhoc"
        try:
            results = importlib.import_module("drillbook.backends.monitoring.results")
            targets = results.notification_targets(settings)
            for url, error in results.notify(targets, event, self.id, run_id, record):
                # Only the host: a chat webhook's path is its secret.
                self._event(
                    "notify_failed",
                    notify_event=event,
                    host=urlsplit(url).netloc,
                    detail=redact_text(error)[:300],
                )
            push = results.pushgateway_url(settings) if record is not None else None
            if push:
                try:
                    results.push_results(push, record, run_id)
                except Exception as exc:
                    self._event(
                        "push_failed",
                        host=urlsplit(push).netloc,
                        detail=redact_text(f"{type(exc).__name__}: {exc}")[:300],
                    )
        except Exception as exc:
            self._event(
                "notify_failed",
                notify_event=event,
                detail=redact_text(f"{type(exc).__name__}: {exc}")[:300],
            )

    # ------------------------------------------------------------------ alert drills
    def _arm_alerts(self, scenario: Scenario) -> None:
        """Get the team's monitoring ready to be timed: scrape targets registered, the receiver
        listening, no expected alert left firing from before (else: verdict error)."""
        import importlib

        watch_cls = importlib.import_module("drillbook.backends.monitoring.watch").AlertWatch
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
        watch.start(self._t_inject, self._t_inject_epoch or time.time())
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

    def _runbook_warning(self, scenario: Scenario) -> None:
        """Say so when the runbook changed since the scenario was imported from it: the drill
        then practises a procedure the team no longer has."""
        info = scenario.runbook_import or {}
        warning = info.get("warning")
        if warning:
            self._event("warning", what="runbook_changed", detail=str(warning))
            if self.progress_stream is not None:
                print(f"[drillbook] WARNING {self.id}: {warning}", file=self.progress_stream)

    def _load_factories(self, s: Scenario) -> None:
        """Import the code behind every fault, probe, step and ledger the scenario names before
        anything is timed: a lazy factory imports its module on first use, and neither the
        steady-state check nor a recovery step's measured duration should include an import."""
        registry = self.registry
        wanted: list[tuple[Mapping[str, Any], str | None]] = [
            *((registry.probes, p.type) for p in (*s.probes, *s.steady_state, *s.verify)),
            *((registry.probes, g.probe.type) for g in s.guards),
            *((registry.recoveries, r.type) for r in s.recovery),
            (registry.faults, s.fault.type if s.fault else None),
            (registry.ledgers, s.ledger.type if s.ledger else None),
        ]
        for table, name in wanted:
            reg = table.get(name) if name else None
            resolve = getattr(reg.factory, "resolve", None) if reg is not None else None
            if resolve is not None:
                resolve()

    # ------------------------------------------------------------------ the end
    def revert_all(self) -> None:
        """Revert every injected fault, newest first; idempotent. A revert that does not hold
        is tried again with backoff for ``safety.revert_retry``, every try journaled; one that
        never holds ends with a "still injected" line, and its watchdog is left to try at TTL."""
        for item in reversed(self._injected):
            if item.reverted:
                continue
            ok, verified, detail, tries = False, False, "", 0
            for tries in backoff(self.config.safety.revert_retry_s, self.clock):
                ok, verified, detail = self._revert_once(item.fault)
                if ok:
                    break
                self.intents.revert_failed(item.intent.id, detail, attempt=tries)
                self._event(
                    "revert_try",
                    fault=item.spec.type,
                    intent=item.intent.id,
                    attempt=tries,
                    ok=False,
                    detail=detail,
                )
            if ok:
                self.intents.reverted(item.intent.id, detail)
                item.reverted = True
                self._t_revert_confirmed = self._now()
                if item.watchdog is not None:
                    # Reaped at the end of finish(): its teardown overlaps the journal and verdict.
                    item.watchdog.stop()
                    self._to_reap.append(item.watchdog)
            else:
                line = still_injected(item.spec.type, item.spec.targets, item.intent.id)
                detail = f"{detail}; {line}"
                print(f"[drillbook] {self.id}: {line}", file=sys.stderr, flush=True)
            rec = {
                "fault": item.spec.type,
                "intent": item.intent.id,
                "at": utc_iso(self.clock.wall()),
                "ok": ok,
                "verified": verified,
                "tries": tries,
                "detail": detail,
            }
            self._reverts.append(rec)
            self._event("revert", **rec)

    def _check_ledger_history(self, ledger: Ledger, t_inject_epoch: float) -> None:
        """A ledger that wrote for less than the RPO before the fault cannot show the RPA is
        within it: the drill says so and does not pass on it."""
        rpo = self.objectives.rpo_s
        if rpo is None:
            return
        first = ledger.history_start()
        history = None if first is None else t_inject_epoch - first
        ok = history is not None and history > rpo
        seen = "no write before the fault" if history is None else f"{history:.2f}s"
        detail = f"ledger history before the fault {seen}, RPO {rpo:g}s" + (
            "" if ok else ": older losses cannot be seen, so RPA is not shown within the RPO"
        )
        self._checks.append(Check("ledger history", ok, detail))

    def _revert_once(self, fault: Fault) -> tuple[bool, bool, str]:
        """(ok, verified, detail) of one revert, waiting 30 s at most to see it hold."""
        try:
            fault.revert()
            verify_by = self._now() + 30.0
            verified = fault.verify_reverted()
            while not verified and self._now() < verify_by:
                self.clock.sleep(0.1)
                verified = fault.verify_reverted()
            report = fault.revert_report()
        except Exception as exc:
            return False, False, redact_text(f"{type(exc).__name__}: {exc}")
        detail = (
            "reverted and verified"
            if verified
            else "revert ran; verify_reverted() still sees the fault"
        )
        return verified, verified, f"{detail}: {report}" if report else detail

    def _reap_watchdogs(self) -> None:
        reap, self._to_reap = self._to_reap, []
        for watchdog in reap:
            watchdog.reap()

    def finish(self, exc: BaseException | None = None) -> DrillResult:
        """Stop probes, revert, measure, judge, record. Idempotent; safe in ``finally``."""
        if self.result is not None:
            return self.result
        interrupted: BaseException | None = None
        self._drop_spare_watchdog()  # started for an inject that did not happen
        try:
            if self._scheduler is not None:
                self._scheduler.stop()
            with self._phase("revert"):
                self.revert_all()
        except BaseException as again:
            interrupted = again
            self.revert_all()
        self._release_targets()
        if self._ledger is not None:
            try:
                self._ledger.stop()
                if self._t_inject_epoch is not None and self._await_done:
                    self._ledger_measure = self._ledger.measure(self._t_inject_epoch)
                    self._check_ledger_history(self._ledger, self._t_inject_epoch)
            except Exception as lexc:
                self._checks.append(
                    Check("ledger", False, redact_text(f"{type(lexc).__name__}: {lexc}"))
                )
        for p in self._probes:
            with contextlib.suppress(Exception):
                p.probe.close()
        alert_checks, alert_records = self._finish_alerts()
        self._checks.extend(alert_checks)

        measures = self._final_measures()
        lm = self._ledger_measure
        verdict, checks, reasons = judge(
            measures,
            self.objectives,
            has_fault=bool(self._injected) and self._hold is None,
            rpa_s=lm.rpa_s if lm else None,
            lost_writes=lm.lost_writes if lm else None,
            allow_relapse=bool(self.scenario and self.scenario.allow_relapse),
            extra_checks=self._checks,
        )
        for r in self._reverts:
            if not r["ok"]:
                reasons.append(f"revert {r['fault']}: {r['detail']}")
                verdict = Verdict.ERROR
        error = exc or interrupted
        if error is not None:
            # The exception is the story; measures of a drill that never ran to the end are not.
            verdict, why = self._verdict_for(error)
            reasons = [why, *(r for r in reasons if r.startswith("revert "))]
        dry = isinstance(error, DryRun)
        self._event("verdict", verdict="dry-run" if dry else verdict.value, reasons=reasons)
        record = self._record(measures, verdict, checks, reasons)
        if self.scenario is not None and self.scenario.expect is not None:
            record["expected_verdict"] = self.scenario.expect.value
        if alert_records:
            record["alerts"] = alert_records
            record["objectives"]["alert_targets_s"] = self._alert_targets()
            record["measures"].update(_alert_measures(alert_records))
        if dry:
            # A plan is not a drill: nothing ran, so nothing enters the journal's drills or history.
            record["dry_run"] = True
        elif self.journal is not None:
            self.journal.add_drill(record)
        self._event("drill_end", verdict="dry-run" if dry else verdict.value)
        if not dry:
            self._tell_team("abort" if verdict is Verdict.ABORTED else "end", record)
        self.result = DrillResult(verdict, reasons, record)
        self._reap_watchdogs()
        if interrupted is not None:
            raise interrupted
        return self.result

    def _step_record(self, st: _Step) -> dict[str, Any]:
        rec: dict[str, Any] = {
            "name": st.name,
            "kind": st.kind,
            "type": st.type,
            "start_s": self._off(st.start),
            "duration_s": None if st.duration is None else round(st.duration, 6),
            "ok": st.ok,
            "detail": st.detail,
        }
        if st.result:
            rec.update(result=st.result, note=st.note)
        if st.instruction:
            rec["instruction"] = st.instruction
        if st.params:
            rec["params"] = dict(st.params)
        return rec

    def _final_measures(self) -> Measures:
        """The measures over every sample the drill took, the probes now stopped.

        Recovery is not the end of watching: the probes ran on until here (verify included), so a
        relapse after recovery is seen, and a probe that started before recovery was confirmed
        but answered "failing" only afterwards reopens the outage it belongs to. A drill that did
        not recover in time keeps that answer: a recovery after the deadline is not a recovery."""
        measures = self._measures
        if self._t_inject is not None and (measures is None or measures.recovered):
            measures = self._measure_now()
        measures = measures or Measures()
        if measures.relapse_s is not None and self._t_inject is not None:
            self._event(
                "relapse",
                probe=measures.relapse_probe,
                relapse_s=round(measures.relapse_s, 6),
                allowed=bool(self.scenario and self.scenario.allow_relapse),
            )
        return measures

    @staticmethod
    def _verdict_for(exc: BaseException) -> tuple[Verdict, str]:
        text = redact_text(str(exc)) or type(exc).__name__
        if isinstance(exc, DryRun):
            return Verdict.PASSED, text
        if isinstance(exc, Interrupted | KeyboardInterrupt):
            return Verdict.ABORTED, f"interrupted ({text}); reverted"
        if isinstance(exc, DrillAborted):
            return Verdict.ABORTED, text
        if isinstance(exc, SteadyStateFailed):
            return Verdict.ERROR, text
        if isinstance(exc, SafetyError):
            return Verdict.ERROR, f"refused: {text}"
        if isinstance(exc, RecoveryError | AssertionError):
            return Verdict.FAILED, text
        if isinstance(exc, DrillbookError):
            return Verdict.ERROR, text
        return Verdict.ERROR, f"{type(exc).__name__}: {text}"

    def _record(
        self, m: Measures, verdict: Verdict, checks: list[Check], reasons: list[str]
    ) -> dict[str, Any]:
        ti = self._t_inject

        def iso(mono: float | None) -> str | None:
            if mono is None:
                return None
            wall = self.clock.wall().timestamp() - (self._now() - mono)
            from datetime import UTC, datetime

            return utc_iso(datetime.fromtimestamp(wall, UTC))

        def rnd(v: float | None) -> float | None:
            return None if v is None else round(v, 6)

        def epoch_iso(epoch: float | None) -> str | None:
            from datetime import UTC, datetime

            return None if epoch is None else utc_iso(datetime.fromtimestamp(epoch, UTC))

        lm = self._ledger_measure
        s = self.scenario
        fault_spec = self._injected[0].spec if self._injected else (s.fault if s else None)
        return {
            "id": self.id,
            "nodeid": self.nodeid,
            "scenario": s.id if s else None,
            "description": s.description if s else "",
            "runbook": s.runbook if s else "",
            "source": s.source if s else self.nodeid.split("::")[0],
            "severity": self.objectives.severity.value,
            "controls": list(self.objectives.controls),
            "targets": list(self._targets.values())
            or [
                {"name": n, "backend": self.config.targets[n].backend, "resolved": []}
                for n in (s.targets if s else ())
                if n in self.config.targets
            ],
            "objectives": {
                "rto_s": self.objectives.rto_s,
                "rpo_s": self.objectives.rpo_s,
                "response_target_s": self.objectives.response_target_s,
                "severity": self.objectives.severity.value,
                "controls": list(self.objectives.controls),
                "source": "resiliency_policy:" + str(self.objectives.resiliency_policy.get("arn"))
                if self.objectives.resiliency_policy
                else "scenario",
            },
            "fault": {
                "type": fault_spec.type,
                "plan": "; ".join(self._plans),
                "params": dict(fault_spec.params),
            }
            if fault_spec
            else None,
            "started_at": self.started_at,
            "ended_at": utc_iso(self.clock.wall()),
            "duration_s": rnd(self._now() - self.started_mono),
            "probe_interval_s": self.interval,
            "stable_for_s": self.stable_for,
            "timeout_s": self.timeout,
            "phases": [
                {
                    "phase": p.name,
                    "start_s": self._off(p.start),
                    "end_s": self._off(p.end) if p.end else None,
                }
                for p in self._phases
            ],
            "timeline": list(self._timeline),
            "steps": [self._step_record(st) for st in self._steps],
            "runbook_import": dict(s.runbook_import) if s and s.runbook_import else None,
            "measures": {
                "ttd_s": rnd(m.ttd_s),
                "ttd_bracket_s": [rnd(x) for x in m.ttd_bracket_s] if m.ttd_bracket_s else None,
                "rta_s": rnd(m.rta_s),
                "rta_bracket_s": [rnd(x) for x in m.rta_bracket_s] if m.rta_bracket_s else None,
                "rpa_s": rnd(lm.rpa_s) if lm else None,
                "lost_writes": lm.lost_writes if lm else None,
                "ledger": {
                    "acknowledged": lm.acknowledged,
                    "survived": lm.survived,
                    "lost_before_inject": lm.lost_before_inject,
                    "oldest_lost_at": epoch_iso(lm.oldest_lost_at),
                    "newest_lost_at": epoch_iso(lm.newest_lost_at),
                    "recovery_point": epoch_iso(lm.recovery_point),
                    "detail": lm.detail,
                }
                if lm
                else None,
                "outage_observed": m.detected if self._injected else None,
                "relapse_s": rnd(m.relapse_s),
                "relapse_probe": m.relapse_probe,
                "t_relapse": iso(ti + m.relapse_s)
                if ti is not None and m.relapse_s is not None
                else None,
                "t_inject": iso(ti),
                "t_detect": iso(self._t_detect),
                "t_recovered": iso(ti + m.rta_s)
                if ti is not None and m.rta_s is not None
                else None,
                "t_verified": iso(self._t_verified),
                "t_revert_confirmed": iso(self._t_revert_confirmed),
                "probe_samples": m.samples,
                "probe_ticks_skipped": self._scheduler.skipped if self._scheduler else 0,
                "detected": m.detected,
                "recovered": m.recovered,
            },
            "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in checks],
            "verdict": verdict.value,
            "reasons": reasons,
            "guards": [
                {
                    "name": g.name,
                    "failures": g.failures,
                    "max_failures": g.max_failures,
                    "tripped": g.tripped,
                }
                for g in self._guards
            ],
            "reverts": list(self._reverts),
            **({"hold": self._hold} if self._hold is not None else {}),
        }


def _alert_measures(alerts: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The drill's TTA/TTN/TTAck for the journal and history: the first expected alert's (the
    page the runbook starts from); each alert's own are in ``record["alerts"]``."""
    first = next((a for a in alerts if not a.get("silent")), None)
    if first is None:
        return {}
    keys = (
        "tta_s",
        "tta_bracket_s",
        "ttn_s",
        "ttn_bracket_s",
        "ttack_s",
        "ttack_bracket_s",
        "resolve_s",
        "resolve_bracket_s",
    )
    return {k: first.get(k) for k in keys} | {"alert": first.get("name")}

"""The drill lifecycle: steady state → inject → detect → recover → verify → revert → verdict.

A :class:`Drill` is driven step by step, by a Python drill through the ``drill`` fixture or by
:meth:`Drill.run_scenario` for a YAML scenario: one engine, two ways to author. It sees faults,
probes, steps and ledgers only through :mod:`drillbook.backends.base`. Whatever happens —
pass, fail, exception, SIGINT/SIGTERM/SIGHUP — :meth:`Drill.finish` reverts every injected fault,
and the intent ledger plus a TTL watchdog cover the case where this process cannot.

This module holds the lifecycle itself; each part it leans on lives beside it, named for what
it holds: :mod:`drillbook.drillstate` (the state and journaling helpers),
:mod:`drillbook.sampling`, :mod:`drillbook.watchdog_pool`, :mod:`drillbook.target_locks`,
:mod:`drillbook.rpo_ledger`, :mod:`drillbook.recovery_steps`, :mod:`drillbook.alert_drill`,
:mod:`drillbook.reverting`, :mod:`drillbook.observers`, :mod:`drillbook.scenario_prep` and
:mod:`drillbook.record_writer` (the drill record, typed in :mod:`drillbook.record`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import IO

from drillbook.alert_drill import AlertDrill
from drillbook.backends.base import Registry
from drillbook.clock import Clock, epoch
from drillbook.config import Config
from drillbook.drillstate import DrillResult, DryRun, SteadyStateFailed, _Guard, _Injected
from drillbook.durations import format_duration
from drillbook.errors import ConfigError, FaultError
from drillbook.intents import Intent
from drillbook.journal import RunJournal
from drillbook.model import FaultSpec, Objectives, ProbeSpec, RecoveryKind, Scenario, Verdict
from drillbook.observers import Observers
from drillbook.probing import NamedProbe, run_once
from drillbook.recovery_steps import RecoverySteps
from drillbook.redact import redact_text
from drillbook.reverting import Reverting
from drillbook.rpo_ledger import LedgerUse
from drillbook.safety import check_blast_radius, check_environment
from drillbook.scenario_prep import ScenarioPrep
from drillbook.seams import Seams
from drillbook.target_locks import TargetHolding
from drillbook.timeline import Check, Measures, judge
from drillbook.watchdog_pool import WatchdogPool

__all__ = ["Drill", "DrillResult", "DryRun", "SteadyStateFailed"]


class Drill(
    AlertDrill,
    RecoverySteps,
    Reverting,
    WatchdogPool,
    TargetHolding,
    LedgerUse,
    Observers,
    ScenarioPrep,
):
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
        seams: Seams | None = None,
    ) -> None:
        super().__init__(
            drill_id,
            config,
            journal=journal,
            objectives=objectives,
            scenario=scenario,
            nodeid=nodeid,
            registry=registry,
            clock=clock,
            progress_stream=progress_stream,
            on_plan=on_plan,
            seams=seams,
        )
        self._progress_cls = self._load_progress()
        self._event("drill_start", scenario=scenario.id if scenario else None, nodeid=nodeid)
        self._tell_team("start")

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
                    self.on_plan(
                        f"[dry run] {self.id}: would inject {spec.type}: {plan}{seed_note}"
                    )
                raise DryRun(f"dry run: would inject {spec.type}: {plan}")

            self._await_ledger_history()

            ttl = spec.ttl_s or self.config.safety.fault_ttl_s
            self._hold_targets(spec.targets, ttl)
            intent_id, watchdog = self._live_watchdog()
            self._start_probes()
            now_epoch = epoch()
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
            called = self._now()
            try:
                fault.inject()
            finally:
                # Whatever inject managed to do, remember how to undo it.
                returned = self._now()
                with contextlib.suppress(Exception):
                    self.intents.injected(intent.id, fault.state())
                ledger_s = self._now() - returned  # the harness's own work, not the platform's
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
            self._t_inject_epoch = epoch()
            self._kick_probes()  # the first failing look is TTD: take it now, not a tick later
            # How long the platform took to show the fault (a server killed, a folder deleted):
            # its work, not the harness's, and a figure the team may want on its own.
            self._event(
                "inject",
                fault=spec.type,
                plan=plan,
                intent=intent.id,
                inject_s=round(self._t_inject - called - ledger_s, 6),
            )

    def mark_start(self) -> None:
        """For drills without a fault (e.g. backup verification): t_inject is now."""
        if self.config.dry_run:  # the recovery steps of a drill without a fault change things
            if self.on_plan:
                self.on_plan(f"[dry run] {self.id}: would start the clock and run recovery")
            raise DryRun("dry run: no fault; would start the clock and run the recovery steps")
        self._await_ledger_history()
        self._start_probes()
        self._t_inject = self._now()
        self._t_inject_epoch = epoch()
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
            # A ledger writes for a moment before the fault, so its writes span it. With an RPO
            # the wait for the ledger's history (longer than the RPO) already does that.
            warmup = 1.0 if scenario.ledger is not None and self.objectives.rpo_s is None else 0.0
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

    # ------------------------------------------------------------------ the end
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
        self._stop_ledger()
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
        self._add_alert_records(record, alert_records)
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

"""One run's state without pytest: config, registry, journal, prepared backends, and the end.

Both ways of running drills share it: the pytest plugin (one pytest session = one run) and
``drillbook run scenarios/x.yaml`` (:mod:`drillbook.runner`, no pytest at all). Keeping the
journal, the backend preparation and the finish (journal.json, reports, history, evidence, the
terminal table) here means the two paths cannot drift apart: a run is recorded the same way
whichever started it.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drillbook.backends.base import Registry, get_registry
from drillbook.config import Config
from drillbook.durations import format_duration
from drillbook.errors import DrillbookError
from drillbook.journal import RunJournal, environment_snapshot
from drillbook.model import FaultSpec, LedgerSpec, ProbeSpec, RecoverySpec, Scenario
from drillbook.record import DrillRecord
from drillbook.watchdog import Watchdog

__all__ = [
    "RunSession",
    "drill_table",
    "scenario_backends",
    "scenario_targets",
    "spec_backends",
]


def scenario_targets(s: Scenario) -> set[str]:
    """Every target a scenario names, in any of its parts."""
    names = set(s.targets)
    for spec in (*s.probes, *s.steady_state, *s.verify, *(g.probe for g in s.guards)):
        names.update(spec.targets)
    if s.fault:
        names.update(s.fault.targets)
    if s.ledger:
        names.update(s.ledger.targets)
    for r in s.recovery:
        names.update(r.targets)
    return names


def scenario_backends(s: Scenario, cfg: Config) -> set[str]:
    """The backends a scenario needs: its own plus those of the targets it names."""
    return set(s.backends) | {
        cfg.targets[n].backend for n in scenario_targets(s) if n in cfg.targets
    }


def spec_backends(
    specs: Iterable[Any], registry: Registry, cfg: Config
) -> tuple[set[str], set[str]]:
    """(backends, targets) that Python-drill specs (faults, probes, steps, ledgers) need."""
    backends: set[str] = set()
    targets: set[str] = set()
    for spec in specs:
        table: Mapping[str, Any]
        if isinstance(spec, FaultSpec):
            table = registry.faults
        elif isinstance(spec, ProbeSpec):
            table = registry.probes
        elif isinstance(spec, RecoverySpec):
            table = registry.recoveries
        elif isinstance(spec, LedgerSpec):
            table = registry.ledgers
        else:
            continue
        type_name = getattr(spec, "type", None)
        if type_name and type_name in table:
            backends.add(table[type_name].backend)
        targets.update(getattr(spec, "targets", ()))
    for name in targets:
        if name in cfg.targets:
            backends.add(cfg.targets[name].backend)
    return backends, targets


@dataclass
class RunSession:
    """Per-run state. ``load_config`` is called once, on first need, so a caller (the plugin)
    can turn a bad option into its own kind of error at the moment it matters."""

    load_config: Callable[[], Config]
    config: Config | None = None
    registry: Registry | None = None
    journal: RunJournal | None = None
    scenarios: dict[str, Scenario] = field(default_factory=dict)
    used_targets: set[str] = field(default_factory=set)
    prepared: dict[str, str | None] = field(default_factory=dict)  # backend -> why unavailable
    stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)
    results: list[DrillRecord] = field(default_factory=list)
    reports_written: list[Path] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    #: A watchdog started at the beginning of the run for its first inject (see
    #: :func:`drillbook.watchdog.spare_for`); the run stops it if no drill takes it.
    spare_watchdog: tuple[str, Watchdog] | None = None
    _spare_lock: threading.Lock = field(default_factory=threading.Lock)

    def take_spare_watchdog(self) -> tuple[str, Watchdog] | None:
        """The early watchdog, to the first drill that asks (drills may run side by side)."""
        with self._spare_lock:
            spare, self.spare_watchdog = self.spare_watchdog, None
        return spare

    def drill_config(self) -> Config:
        if self.config is None:
            self.config = self.load_config()
        return self.config

    def get_registry(self) -> Registry:
        if self.registry is None:
            self.registry = get_registry()
        return self.registry

    def get_journal(self) -> RunJournal:
        if self.journal is None:
            cfg = self.drill_config()
            env = environment_snapshot(cfg.environment, cfg.workdir, cfg.source, cfg.dry_run)
            self.journal = RunJournal(cfg.reports_dir, environment=env)
        return self.journal

    def add_scenario(self, scenario: Scenario) -> None:
        """Remember a selected scenario, so a backend's ``prepare`` sees all its targets."""
        self.scenarios[scenario.id] = scenario
        self.used_targets.update(scenario_targets(scenario))

    def prepare_backend(self, backend: str, targets: Iterable[str] = ()) -> str | None:
        """Check the backend is reachable and enter its session ``prepare`` once.

        Returns None when ready, else the one-line reason (remembered: asked again, the same
        answer, without a second attempt)."""
        if backend in self.prepared:
            return self.prepared[backend]
        cfg = self.drill_config()
        registry = self.get_registry()
        reason: str | None
        if backend in registry.broken:
            reason = f"backend failed to load: {registry.broken[backend]}"
        elif backend not in registry.backends:
            reason = "no such backend is registered"
        else:
            info = registry.backends[backend]
            try:
                reason = info.available(cfg.backend_settings(backend))
            except Exception as exc:
                reason = f"{type(exc).__name__}: {exc}"
            if reason is None and info.prepare is not None:
                from drillbook.wiring import context_for

                names = sorted(
                    n
                    for n in (self.used_targets | set(targets))
                    if n in cfg.targets and cfg.targets[n].backend == backend
                )
                ctx = context_for(cfg, backend, {}, names)
                try:
                    self.stack.enter_context(info.prepare(ctx))
                except DrillbookError as exc:
                    reason = f"setup failed: {exc}"
        self.prepared[backend] = reason
        return reason

    def finish(self, exit_status: int) -> bool:
        """Close what ``prepare`` opened; write journal.json, reports, history and (if asked)
        the evidence bundle. Returns False when evidence was asked for and none was written:
        that must fail the run, not hide in a warning. Problems land in ``self.problems``."""
        spare = self.take_spare_watchdog()
        if spare is not None:  # no drill injected: it would wait for an intent that never comes
            spare[1].stop()
            spare[1].reap()
        self.stack.close()
        journal = self.journal
        if journal is None:
            return True
        journal.finish(int(exit_status))
        cfg = self.drill_config()
        doc = journal.final_document  # exactly what journal.json holds (its ended_at too)
        written: list[Path] = [journal.dir / "journal.json"]
        run_dir = journal.dir
        self.results = list(doc["drills"]) + [r for r in self.results if r.get("dry_run")]
        tasks: list[tuple[str, Callable[[], list[Path]]]] = [
            ("reports", lambda: _write_reports(run_dir, doc)),
            ("history", lambda: _record_history_at(cfg.history_location, doc)),
        ]
        for what, call in tasks:
            try:
                written.extend(call())
            except Exception as exc:
                self.problems.append(f"{what}: {type(exc).__name__}: {exc}")
        evidence_ok = True
        if cfg.evidence:
            try:
                written.append(_build_evidence(journal.dir, cfg))
            except Exception as exc:
                self.problems.append(f"evidence: {type(exc).__name__}: {exc}")
                evidence_ok = False
        self.reports_written = written
        return evidence_ok

    def summary_lines(self) -> list[str]:
        """The terminal's drillbook section: the table, where the reports are, any problems."""
        if self.journal is None:
            return []
        lines: list[str] = []
        if self.results:
            lines.append(drill_table(self.results))
        lines.append(f"reports: {self.journal.dir}")
        lines += [f"warning: {p}" for p in self.problems]
        return lines


def _rta_cell(d: Mapping[str, Any]) -> str:
    """A hold drill's recovery is its return to steady state after the revert; a drill whose
    fault no probe saw has no recovery time to show."""
    m = d.get("measures", {})
    hold = d.get("hold")
    if hold:
        back = hold.get("return_s")
        return f"held {format_duration(hold.get('held_s'))}, back in " + (
            format_duration(back) if back is not None else "never"
        )
    if m.get("outage_observed") is False:
        return "not observed"
    return format_duration(m.get("rta_s"))


def drill_table(records: Iterable[Mapping[str, Any]]) -> str:
    """drill, verdict, TTD, RTA / RTO, RPA / RPO: one row per drill record."""
    from tabulate import tabulate

    rows = []
    for d in records:
        m = d.get("measures", {})
        o = d.get("objectives", {})
        lost = m.get("lost_writes")
        rows.append(
            [
                d.get("id"),
                "DRY RUN" if d.get("dry_run") else d.get("verdict", "").upper(),
                format_duration(m.get("ttd_s")),
                f"{_rta_cell(d)} / {format_duration(o.get('rto_s'))}",
                f"{format_duration(m.get('rpa_s'))} / {format_duration(o.get('rpo_s'))}"
                + (f" ({lost} lost)" if lost is not None else ""),
            ]
        )
    text: str = tabulate(
        rows, headers=["drill", "verdict", "TTD", "RTA / RTO", "RPA / RPO"], tablefmt="simple"
    )
    return text


def _write_reports(run_dir: Path, doc: Mapping[str, Any]) -> list[Path]:
    try:
        from drillbook.report import write_run_reports
    except ImportError:
        return []
    return list(write_run_reports(run_dir, doc))


def _record_history_at(history_path: Path | str, doc: Mapping[str, Any]) -> list[Path]:
    try:
        from drillbook.history import record_run
    except ImportError:
        return []
    record_run(history_path, doc)
    return []


def _build_evidence(run_dir: Path, cfg: Config) -> Path:
    from drillbook.evidence import build_bundle

    snapshot = None
    if cfg.config_path is not None:
        from drillbook.yamlload import load_yaml_file

        raw = load_yaml_file(cfg.config_path).data
        snapshot = raw if isinstance(raw, Mapping) else None
    return build_bundle(run_dir, config_snapshot=snapshot)

"""The pytest plugin: the only module that imports pytest.

It adds the ``--drill-*`` options and the ``drill`` marker, turns every scenario file into a test
(``drills/test_scenarios.py::test_scenario[<id>]``, so ``-k <id>`` selects one), gives tests the
``drill`` fixture (the engine's authoring API), prepares each backend once per session only when a
selected drill needs it, and at the end writes the journal, the reports and the terminal table.
The run itself (config, journal, backend preparation, the finish) is a pytest-free
:class:`drillbook.session.RunSession`, shared with ``drillbook run <scenario.yaml>``, which runs
scenarios without pytest; it lives in ``config.stash``, never on private attributes.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from drillbook.config import Config, Overrides, load_config
from drillbook.durations import parse_duration
from drillbook.engine import Drill, DrillResult, DryRun
from drillbook.errors import ConfigError
from drillbook.model import (
    FaultSpec,
    LedgerSpec,
    Objectives,
    ProbeSpec,
    RecoverySpec,
    Scenario,
    Severity,
    Verdict,
)
from drillbook.safety import signals_raise
from drillbook.scenario import load_scenarios
from drillbook.session import RunSession, scenario_backends, scenario_targets, spec_backends

__all__ = ["DrillFixture", "needs_backend"]


def _required(backend: str) -> bool:
    value = os.environ.get("DRILLBOOK_REQUIRE_BACKENDS", "").strip().lower()
    if value in ("1", "all", "true", "yes"):
        return True
    return backend.lower() in {v.strip() for v in value.split(",") if v.strip()}


def needs_backend(backend: str, reason: str | None) -> None:
    """Skip, or fail where CI requires the backend, when ``reason`` says it is unavailable.

    Why both: a developer without Docker gets a one-line skip, while CI sets
    ``DRILLBOOK_REQUIRE_BACKENDS`` so a missing engine cannot pass as a green run.
    """
    if reason is None:
        return
    message = f"{backend} unavailable: {reason}"
    if _required(backend):
        pytest.fail(message + " (DRILLBOOK_REQUIRE_BACKENDS is set)", pytrace=False)
    pytest.skip(message)


def _config_loader(pytest_config: pytest.Config) -> Callable[[], Config]:
    """The run's config from the ``--drill-*`` options; a bad option is a pytest usage error."""

    def load() -> Config:
        opt = pytest_config.getoption
        answers: dict[str, str] = {}
        for raw in opt("drill_answer") or []:
            name, sep, value = raw.partition("=")
            if not sep:
                raise pytest.UsageError(f"--drill-answer: expected STEP=ANSWER, got {raw!r}")
            answers[name.strip()] = value.strip()
        interval = opt("drill_probe_interval")
        try:
            probe_interval = parse_duration(interval, allow_zero=False) if interval else None
        except ValueError as exc:
            raise pytest.UsageError(f"--drill-probe-interval: {exc}") from None
        overrides = Overrides(
            config_path=Path(opt("drill_config")) if opt("drill_config") else None,
            environment=opt("drill_env"),
            reports_dir=Path(opt("drill_reports")) if opt("drill_reports") else None,
            probe_interval_s=probe_interval,
            dry_run=True if opt("drill_dry_run") else None,
            allow_production=bool(opt("drill_allow_production")),
            evidence=bool(opt("drill_evidence")),
            manual_answers=answers,
            operator=_gameday() if opt("drill_gameday") else None,
        )
        try:
            return load_config(overrides, workdir=Path.cwd())
        except ConfigError as exc:
            raise pytest.UsageError(str(exc)) from None

    return load


def _gameday() -> Any:
    from drillbook.runbook.gameday import GameDay

    return GameDay()


def _ensure_backends(session: RunSession, backends: set[str], targets: set[str]) -> None:
    """Prepare each backend once; skip (or fail, where CI requires it) when one is missing."""
    for backend in sorted(backends):
        needs_backend(backend, session.prepare_backend(backend, targets))


_SESSION = pytest.StashKey[RunSession]()
_ITEM_DRILL = pytest.StashKey["DrillFixture"]()


def _session(config: pytest.Config) -> RunSession:
    session = config.stash.get(_SESSION, None)
    if session is None:
        session = RunSession(_config_loader(config))
        config.stash[_SESSION] = session
    return session


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("drillbook", "disaster-recovery drills")
    group.addoption(
        "--drill-config", metavar="PATH", help="drillbook.yaml to use (default: nearest)"
    )
    group.addoption("--drill-env", metavar="NAME", help="environment name (overrides the file)")
    group.addoption("--drill-reports", metavar="DIR", help="reports folder (default: reports)")
    group.addoption(
        "--drill-dry-run",
        action="store_true",
        help="resolve targets and print the plan; touch nothing",
    )
    group.addoption(
        "--drill-allow-production",
        action="store_true",
        help="consent to drill production (the file must also say allow_production: true)",
    )
    group.addoption("--drill-probe-interval", metavar="DURATION", help="probe interval, e.g. 250ms")
    group.addoption(
        "--drill-answer",
        action="append",
        metavar="STEP=ANSWER",
        help="answer a manual step without a terminal (CI): 'Page the DBA=done' or '*=done'",
    )
    group.addoption("--drill-evidence", action="store_true", help="write a signed evidence bundle")
    group.addoption(
        "--drill-gameday",
        action="store_true",
        help="GameDay: walk the people at the terminal through each manual step, timed",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "drill(rto=None, rpo=None, severity='P2', controls=(), response_target=None): a Python "
        "drill's objectives; durations like 30s, 5m, PT1M",
    )
    _session(config)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "drill_scenario" not in metafunc.fixturenames:
        return
    session = _session(metafunc.config)
    cfg = session.drill_config()
    try:
        scenarios = load_scenarios(cfg.scenarios_dir, registry=session.get_registry(), config=cfg)
    except ConfigError as exc:
        raise pytest.UsageError(f"invalid scenario: {exc}") from None
    for scenario in scenarios:
        session.add_scenario(scenario)
    metafunc.parametrize("drill_scenario", scenarios, ids=[s.id for s in scenarios])


class DrillFixture:
    """What the ``drill`` fixture gives a test: the engine's authoring API, pytest-aware.

    Python drills call ``steady_state``, ``inject``, ``recover``, ``await_recovery``, ``verify``;
    revert and the verdict happen after the test body whatever it did. Scenario tests call ``run``.
    """

    def __init__(self, session: RunSession, item: pytest.Item, objectives: Objectives) -> None:
        self._session = session
        self._item = item
        self._objectives = objectives
        self._drill: Drill | None = None
        self.result: DrillResult | None = None

    @property
    def started(self) -> bool:
        """Whether the test used the drill at all (a test may take the fixture and skip)."""
        return self._drill is not None

    @property
    def engine(self) -> Drill:
        if self._drill is None:
            self._drill = self._make(None)
        return self._drill

    def _make(self, scenario: Scenario | None) -> Drill:
        cfg = self._session.drill_config()
        journal = self._session.get_journal()
        name = scenario.id if scenario else self._item.name
        stream = sys.__stderr__ if sys.__stderr__ is not None else None
        return Drill(
            name,
            cfg,
            journal=journal,
            objectives=scenario.objectives if scenario else self._objectives,
            scenario=scenario,
            nodeid=self._item.nodeid,
            registry=self._session.get_registry(),
            progress_stream=stream,
            on_plan=lambda line: _write_line(self._item.config, line),
        )

    def _ensure(self, specs: tuple[Any, ...]) -> None:
        cfg = self._session.drill_config()
        backends, targets = spec_backends(specs, self._session.get_registry(), cfg)
        _ensure_backends(self._session, backends, targets)

    # -- the scenario way ------------------------------------------------------
    def run(self, scenario: Scenario) -> DrillResult:
        cfg = self._session.drill_config()
        _ensure_backends(
            self._session, scenario_backends(scenario, cfg), scenario_targets(scenario)
        )
        self._drill = self._make(scenario)
        with signals_raise():
            result = self._drill.run_scenario()
        self.result = result
        _raise_for(result, scenario.expect)
        return result

    # -- the Python way ----------------------------------------------------------
    def steady_state(self, *probes: ProbeSpec, warmup_s: float = 0.0) -> None:
        self._ensure(probes)
        self.engine.steady_state(*probes, warmup_s=warmup_s)

    def watch(self, *probes: ProbeSpec) -> None:
        self._ensure(probes)
        self.engine.watch(*probes)

    def guard(self, probe: ProbeSpec, max_failures: int = 1) -> None:
        self._ensure((probe,))
        self.engine.guard(probe, max_failures)

    def use_ledger(self, spec: LedgerSpec) -> None:
        self._ensure((spec,))
        self.engine.use_ledger(spec)

    def inject(self, fault: FaultSpec) -> None:
        self._ensure((fault,))
        self.engine.inject(fault)

    def await_detection(self, timeout: float | None = None) -> bool:
        return self.engine.await_detection(timeout)

    def recover(self, step: RecoverySpec) -> None:
        self._ensure((step,))
        self.engine.recover(step)

    def await_recovery(self, timeout: float | None = None) -> Any:
        return self.engine.await_recovery(timeout)

    def verify(self, *probes: ProbeSpec) -> Any:
        self._ensure(probes)
        return self.engine.verify(*probes)

    def finish(self, exc: BaseException | None = None) -> DrillResult | None:
        if self._drill is None:
            return None
        self.result = self._drill.finish(exc)
        return self.result


def _write_line(config: pytest.Config, line: str) -> None:
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(line)


def _raise_for(result: DrillResult, expect: Verdict | None = None) -> None:
    reasons = "; ".join(result.reasons) or result.verdict.value
    if expect is not None and expect is not Verdict.PASSED:
        # A drill meant to fail (it proves a blind spot) passes the test when it fails as meant.
        if result.verdict is expect:
            return
        pytest.fail(
            f"drill {result.verdict.value}, but the scenario expects {expect.value}: {reasons}",
            pytrace=False,
        )
    if result.verdict is Verdict.PASSED:
        if result.reasons and result.reasons[0].startswith("dry run"):
            pytest.skip(result.reasons[0])
        return
    pytest.fail(f"drill {result.verdict.value}: {reasons}", pytrace=False)


def _objectives_from_marker(item: pytest.Item, cfg: Config) -> Objectives:
    marker = item.get_closest_marker("drill")
    if marker is None:
        return Objectives(response_target_s=cfg.defaults.response_targets_s.get("P2"))
    kw = dict(marker.kwargs)
    try:
        severity = Severity(kw.get("severity", "P2"))
        rto = parse_duration(kw["rto"], allow_zero=False) if kw.get("rto") is not None else None
        rpo = parse_duration(kw["rpo"]) if kw.get("rpo") is not None else None
        rt = kw.get("response_target")
        response = (
            parse_duration(rt)
            if rt is not None
            else cfg.defaults.response_targets_s.get(severity.value)
        )
    except (ValueError, KeyError) as exc:
        raise pytest.UsageError(f"{item.nodeid}: @pytest.mark.drill: {exc}") from None
    return Objectives(rto, rpo, severity, response, tuple(kw.get("controls", ())))


@pytest.fixture
def drill(request: pytest.FixtureRequest) -> Iterator[DrillFixture]:
    """A drill for this test; reverted and judged after the test body, whatever happens."""
    session = _session(request.config)
    cfg = session.drill_config()
    fixture = DrillFixture(session, request.node, _objectives_from_marker(request.node, cfg))
    request.node.stash[_ITEM_DRILL] = fixture
    with signals_raise():
        try:
            yield fixture
        finally:
            fixture.finish()  # safety net; normally done in pytest_runtest_call
            if fixture.result is not None:
                session.results.append(fixture.result.record)


@pytest.fixture(scope="session")
def drillbook_config(request: pytest.FixtureRequest) -> Config:
    """The effective drillbook configuration for this run."""
    return _session(request.config).drill_config()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    fixture = item.stash.get(_ITEM_DRILL, None)
    try:
        outcome = yield
    except BaseException as exc:
        if fixture is not None and fixture.result is None and fixture.started:
            if isinstance(exc, pytest.skip.Exception):
                fixture.finish()
            else:
                result = fixture.finish(exc)
                if isinstance(exc, KeyboardInterrupt):
                    raise
                if result is not None:
                    _add_properties(item, result)
                    if isinstance(exc, DryRun):
                        pytest.skip(str(exc))
        elif fixture is not None and fixture.result is not None:
            _add_properties(item, fixture.result)
        raise
    if fixture is not None:
        already = fixture.result is not None
        result = fixture.finish()
        if result is not None:
            _add_properties(item, result)
            if not already:
                _raise_for(result)
    return outcome


def _add_properties(item: pytest.Item, result: DrillResult) -> None:
    record = result.record
    try:
        from drillbook.report import junit_properties

        props = list(junit_properties(record))
    except Exception:
        m = record.get("measures", {})
        o = record.get("objectives", {})
        props = [("drill.verdict", record.get("verdict", ""))]
        props += [
            (f"drill.{k}", "" if m.get(k) is None else str(m.get(k)))
            for k in ("ttd_s", "rta_s", "rpa_s", "lost_writes")
        ]
        props += [
            (f"drill.{k}", "" if o.get(k) is None else str(o.get(k)))
            for k in ("rto_s", "rpo_s", "severity")
        ]
    for key, value in props:
        if (key, value) not in item.user_properties:
            item.user_properties.append((key, value))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    state = _session(session.config)
    if not state.finish(int(exitstatus)) and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    state = _session(config)
    if state.journal is None:
        return
    terminalreporter.section("drillbook")
    for line in state.summary_lines():
        terminalreporter.write_line(line, yellow=line.startswith("warning: "))

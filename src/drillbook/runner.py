"""Declarative scenarios run straight through the engine, without pytest.

``drillbook run scenarios/x.yaml`` needs none of pytest's collection, fixtures or reporting: a
scenario is data, and the engine runs it. Starting pytest for it cost more than the drill itself
(benchmarks/results/overhead.md). The run is recorded exactly as the pytest path records it,
because both use :class:`drillbook.session.RunSession`: the same journal (hash-chained
events.jsonl, journal.json, reports/latest), reports, history and evidence, the same safety checks
(they live in the engine) and the same backend preparation (each ``prepare`` entered once, closed
at the end). Python drills still need pytest: ``drillbook run`` without scenario files wraps it.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import IO

from drillbook.engine import Drill, DrillResult
from drillbook.errors import BackendUnavailable
from drillbook.exitcodes import EXIT_ABORTED, EXIT_ERROR, code_for_verdicts
from drillbook.features import wired_seams
from drillbook.model import Scenario, Verdict
from drillbook.record import DrillRecord
from drillbook.safety import signals_raise
from drillbook.session import RunSession, scenario_backends, scenario_targets

__all__ = ["RunOutcome", "run_scenarios"]


@dataclass
class RunOutcome:
    """What the run did: each drill's record (dry runs included) and whether it was whole."""

    records: list[DrillRecord] = field(default_factory=list)
    interrupted: bool = False  # a signal stopped the run; the drill it hit was reverted
    evidence_ok: bool = True  # evidence was asked for and written (or not asked for)


def run_scenarios(
    session: RunSession,
    scenarios: Sequence[Scenario],
    *,
    out: IO[str] | None = None,
    parallel: int = 1,
) -> RunOutcome:
    """Prepare the backends the scenarios need, run each scenario, then finish the run.

    Every backend is checked and prepared before the first drill injects anything: the user
    named these scenarios, so one that cannot run is an error (:class:`BackendUnavailable`,
    exit 4), not a skip. SIGINT, SIGTERM and SIGHUP interrupt the drill in progress, which
    reverts; the run then stops and is still recorded (journal, reports, history).

    ``parallel`` > 1 runs up to that many drills at once, never two on a common target
    (:mod:`drillbook.parallel`); the records keep the scenarios' order either way."""
    stream = out if out is not None else sys.stdout
    outcome = RunOutcome()
    exit_status = EXIT_ERROR  # until the drills ran: what escapes below is a harness error
    with signals_raise():
        try:
            cfg = session.drill_config()
            for scenario in scenarios:
                session.add_scenario(scenario)
            for scenario in scenarios:
                for backend in sorted(scenario_backends(scenario, cfg)):
                    reason = session.prepare_backend(backend, scenario_targets(scenario))
                    if reason is not None:
                        raise BackendUnavailable(
                            f"{scenario.source}: {backend} unavailable: {reason}"
                        )
            if parallel > 1:
                _run_side_by_side(session, scenarios, stream, parallel, outcome)
            else:
                for scenario in scenarios:
                    result = _run_one(session, scenario, stream)
                    outcome.records.append(result.record)
                    if _interrupted(result):
                        outcome.interrupted = True
                        break
            exit_status = code_for_verdicts(
                r.get("verdict") for r in outcome.records if not r.get("dry_run")
            )
        except KeyboardInterrupt:  # between drills or while preparing: nothing is injected
            outcome.interrupted = True
            exit_status = EXIT_ABORTED
            raise
        finally:
            outcome.evidence_ok = session.finish(exit_status)
            for line in session.summary_lines():
                print(line, file=stream, flush=True)
    return outcome


def _run_side_by_side(
    session: RunSession,
    scenarios: Sequence[Scenario],
    stream: IO[str],
    workers: int,
    outcome: RunOutcome,
) -> None:
    from drillbook.parallel import run_parallel

    session.get_journal()  # made once, before the threads share it
    done = run_parallel(
        scenarios,
        workers,
        lambda s: _run_one(session, s, stream),
        scenario_targets,
        _interrupted,
    )
    outcome.records.extend(r.record for r in done.results if r is not None)
    outcome.interrupted = outcome.interrupted or done.interrupted


def _run_one(session: RunSession, scenario: Scenario, stream: IO[str]) -> DrillResult:
    drill = Drill(
        scenario.id,
        session.drill_config(),
        journal=session.get_journal(),
        objectives=scenario.objectives,
        scenario=scenario,
        nodeid=scenario.source,
        registry=session.get_registry(),
        progress_stream=sys.__stderr__,
        on_plan=lambda line: print(line, file=stream, flush=True),
        seams=wired_seams(),
    )
    if scenario.fault is not None:
        drill.adopt_spare_watchdog(session.take_spare_watchdog())
    result = drill.run_scenario()  # reverts and judges whatever happened, signals included
    session.results.append(result.record)
    if result.verdict is not Verdict.PASSED:
        reasons = "; ".join(result.reasons) or result.verdict.value
        print(f"{scenario.id}: drill {result.verdict.value}: {reasons}", file=stream, flush=True)
    return result


def _interrupted(result: DrillResult) -> bool:
    """The engine turns a signal into verdict ``aborted`` with reason "interrupted (...)"."""
    return result.verdict is Verdict.ABORTED and any(
        r.startswith("interrupted") for r in result.reasons[:1]
    )

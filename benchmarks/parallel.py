"""Drills side by side: a suite's wall time, and TTD/RTA fidelity, at --parallel 1, 2 and 4.

The suite is N drills on N distinct targets, each an in-process HTTP server the benchmark turns
503 and back (the timing-fidelity benchmark's ``OutageTarget`` and ``Controller``: the moment of
each flip, read under the lock the handler reads, is the ground truth). Every drill is the real
engine (``Drill`` + core ``http`` probe + ``ProbeScheduler``, intent ledger, target locks and
TTL watchdog), scheduled by :func:`drillbook.parallel.run_parallel`, the scheduler behind
``drillbook run --parallel N``. The same seeded outage plans are run at each width, so the only
change between rows is how many drills share the machine at once.

    python benchmarks/parallel.py [--drills 12] [--widths 1,2,4] [--interval 0.05]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import bench_config, header, percentile, write_result
from timing_fidelity import Controller, OutageFault, OutagePlan, OutageTarget

from drillbook.backends import local
from drillbook.backends.base import Context, Fault, Registry
from drillbook.engine import Drill
from drillbook.model import FaultSpec, ProbeSpec, TargetSpec
from drillbook.parallel import run_parallel

__all__ = ["main"]


@dataclass
class Job:
    """One drill of the suite: its target, outage plan and (after it ran) the truth."""

    index: int
    plan: OutagePlan
    controller: Controller
    verdict: str = ""
    ttd_err: float | None = None
    rta_err: float | None = None
    in_brackets: bool = False


class _Outage(OutageFault):
    """The timing-fidelity fault, reading the controller of its own subclass (one per target)."""

    def __init__(self, ctx: Context) -> None:
        Fault.__init__(self, ctx)
        controller = type(self).controller
        assert controller is not None
        self.c = controller


def _registry(jobs: list[Job]) -> Registry:
    reg = Registry()
    local.register(reg)
    reg.add_backend("bench", lambda settings: None, "parallel benchmark targets")
    for job in jobs:  # one fault type per target, so each drill reads its own controller
        cls = type(f"Outage{job.index}", (_Outage,), {"controller": job.controller})
        reg.add_fault(f"bench.outage{job.index}", "bench", cls, help="benchmark outage")
    return reg


def _drill(job: Job, reg: Registry, config: Any, interval: float) -> Any:
    c = job.controller
    c.reset(job.plan)
    drill = Drill(f"parallel-{job.index}", config, registry=reg)
    probe = ProbeSpec("http", "health", {"url": c.target.url, "timeout": 1.0})
    measures = None
    try:
        drill.steady_state(probe)
        drill.inject(FaultSpec(f"bench.outage{job.index}", {}, (f"bench-{job.index}",)))
        drill.await_detection()
        measures = drill.await_recovery()
        result = drill.finish()
    except BaseException as exc:
        result = drill.finish(exc)
    job.verdict = result.verdict.value
    t_inject = drill._t_inject
    if measures is not None and t_inject is not None and c.truth_down and c.truth_up:
        truth_ttd = max(0.0, c.truth_down - t_inject)
        truth_rta = c.truth_up - t_inject
        if measures.ttd_s is not None:
            job.ttd_err = measures.ttd_s - truth_ttd
        if measures.rta_s is not None:
            job.rta_err = measures.rta_s - truth_rta
        tb, rb = measures.ttd_bracket_s, measures.rta_bracket_s
        job.in_brackets = bool(
            tb and rb and tb[0] <= truth_ttd <= tb[1] and rb[0] <= truth_rta <= rb[1]
        )
    return result


def run_width(width: int, drills: int, interval: float, seed: int) -> tuple[float, list[Job]]:
    rng = random.Random(seed)
    targets = [OutageTarget() for _ in range(drills)]
    jobs = [
        Job(
            i,
            OutagePlan(
                phase_s=rng.uniform(0, interval),
                onset_s=0.0,
                duration_s=rng.uniform(2 * interval, 6 * interval) + 0.05,
            ),
            Controller(targets[i]),
        )
        for i in range(drills)
    ]
    reg = _registry(jobs)
    try:
        with tempfile.TemporaryDirectory(prefix="drillbook-parallel-") as tmp:
            base = bench_config(
                Path(tmp), interval=interval, probe_timeout=2.0, stable_for=max(2 * interval, 0.1)
            )
            config = replace(
                base,
                targets={
                    f"bench-{i}": TargetSpec(f"bench-{i}", "bench", {}) for i in range(drills)
                },
            )
            started = time.monotonic()
            run_parallel(
                jobs,  # type: ignore[arg-type]  # the scheduler needs only targets_of
                width,
                lambda job: _drill(job, reg, config, interval),  # type: ignore[arg-type]
                lambda job: {f"bench-{job.index}"},  # type: ignore[attr-defined]
                lambda result: False,
            )
            wall = time.monotonic() - started
    finally:
        for t in targets:
            t.close()
    return wall, jobs


def _ms(values: list[float], q: float) -> str:
    return f"{percentile(values, q) * 1000:.1f}" if values else "-"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--drills", type=int, default=12)
    ap.add_argument("--widths", default="1,2,4")
    ap.add_argument("--interval", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=19)
    args = ap.parse_args(argv)
    widths = [int(w) for w in args.widths.split(",")]
    rows = []
    serial_wall = None
    for width in widths:
        wall, jobs = run_width(width, args.drills, args.interval, args.seed)
        serial_wall = serial_wall if serial_wall is not None else wall
        ttd = [abs(j.ttd_err) for j in jobs if j.ttd_err is not None]
        rta = [abs(j.rta_err) for j in jobs if j.rta_err is not None]
        signed = [j.rta_err for j in jobs if j.rta_err is not None]
        passed = sum(j.verdict == "passed" for j in jobs)
        held = sum(j.in_brackets for j in jobs)
        rows.append(
            f"| {width} | {len(jobs)} | {passed} | {wall:.2f} | {serial_wall / wall:.2f} | "
            f"{_ms(ttd, 50)} / {_ms(ttd, 99)} | {_ms(rta, 50)} / {_ms(rta, 99)} | "
            f"{statistics.median(signed) * 1000 if signed else float('nan'):.1f} | "
            f"{held}/{len(jobs)} |"
        )
        print(rows[-1], file=sys.stderr)
    command = "python benchmarks/parallel.py " + " ".join(
        argv if argv is not None else sys.argv[1:]
    )
    text = header(
        "Drills in parallel (--parallel 1, 2, 4): wall time and TTD/RTA fidelity",
        command.strip(),
        f"one suite of {args.drills} drills per width, probe interval {args.interval:g}s, "
        f"seed {args.seed}",
    )
    text += (
        "\nSuite: N drills on N distinct targets (in-process HTTP servers flipped 503 and back by "
        "the benchmark; truth = the monotonic moment of each flip), the real engine per drill, "
        "scheduled by `drillbook.parallel.run_parallel` (the `drillbook run --parallel` "
        "scheduler). Same seeded outage plans at every width. Peer: the width-1 row (serial). "
        "Errors are |measured - truth|, nearest-rank percentiles. The machine was loaded by "
        "other sessions while this ran (see the load average): wall times are an upper bound.\n\n"
        "| width | drills | passed | suite wall (s) | speed-up vs width 1 | TTD abs err p50 / p99 "
        "(ms) | RTA abs err p50 / p99 (ms) | RTA median signed err (ms) | truth in both brackets |\n"
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n" + "\n".join(rows) + "\n"
    )
    write_result("parallel", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

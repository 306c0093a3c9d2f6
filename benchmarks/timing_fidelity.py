"""Timing fidelity: are the TTD and RTA drillbook reports right, and do their brackets hold?

The target is a small HTTP server in this process whose health endpoint answers 200 or 503. The
benchmark, not the target, decides when it is down: a benchmark-only fault (``bench.outage``)
turns it down, and a timer chosen by the benchmark turns it back up. Every flip happens under the
same lock the request handler takes to read the state, and the monotonic time is read inside that
lock, so the recorded moment separates exactly the requests that saw "up" from those that saw
"down": the ground truth.

The drill itself is the real engine: :class:`drillbook.engine.Drill` with the core ``http`` probe
running in the real :class:`~drillbook.probing.ProbeScheduler` (steady_state → inject →
await_detection → await_recovery → finish, intent ledger and TTL watchdog included).

Each outage picks a random phase (inject first sleeps U(0, interval), so the outage lands anywhere
between two probe ticks; the engine also looks once the moment the fault is verified), an onset
delay (half of the outages go down the instant inject runs; the other half U(0, 2·interval) after
inject returns, like a fault that takes a while to bite) and a duration U(2·interval, 6·interval) + 50 ms.

TTD is defined from t_inject, so its truth is max(0, down − t_inject); RTA's truth is
up − t_inject. Goal: |error| p99 <= interval + 20 ms, and the truth inside the reported bracket
every time.

    python benchmarks/timing_fidelity.py [--outages 50] [--intervals 0.05,0.25,1]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import bench_config, header, percentile, spread, write_result

from drillbook.backends import local
from drillbook.backends.base import Context, Fault, Registry, Selection
from drillbook.engine import Drill
from drillbook.model import FaultSpec, ProbeSpec

__all__ = ["OutageTarget", "main", "run_interval"]


class OutageTarget:
    """An HTTP server whose health the benchmark flips; each flip's moment is the ground truth."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._up = True
        target = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def do_GET(self) -> None:
                with target._lock:
                    up = target._up
                body = b"ok\n" if up else b"down\n"
                self.send_response(200 if up else 503)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.request_queue_size = 128
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/health"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def set(self, up: bool) -> float:
        """Flip the state; returns the monotonic moment, read while no request can look."""
        with self._lock:
            self._up = up
            return time.monotonic()

    @property
    def up(self) -> bool:
        with self._lock:
            return self._up

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class OutagePlan:
    phase_s: float  # inject sleeps this long first: where the outage lands between probe ticks
    onset_s: float  # 0: down inside inject; else down this long after inject returns
    duration_s: float  # down → up


class Controller:
    """What the fault and the recovery timer share: the plan and the truth they record."""

    def __init__(self, target: OutageTarget) -> None:
        self.target = target
        self.plan = OutagePlan(0.0, 0.0, 1.0)
        self.truth_down: float | None = None
        self.truth_up: float | None = None
        self._timers: list[threading.Thread] = []
        self._cancel = threading.Event()

    def reset(self, plan: OutagePlan) -> None:
        self.plan = plan
        self.truth_down = None
        self.truth_up = None
        self._cancel = threading.Event()
        self._timers = []

    def _at(self, when: float, fn: Any) -> None:
        cancel = self._cancel

        def run() -> None:
            while True:
                left = when - time.monotonic()
                if cancel.is_set():
                    return
                if left <= 0:
                    break
                time.sleep(min(left, 0.002) if left < 0.01 else left - 0.005)
            fn()

        t = threading.Thread(target=run, daemon=True)
        t.start()
        self._timers.append(t)

    def go_down(self) -> None:
        self.truth_down = self.target.set(False)
        up_at = self.truth_down + self.plan.duration_s
        self._at(up_at, self.go_up)

    def go_up(self) -> None:
        if self.truth_up is None:
            self.truth_up = self.target.set(True)

    def inject(self) -> None:
        time.sleep(self.plan.phase_s)
        if self.plan.onset_s <= 0:
            self.go_down()
        else:
            self._at(time.monotonic() + self.plan.onset_s, self.go_down)

    def revert(self) -> None:
        self._cancel.set()
        for t in self._timers:
            t.join(timeout=5)
        if not self.target.up:
            self.go_up()


class OutageFault(Fault):
    """``bench.outage``: the benchmark's fault; its truth lives in the :class:`Controller`."""

    controller: Controller | None = None

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        assert OutageFault.controller is not None
        self.c = OutageFault.controller

    def resolve(self) -> Selection:
        return Selection(("bench-http",), 1)

    def plan(self) -> str:
        return f"503 the bench server for {self.c.plan.duration_s:.3f}s"

    def inject(self) -> None:
        self.c.inject()

    def verify_injected(self) -> bool:
        return True  # onset may be deliberately delayed; the probes must find it

    def revert(self) -> None:
        self.c.revert()

    def verify_reverted(self) -> bool:
        return self.c.target.up

    def state(self) -> Mapping[str, Any]:
        return {}

    def load_state(self, state: Mapping[str, Any]) -> None:
        return None


def _registry() -> Registry:
    reg = Registry()
    local.register(reg)
    reg.add_backend("bench", lambda settings: None, "timing-fidelity benchmark target")
    reg.add_fault("bench.outage", "bench", OutageFault, help="benchmark outage")
    return reg


@dataclass
class Outcome:
    interval_s: float
    plan: dict[str, float]
    verdict: str
    ttd_s: float | None
    ttd_bracket: tuple[float, float] | None
    truth_ttd_s: float | None
    rta_s: float | None
    rta_bracket: tuple[float, float] | None
    truth_rta_s: float | None
    lag_p99_s: float

    @property
    def ttd_err(self) -> float | None:
        if self.ttd_s is None or self.truth_ttd_s is None:
            return None
        return self.ttd_s - self.truth_ttd_s

    @property
    def rta_err(self) -> float | None:
        if self.rta_s is None or self.truth_rta_s is None:
            return None
        return self.rta_s - self.truth_rta_s

    @property
    def ttd_in(self) -> bool:
        b, t = self.ttd_bracket, self.truth_ttd_s
        return b is not None and t is not None and b[0] <= t <= b[1]

    @property
    def rta_in(self) -> bool:
        b, t = self.rta_bracket, self.truth_rta_s
        return b is not None and t is not None and b[0] <= t <= b[1]


def run_one(
    interval: float, plan: OutagePlan, target: OutageTarget, reg: Registry, workdir: Path
) -> Outcome:
    controller = Controller(target)
    controller.reset(plan)
    OutageFault.controller = controller
    stable_for = max(2 * interval, 0.1)
    config = bench_config(workdir, interval=interval, probe_timeout=2.0, stable_for=stable_for)
    drill = Drill(f"fidelity-{interval:g}", config, registry=reg)
    probe = ProbeSpec("http", "health", {"url": target.url, "timeout": 1.0})
    try:
        drill.steady_state(probe)
        drill.inject(FaultSpec("bench.outage", {}, ("bench",)))
        drill.await_detection()
        measures = drill.await_recovery()
        result = drill.finish()
    except BaseException as exc:
        result = drill.finish(exc)
        measures = None
    t_inject: float | None = drill._t_inject  # the engine's own moment; nothing else is truth
    lags = list(drill._scheduler.lags) if drill._scheduler is not None else []
    truth_ttd = truth_rta = None
    if t_inject is not None and controller.truth_down is not None:
        truth_ttd = max(0.0, controller.truth_down - t_inject)
    if t_inject is not None and controller.truth_up is not None:
        truth_rta = controller.truth_up - t_inject
    return Outcome(
        interval_s=interval,
        plan=asdict(plan),
        verdict=result.verdict.value,
        ttd_s=measures.ttd_s if measures else None,
        ttd_bracket=measures.ttd_bracket_s if measures else None,
        truth_ttd_s=truth_ttd,
        rta_s=measures.rta_s if measures else None,
        rta_bracket=measures.rta_bracket_s if measures else None,
        truth_rta_s=truth_rta,
        lag_p99_s=percentile(lags, 99) if lags else float("nan"),
    )


def run_interval(interval: float, outages: int, seed: int, workdir: Path) -> list[Outcome]:
    rng = random.Random(seed)
    target = OutageTarget()
    reg = _registry()
    out: list[Outcome] = []
    try:
        for i in range(outages):
            plan = OutagePlan(
                phase_s=rng.uniform(0, interval),
                onset_s=0.0 if i % 2 == 0 else rng.uniform(0, 2 * interval),
                duration_s=rng.uniform(2 * interval, 6 * interval) + 0.05,
            )
            o = run_one(interval, plan, target, reg, workdir)
            out.append(o)
            flag = "" if (o.ttd_in and o.rta_in) else "  <-- truth outside bracket"
            print(
                f"[{interval:g}s {i + 1}/{outages}] {o.verdict} "
                f"ttd={o.ttd_s} truth={o.truth_ttd_s} br={o.ttd_bracket} | "
                f"rta={o.rta_s} truth={o.truth_rta_s} br={o.rta_bracket}{flag}",
                file=sys.stderr,
            )
    finally:
        target.close()
    return out


NOTES = """Findings:

- Bracket: the truth fell inside the reported TTD and RTA brackets for {held} outage of
  {total}; no engine bug found by this benchmark (timeline.compute_measures' brackets hold under
  random phase, delayed onset and this machine's scheduling noise).
- Looking at inject: the engine takes a look the moment the fault is verified
  (`ProbeScheduler.kick`), so the half of the outages that are down when inject returns are seen
  by that look (TTD error p50 about a millisecond); the delayed onsets still wait for a tick and
  set the TTD p99. RTA has no such moment here (the outage ends on a timer, with no recovery step
  to look after), so its error stays the sampling floor below.
- Error is the sampling floor: RTA is reported as the start of the first passing probe, so its
  error is one-sided (median ~ +interval/2, max ~ +interval plus lag). If a less biased point
  estimate is wanted, the bracket midpoint would halve the worst case; the bracket is already the
  honest answer and is what the reports print.
- Delayed onset: a fault whose effect lands after inject returns is only caught because this
  benchmark calls await_detection(); `Drill.run_scenario` skips await_detection when every
  recovery step is automatic, so such a fault with onset > stable_for would be judged "recovered,
  not detected". Real faults' verify_injected() waits for the effect, so this is a contract for
  backend authors rather than an engine bug."""


def _ms(v: float) -> str:
    return f"{v * 1000:.1f}"


def summarise(interval: float, outs: Sequence[Outcome]) -> dict[str, Any]:
    ttd = [abs(e) for o in outs if (e := o.ttd_err) is not None]
    rta = [abs(e) for o in outs if (e := o.rta_err) is not None]
    rta_signed = [e for o in outs if (e := o.rta_err) is not None]
    goal = interval + 0.020
    return {
        "interval_s": interval,
        "n": len(outs),
        "passed": sum(o.verdict == "passed" for o in outs),
        "ttd_p50": percentile(ttd, 50),
        "ttd_p99": percentile(ttd, 99),
        "ttd_median": statistics.median(ttd) if ttd else float("nan"),
        "ttd_spread": spread(ttd),
        "rta_p50": percentile(rta, 50),
        "rta_p99": percentile(rta, 99),
        "rta_signed_median": statistics.median(rta_signed) if rta_signed else float("nan"),
        "rta_spread": spread(rta),
        "ttd_in": sum(o.ttd_in for o in outs),
        "rta_in": sum(o.rta_in for o in outs),
        "lag_p99_max": max((o.lag_p99_s for o in outs), default=float("nan")),
        "goal_s": goal,
        "goal_met": bool(ttd and rta)
        and percentile(ttd, 99) <= goal
        and percentile(rta, 99) <= goal
        and all(o.ttd_in and o.rta_in for o in outs),
    }


def render(summaries: Sequence[Mapping[str, Any]], outs: Sequence[Outcome], command: str) -> str:
    runs = ", ".join(f"{s['n']} outages at {s['interval_s']:g}s" for s in summaries)
    lines = [
        header("Timing fidelity (TTD and RTA against ground truth)", command, runs),
        "Target: an in-process HTTP server flipped 200/503 by the benchmark under the lock its "
        "handler reads; truth = the monotonic moment of each flip. Drill: the real engine "
        "(`Drill` + core `http` probe + `ProbeScheduler`, intent ledger and watchdog on). Peer / "
        "floor: the goal |error| p99 <= interval + 20 ms (the floor of a sampled measurement is "
        "one interval). Errors are |measured - truth|; p50/p99 are nearest-rank.",
        "",
        "| interval | outages | passed | TTD abs err p50 / p99 (ms) | RTA abs err p50 / p99 (ms) "
        "| RTA median signed err (ms) | truth in TTD bracket | truth in RTA bracket "
        "| goal (ms) | p99 / goal | goal met |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in summaries:
        worst = max(s["ttd_p99"], s["rta_p99"])
        lines.append(
            f"| {s['interval_s'] * 1000:g} ms | {s['n']} | {s['passed']} "
            f"| {_ms(s['ttd_p50'])} / {_ms(s['ttd_p99'])} | {_ms(s['rta_p50'])} / "
            f"{_ms(s['rta_p99'])} | {_ms(s['rta_signed_median'])} | {s['ttd_in']}/{s['n']} "
            f"| {s['rta_in']}/{s['n']} | {_ms(s['goal_s'])} | {worst / s['goal_s']:.2f} "
            f"| {'yes' if s['goal_met'] else 'NO'} |"
        )
    lines.append("")
    for s in summaries:
        lines.append(
            f"- {s['interval_s'] * 1000:g} ms: TTD |err| spread {s['ttd_spread']} s; RTA |err| "
            f"spread {s['rta_spread']} s; worst per-drill p99 scheduling lag "
            f"{_ms(s['lag_p99_max'])} ms."
        )
    misses = [o for o in outs if not (o.ttd_in and o.rta_in)]
    lines += ["", NOTES.format(held="no" if misses else "every", total=len(outs))]
    if misses:
        lines += ["", "Outages whose truth fell outside a bracket:", ""]
        for o in misses[:20]:
            lines.append(
                f"- interval {o.interval_s:g}s plan {json.dumps(o.plan)}: ttd {o.ttd_s} "
                f"bracket {o.ttd_bracket} truth {o.truth_ttd_s}; rta {o.rta_s} bracket "
                f"{o.rta_bracket} truth {o.truth_rta_s}"
            )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--outages", type=int, default=50)
    ap.add_argument("--outages-1s", type=int, default=None, help="outages at 1 s (default: same)")
    ap.add_argument("--intervals", default="0.05,0.25,1")
    ap.add_argument("--seed", type=int, default=20261122)
    ap.add_argument("--no-write", action="store_true", help="print instead of writing results/")
    args = ap.parse_args(argv)
    intervals = [float(x) for x in args.intervals.split(",") if x]
    summaries, everything = [], []
    with tempfile.TemporaryDirectory(prefix="drillbook-fidelity-") as tmp:
        for k, interval in enumerate(intervals):
            n = args.outages
            if interval >= 1.0 and args.outages_1s is not None:
                n = args.outages_1s
            outs = run_interval(interval, n, args.seed + k, Path(tmp))
            everything += outs
            summaries.append(summarise(interval, outs))
    command = "python benchmarks/timing_fidelity.py " + " ".join(argv or sys.argv[1:])
    text = render(summaries, everything, command.strip())
    if args.no_write:
        print(text)
    else:
        write_result("fidelity", text)
    return 0 if all(s["goal_met"] for s in summaries) else 1


if __name__ == "__main__":
    raise SystemExit(main())

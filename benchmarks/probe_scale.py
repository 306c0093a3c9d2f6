"""Probe scale: how many concurrent HTTP probes at 10 Hz keep p99 scheduling lag under 20 ms?

The prober is the core: the registry's ``http`` probe (:class:`HttpProbe`, its own HTTP/1.1
client on the event loop) driven by :class:`drillbook.probing.ProbeScheduler`, whose ``lags``
list records, for every tick, how late the probe started against its due time. The targets are
local HTTP servers: one separate process (``--server``) listening on several 127.0.0.1 ports with
a minimal keep-alive responder (on uvloop when installed: the targets are not what is measured,
but they share this machine's two cores with the prober, as they would on a small CI runner).

For each probe count on a ladder the scheduler runs for ``--seconds``; we report p99 lag over all
ticks and over steady state (the first tick of each probe dropped), the failures, the achieved
rate against the wanted one (a saturated loop skips ticks rather than piling them up, so it shows
as a lower rate, not only as lag) and the prober's CPU per probe.

Modes: ``core`` is what a drill gets by default (kept-alive connection per probe, uvloop when
installed); ``engine`` is the same inside a real :class:`drillbook.engine.Drill` with a run
journal, so every sample also pays for the timeline and the hash-chained journal event;
``asyncio-loop`` is the same on the standard library's loop
(``DRILLBOOK_EVENT_LOOP=asyncio``); ``new-connection`` is ``keepalive: false`` (connect, request,
response, close for every probe, like kubelet).

    python benchmarks/probe_scale.py [--ladder 250,500,...] [--seconds 4] [--reps 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import bench_config, header, percentile, spread, write_result

from drillbook.backends import local
from drillbook.backends.base import Context, Fault, Registry, Selection
from drillbook.engine import Drill
from drillbook.journal import RunJournal, environment_snapshot
from drillbook.model import FaultSpec, ProbeResult, ProbeSpec
from drillbook.probing import NamedProbe, ProbeScheduler, loop_kind
from drillbook.timeline import Sample

__all__ = ["main", "run_count"]

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n"
RESPONSE_CLOSE = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n"
MODES = ("core", "engine", "asyncio-loop", "new-connection")
INTERVAL = 0.1
GOAL_LAG = 0.020
MIN_RATE_SHARE = 0.95


# ----------------------------------------------------------------------------- server process
class _Responder(asyncio.Protocol):
    """Answers each request on the connection; closes when the request says Connection: close."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: Any = transport
        self.buf = b""

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while b"\r\n\r\n" in self.buf:
            head, _, self.buf = self.buf.partition(b"\r\n\r\n")
            if b"Connection: close" in head:
                self.transport.write(RESPONSE_CLOSE)
                self.transport.close()
                return
            self.transport.write(RESPONSE)


async def _serve(ports: int) -> None:
    loop = asyncio.get_running_loop()
    servers = [
        await loop.create_server(_Responder, "127.0.0.1", 0, backlog=4096) for _ in range(ports)
    ]
    print(" ".join(str(s.sockets[0].getsockname()[1]) for s in servers), flush=True)
    # Exit when the parent closes our stdin: no orphan servers.
    await loop.run_in_executor(None, sys.stdin.read)


def start_server(ports: int) -> tuple[subprocess.Popen[str], list[int]]:
    proc = subprocess.Popen(
        [sys.executable, __file__, "--server", str(ports)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.split():
        raise SystemExit(f"the probe server did not start (exit {proc.wait()}); see its stderr")
    return proc, [int(p) for p in line.split()]


def stop_server(proc: subprocess.Popen[str]) -> None:
    assert proc.stdin is not None
    proc.stdin.close()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# ----------------------------------------------------------------------------- prober
class NoopFault(Fault):
    """``bench.noop``: a fault that touches nothing, so a real Drill starts its probes."""

    def resolve(self) -> Selection:
        return Selection(("bench",), 1)

    def plan(self) -> str:
        return "nothing (probe-scale benchmark)"

    def inject(self) -> None:
        return None

    def verify_injected(self) -> bool:
        return True

    def revert(self) -> None:
        return None

    def verify_reverted(self) -> bool:
        return True

    def state(self) -> Mapping[str, Any]:
        return {}

    def load_state(self, state: Mapping[str, Any]) -> None:
        return None


def run_engine(count: int, ports: Sequence[int], seconds: float, workdir: Path) -> dict[str, Any]:
    """The whole engine path: a real Drill (journal included) watching ``count`` http probes.

    Every sample goes through ``Drill._on_sample``: the timeline entry, the run journal's
    hash-chained ``probe`` event (JSON, SHA-256, write), guards; and the main thread sits in
    ``await_detection`` measuring as samples arrive: what a real drill pays."""
    reg = Registry()
    local.register(reg)
    reg.add_backend("bench", lambda settings: None, "probe-scale benchmark")
    reg.add_fault("bench.noop", "bench", NoopFault, help="touches nothing")
    config = bench_config(workdir, interval=INTERVAL, probe_timeout=1.0, stable_for=0.2)
    env = environment_snapshot("benchmark", workdir, "benchmark", False)
    journal = RunJournal(workdir / "reports", environment=env)
    drill = Drill(f"scale-{count}", config, journal=journal, registry=reg)
    specs = [
        ProbeSpec(
            "http",
            f"p{i}",
            {"url": f"http://127.0.0.1:{ports[i % len(ports)]}/health/{i}", "timeout": "1s"},
        )
        for i in range(count)
    ]
    drill.steady_state(*specs)
    cpu0 = time.process_time()
    t0 = time.monotonic()
    drill.inject(FaultSpec("bench.noop", {}, ("bench",)))
    # Waiting for a detection that never comes: the engine's own wait, which measures as the
    # samples arrive, exactly as during a drill's outage.
    drill.await_detection(seconds)
    sched = drill._scheduler  # the benchmark reads the engine's own scheduler
    assert sched is not None
    sched.stop()
    cpu = time.process_time() - cpu0
    elapsed = time.monotonic() - t0
    lags = list(sched.lags)
    drill.finish()
    journal.finish(0)
    samples = [e for e in drill._timeline if e.get("kind") == "probe"]
    ok = sum(1 for e in samples if e["ok"])
    fail = len(samples) - ok
    details: dict[str, int] = {}
    for e in samples:
        if not e["ok"]:
            details[e["detail"][:60]] = details.get(e["detail"][:60], 0) + 1
    return _row(
        count, "engine", loop_kind(count), sched.skipped, lags, ok, fail, elapsed, cpu, details
    )


def _row(
    count: int,
    mode: str,
    loop: str,
    skipped: int,
    lags: list[float],
    ok: int,
    fail: int,
    elapsed: float,
    cpu: float,
    details: dict[str, int],
) -> dict[str, Any]:
    steady = lags[count:]
    return {
        "count": count,
        "mode": mode,
        "loop": loop,
        "skipped": skipped,
        "ticks": len(lags),
        "p50": percentile(lags, 50),
        "p99": percentile(lags, 99),
        "p99_steady": percentile(steady, 99) if steady else float("nan"),
        "max": max(lags) if lags else float("nan"),
        "ok": ok,
        "fail": fail,
        "rate": (ok + fail) / elapsed,
        "cpu_per_probe_us": cpu / max(1, ok + fail) * 1e6,
        "wanted_rate": count / INTERVAL,
        "fail_details": dict(sorted(details.items(), key=lambda kv: -kv[1])[:3]),
        "rss_mib": _rss_mib(),
    }


def _rss_mib() -> float:
    """The prober's resident memory now (the engine mode keeps every sample, as a drill does)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def run_count(
    count: int, ports: Sequence[int], seconds: float, mode: str, workdir: Path
) -> dict[str, Any]:
    if mode == "engine":
        os.environ.pop("DRILLBOOK_EVENT_LOOP", None)
        return run_engine(count, ports, seconds, workdir)
    reg = Registry()
    local.register(reg)
    factory = reg.probe("http").factory
    extra: dict[str, Any] = {"timeout": "1s"}  # the scheduler's bound below, too
    if mode == "new-connection":
        extra["keepalive"] = False
    probes = [
        NamedProbe(
            f"p{i}",
            factory(
                Context(
                    params={"url": f"http://127.0.0.1:{ports[i % len(ports)]}/health/{i}", **extra},
                    workdir=workdir,
                    state_dir=workdir / ".drillbook",
                )
            ),
        )
        for i in range(count)
    ]
    lock = threading.Lock()
    ok = fail = 0
    details: dict[str, int] = {}

    def on_sample(sample: Sample, result: ProbeResult) -> None:
        nonlocal ok, fail
        with lock:
            if sample.ok:
                ok += 1
            else:
                fail += 1
                key = sample.detail[:60]
                details[key] = details.get(key, 0) + 1

    if mode == "asyncio-loop":
        os.environ["DRILLBOOK_EVENT_LOOP"] = "asyncio"
    else:
        os.environ.pop("DRILLBOOK_EVENT_LOOP", None)
    loop = loop_kind(count)
    sched = ProbeScheduler(probes, interval=INTERVAL, timeout=1.0, on_sample=on_sample)
    t0 = time.monotonic()
    cpu0 = time.process_time()
    sched.start()
    time.sleep(seconds)
    sched.stop()
    cpu = time.process_time() - cpu0
    elapsed = time.monotonic() - t0
    lags = list(sched.lags)
    return _row(count, mode, loop, sched.skipped, lags, ok, fail, elapsed, cpu, details)


NOTES = """Notes:

- History: the first version of this benchmark (stdlib asyncio, a new connection and an extra
  task per probe, every probe due at the same instant) held 100 probes; the goal needed 1,000.
  What moved it: the http probe's own HTTP/1.1 client with a kept-alive connection (the largest
  share: connect and close were ~60% of the CPU, mostly in the kernel), probe phases spread over
  the interval, connections opened before the first tick, asyncio.timeout instead of wait_for,
  and uvloop. For the engine row: a preformatted journal line per sample, detection waiting only
  on failing samples, measuring throttled to its own cost, and, from 100 probes, a 1 ms GIL
  switch interval and gc.freeze() every half second.
- Noise: p99 is a tail statistic; on this shared 2-core machine one busy neighbour moves it by
  tens of ms (an earlier run of the same code at load average ~2-3 put core at 1,000 between
  4 ms and 140 ms). Read the three runs per row, and the load average above.
- The targets' server runs on uvloop in its own process; it is not what is measured, but it
  shares the two cores, so the prober gets about one core.
"""


def _ms(v: float) -> str:
    return f"{v * 1000:.1f}"


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--server", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--ladder", default="250,500,750,1000,1250,1500,2000")
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--ports", type=int, default=8)
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)
    if args.server is not None:
        from drillbook.probing import new_event_loop

        with asyncio.Runner(loop_factory=new_event_loop) as runner:
            runner.run(_serve(args.server))
        return 0

    ladder = [int(x) for x in args.ladder.split(",") if x]
    modes = [m for m in args.modes.split(",") if m]
    proc, ports = start_server(args.ports)
    rows: list[dict[str, Any]] = []
    try:
        with tempfile.TemporaryDirectory(prefix="drillbook-scale-") as tmp:
            for mode in modes:
                misses = 0
                for count in ladder:
                    reps = [
                        run_count(count, ports, args.seconds, mode, Path(tmp))
                        for _ in range(args.reps)
                    ]
                    p99s = [r["p99"] for r in reps]
                    row = {
                        **reps[len(reps) // 2],
                        "p99_median": statistics.median(p99s),
                        "p99_reps": p99s,
                        "p99_steady_median": statistics.median(r["p99_steady"] for r in reps),
                        "rate_median": statistics.median(r["rate"] for r in reps),
                        "cpu_us_median": statistics.median(r["cpu_per_probe_us"] for r in reps),
                        "rss_max": max(r["rss_mib"] for r in reps),
                        "fail_total": sum(r["fail"] for r in reps),
                        "samples_total": sum(r["ok"] + r["fail"] for r in reps),
                    }
                    rows.append(row)
                    print(
                        f"[{mode} N={count}] p99 {_ms(row['p99_median'])} ms (reps "
                        f"{', '.join(_ms(p) for p in p99s)}), steady {_ms(row['p99_steady_median'])}"
                        f" ms, rate {row['rate_median']:.0f}/{row['wanted_rate']:.0f}/s, "
                        f"fails {row['fail_total']}",
                        file=sys.stderr,
                    )
                    if (
                        row["p99_median"] >= GOAL_LAG
                        or row["rate_median"] < MIN_RATE_SHARE * row["wanted_rate"]
                    ):
                        misses += 1
                        if misses >= 2:
                            break
    finally:
        stop_server(proc)

    def best(mode: str, key: str) -> int:
        """Largest count with p99 lag under the goal AND >= 95% of due probes actually run: the
        scheduler skips ticks a late probe overran, so a saturated loop shows a lower rate, not
        a larger lag."""
        good = [
            r["count"]
            for r in rows
            if r["mode"] == mode
            and r[key] < GOAL_LAG
            and r["rate_median"] >= MIN_RATE_SHARE * r["wanted_rate"]
        ]
        return max(good, default=0)

    def best_lag_only(mode: str) -> int:
        good = [r["count"] for r in rows if r["mode"] == mode and r["p99_median"] < GOAL_LAG]
        return max(good, default=0)

    command = "python benchmarks/probe_scale.py " + " ".join(argv or sys.argv[1:])
    lines = [
        header(
            "Probe scale (concurrent HTTP probes at 10 Hz)",
            command.strip(),
            f"{args.reps} runs of {args.seconds:g}s per probe count; median of the runs' p99",
        ),
        "Prober: the core `http` probe through `ProbeScheduler` (one event loop in one thread, "
        "probe phases spread across the interval). Targets: one separate server process on "
        f"{args.ports} ports of 127.0.0.1, keep-alive responder on "
        f"{'uvloop' if loop_kind() == 'uvloop' else 'asyncio'}. Lag = probe start - due time "
        "(`ProbeScheduler.lags`). Goal: p99 lag < 20 ms with >= 1,000 probes; a count also "
        "needs >= 95% of due probes run (skipped ticks show saturation).",
        "",
        "| mode | loop | probes | ticks (1 run) | lag p50 (ms) | lag p99 (ms), median of runs | "
        "p99 runs (ms) | p99 without tick 0 (ms) | achieved / wanted probes per s | prober CPU "
        "per probe (µs) | prober RSS after a run, max (MiB) | failed samples |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['mode']} | {r['loop']} | {r['count']} | {r['ticks']} | {_ms(r['p50'])} | "
            f"{_ms(r['p99_median'])} | {', '.join(_ms(p) for p in r['p99_reps'])} | "
            f"{_ms(r['p99_steady_median'])} | {r['rate_median']:.0f} / {r['wanted_rate']:.0f} | "
            f"{r['cpu_us_median']:.0f} | {r['rss_max']:.0f} | "
            f"{r['fail_total']} of {r['samples_total']} |"
        )
    lines.append("")
    for mode in modes:
        n = best(mode, "p99_median")
        lines.append(
            f"- **{mode}**: largest probe count with p99 lag < 20 ms and >= 95% of due probes run: "
            f"**{n}** (ratio to the 1,000 goal: {n / 1000:.2f}"
            f"{', met' if n >= 1000 else ', NOT met'}); without the tick-0 herd: "
            f"{best(mode, 'p99_steady_median')}; by lag alone (ignoring skipped ticks): "
            f"{best_lag_only(mode)}. Spread of p99 across counts: "
            f"{spread([r['p99_median'] for r in rows if r['mode'] == mode])} s."
        )
    for mode in modes:
        mine = [r["cpu_us_median"] for r in rows if r["mode"] == mode]
        if not mine:
            continue
        cpu_us = statistics.median(mine)
        lines.append(
            f"- CPU ceiling, {mode}: a median {cpu_us:.0f} µs of prober CPU per HTTP probe "
            f"(request, parse, scheduling{', connect and close' if mode == 'new-connection' else ''}"
            f"; one loop, so one core) allows at most ~{1e6 / cpu_us:.0f} probes/s = "
            f"~{1e5 / cpu_us:.0f} targets at 10 Hz, before counting the server sharing the two "
            "cores. 1,000 targets at 10 Hz need 10,000 probes/s."
        )
    fails = {k: v for r in rows for k, v in r["fail_details"].items()}
    if fails:
        lines.append(f"- Failure details seen (first 60 chars): {sorted(fails)[:3]}")
    text = "\n".join(lines) + "\n\n" + NOTES
    if args.no_write:
        print(text)
    else:
        write_result("probe_scale", text)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())

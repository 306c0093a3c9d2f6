"""Overhead: the harness's own time per drill, as a user feels it, and its CPU per probe.

A drill lasts as long as the system under drill takes to fail and recover; what drillbook adds is
the time before the fault goes in and the time after recovery is verified. So, for whole
``drillbook run scenarios/<id>.yaml`` processes (direct: no pytest; journal, reports and history
included, as a user gets them), from the process's own start:

- start-up to inject: process spawned → the journal's ``inject`` event (interpreter, imports,
  config, validation, backend preparation, steady state, the intent ledger, the safety checks
  before the fault), less the time the platform took to carry the fault out and show it (the
  ``inject`` event's ``inject_s``: a server killed and its folder deleted), shown on its own;
- recovery verified to exit: the journal's ``recovered`` event → the process has exited (verify
  checks, verdict, journal, report.html/summary.md/drills.csv, history), less the time inside the
  fault's own ``revert`` (the platform's work, such as a restored server resyncing its standby),
  which is shown on its own.

Bounds: start-up to inject < 0.5 s, recovery verified to exit < 0.3 s. Two drills: ``trivial``
(a busybox httpd victim, probed, SIGKILLed, restarted by a script, probed healthy) and the
sandbox's ``db_restore`` (real PostgreSQL: data folder destroyed, base backup + WAL restored,
ledger read back); the sandbox is brought up once before the runs, as ``drillbook sandbox up``
leaves it, so its start is not counted. CPU per probe: the engine's path (a real Drill with a run
journal watching N http probes at 10 Hz against a local server process,
``probe_scale.run_engine``), prober CPU divided by samples taken.

For information only (no goal): the trivial experiment run whole by Chaos Toolkit's ``chaos run``
(own virtualenv, ``pip install chaostoolkit``), alternated with drillbook's runs, and the ratio.
drillbook runs on this interpreter with this tree's ``src`` on ``PYTHONPATH``.

Also: ``import drillbook`` time and collecting 500 generated scenarios.

    python benchmarks/overhead.py [--runs 15] [--db-runs 5] [--import-runs 20]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))  # this tree's drillbook

from _common import header, spread, write_result

__all__ = ["main"]

REPO = Path(__file__).resolve().parent.parent
CTK_VENV = Path(os.environ.get("DRILLBOOK_BENCH_CTK_VENV", "/tmp/drillbook-bench-ctk"))
#: The trivial scenario's settings (stated in the results): probes every 10 ms; recovered once
#: the probe has passed for 20 ms with no failure since, after the restart step.
PROBE_INTERVAL = "10ms"
STABLE_FOR = "20ms"


def ensure_chaostoolkit() -> Path:
    chaos = CTK_VENV / "bin" / "chaos"
    if chaos.exists():
        return chaos
    subprocess.run([sys.executable, "-m", "venv", str(CTK_VENV)], check=True)
    subprocess.run(
        [str(CTK_VENV / "bin" / "pip"), "install", "-q", "chaostoolkit"], check=True, timeout=900
    )
    return chaos


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


RESTART = """\
#!/bin/sh
# Start (or restart) the victim and wait until it answers: the runbook step both tools run.
busybox httpd -f -p 127.0.0.1:{port} -h {www} </dev/null >/dev/null 2>&1 &
echo $! > {pidfile}
i=0
while [ $i -lt 250 ]; do
  busybox wget -q -O /dev/null http://127.0.0.1:{port}/health 2>/dev/null && exit 0
  sleep 0.02
  i=$((i+1))
done
exit 1
"""


def make_project(root: Path) -> dict[str, Any]:
    port = _free_port()
    www = root / "www"
    www.mkdir(parents=True)
    (www / "health").write_text("ok\n")
    pidfile = root / "victim.pid"
    restart = root / "restart.sh"
    restart.write_text(RESTART.format(port=port, www=www, pidfile=pidfile))
    restart.chmod(0o755)
    url = f"http://127.0.0.1:{port}/health"

    (root / "drillbook.yaml").write_text(
        textwrap.dedent(
            f"""\
            environment: sandbox
            safety: {{max_targets: 1, max_percent: 100}}
            targets:
              victim: {{backend: local, pid_file: victim.pid, port: {port}}}
            """
        )
    )
    (root / "scenarios").mkdir()
    (root / "scenarios" / "trivial.yaml").write_text(
        textwrap.dedent(
            f"""\
            id: trivial
            description: probe, SIGKILL the victim, restart it, probe again
            objectives: {{rto: 30s, severity: P2}}
            probe_interval: {PROBE_INTERVAL}
            stable_for: {STABLE_FOR}
            timeout: 30s
            fault: {{type: process.kill, target: victim, signal: KILL}}
            probes:
              - {{name: health, type: http, url: "{url}"}}
            recovery:
              - {{kind: scripted, name: restart, type: command, command: [sh, {restart}]}}
            """
        )
    )
    experiment = {
        "version": "1.0.0",
        "title": "trivial: probe, SIGKILL the victim, restart it, probe again",
        "description": "the same experiment as drillbook's scenarios/trivial.yaml",
        "steady-state-hypothesis": {
            "title": "victim answers",
            "probes": [
                {
                    "type": "probe",
                    "name": "health",
                    "tolerance": 200,
                    "provider": {"type": "http", "url": url, "timeout": 2},
                }
            ],
        },
        "method": [
            {
                "type": "action",
                "name": "kill victim",
                "provider": {
                    "type": "process",
                    "path": "sh",
                    "arguments": ["-c", f"kill -9 $(cat {pidfile})"],
                },
            },
            {
                "type": "action",
                "name": "restart",
                "provider": {"type": "process", "path": "sh", "arguments": [str(restart)]},
            },
        ],
        "rollbacks": [],
    }
    (root / "experiment.json").write_text(json.dumps(experiment, indent=2))
    return {"port": port, "pidfile": pidfile, "restart": restart, "url": url}


def start_victim(project: dict[str, Any]) -> None:
    subprocess.run(["sh", str(project["restart"])], check=True, timeout=30)


def stop_victim(project: dict[str, Any]) -> None:
    """Kill the victim and wait until it is gone, so the next start can bind the port."""
    try:
        pid = int(Path(project["pidfile"]).read_text().strip())
        os.kill(pid, 9)
    except (OSError, ValueError):
        return
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as fh:
                if fh.read().rsplit(") ", 1)[1][:1] == "Z":
                    break
        except OSError:
            break
        time.sleep(0.01)


def timed(
    cmd: Sequence[str], cwd: Path, env: dict[str, str] | None = None
) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds (user+sys of the whole process tree) and exit status."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(
        list(cmd), cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=300
    )
    elapsed = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        print(f"  {cmd[0]} exit {proc.returncode}: {proc.stderr[-400:]!r}", file=sys.stderr)
    return elapsed, cpu, proc.returncode


#: The bounds this benchmark checks (seconds): what the harness may add before the fault goes in
#: and after recovery is verified.
BOUND_STARTUP = 0.5
BOUND_EXIT = 0.3
#: Probe counts for the CPU-per-probe figure (engine path, 10 Hz), and how long each runs.
PROBE_COUNTS = (10, 100)
PROBE_SECONDS = 5.0


def _drill_env() -> dict[str, str]:
    """This tree's drillbook on this interpreter; nothing from the caller's DRILLBOOK_*."""
    env = _clean_env()
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO / "src"), *([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])]
    )
    return env


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def run_drill(cmd: Sequence[str], cwd: Path, env: dict[str, str]) -> dict[str, Any]:
    """One whole process: wall, CPU (its process tree), exit status, and the harness's parts.

    Moments inside the run come from its own ``events.jsonl``: the offsets between events from
    their monotonic ``mono_s``, the process's spawn and exit against the ``run_start`` event's
    wall time (written to the millisecond)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    spawned = time.time()
    proc = subprocess.run(
        list(cmd), cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=900
    )
    exited = time.time()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        print(f"  {cmd[0]} exit {proc.returncode}: {proc.stderr[-400:]!r}", file=sys.stderr)
    row: dict[str, Any] = {"wall": exited - spawned, "cpu": cpu, "code": proc.returncode}
    events: dict[str, dict[str, Any]] = {}
    try:
        with open(cwd / "reports" / "latest" / "events.jsonl", encoding="utf-8") as fh:
            for line in fh:
                event = json.loads(line)
                events.setdefault(event["kind"], event)  # the first of each kind
                if event["kind"] == "phase":
                    events.setdefault(f"phase:{event['phase']}", event)
    except (OSError, ValueError):
        return row
    if not {"run_start", "inject", "recovered", "revert", "drill_end", "run_end"} <= events.keys():
        return row
    start = events["run_start"]
    t0 = _epoch(start["t"]) - start["mono_s"]  # the journal's monotonic zero, on the wall clock

    def at(kind: str) -> float:
        return t0 + float(events[kind]["mono_s"])

    # The fault's revert is the platform's work (a restored server resyncing its standby), not
    # the harness's: it is shown on its own and left out of the bounded figure.
    revert = at("revert") - at("phase:revert") if "phase:revert" in events else 0.0
    # Likewise the ledger's history before the fault (longer than the RPO, or a loss older than
    # the first write could not be seen): the measure's need, shown on its own.
    history = float(events["ledger_history"]["waited_s"]) if "ledger_history" in events else 0.0
    # And the fault's own work, from the call until it is seen (SIGKILL, a folder deleted).
    fault = float(events["inject"].get("inject_s") or 0.0)
    row.update(
        startup_to_inject=at("inject") - spawned - history - fault,
        ledger_history=history,
        inject=fault,
        exit_after_recovered=exited - at("recovered") - revert,
        revert=revert,
        to_run_start=at("run_start") - spawned,
        run_start_to_inject=at("inject") - at("run_start") - history - fault,
        recovered_to_drill_end=at("drill_end") - at("recovered") - revert,
        drill_end_to_run_end=at("run_end") - at("drill_end"),
        run_end_to_exit=exited - at("run_end"),
    )
    return row


def _cli(*words: str) -> list[str]:
    return [sys.executable, "-m", "drillbook.cli", *words]


def bench_trivial(runs: int, root: Path, with_chaos: bool) -> dict[str, Any]:
    """The trivial drill, alternated with ``chaos run`` of the same experiment when available."""
    project = make_project(root)
    env = _drill_env()
    tools: dict[str, list[str]] = {"drillbook": _cli("run", "scenarios/trivial.yaml")}
    chaos_version = None
    if with_chaos:
        chaos = ensure_chaostoolkit()
        tools["chaos"] = [
            str(chaos),
            "--log-file",
            str(root / "chaostoolkit.log"),
            "run",
            "--journal-path",
            str(root / "ctk-journal.json"),
            "experiment.json",
        ]
        chaos_version = subprocess.run(
            [str(chaos), "--version"], capture_output=True, text=True, timeout=60
        ).stdout.strip()
    tools["floor"] = [sys.executable, "-c", "pass"]  # the machine's state, run for run
    rows: dict[str, list[dict[str, Any]]] = {k: [] for k in tools}
    for cmd in tools.values():  # one warm-up each (page cache, .pyc files), not counted
        start_victim(project)
        run_drill(cmd, root, env)
        stop_victim(project)
    for i in range(runs):
        order = list(tools) if i % 2 == 0 else list(reversed(tools))
        for name in order:
            start_victim(project)
            rows[name].append(run_drill(tools[name], root, env))
            stop_victim(project)
        print(
            f"[trivial {i + 1}/{runs}] "
            + ", ".join(
                f"{k} {v[-1]['wall']:.3f}s (exit {v[-1]['code']})" for k, v in rows.items()
            ),
            file=sys.stderr,
        )
    return {"rows": rows, "chaos_version": chaos_version}


def bench_db_restore(runs: int, root: Path) -> dict[str, Any] | None:
    """The sandbox's db_restore, the sandbox up before (and down after) the measured runs."""
    root.mkdir(parents=True)
    shutil.copy(REPO / "drillbook.yaml", root / "drillbook.yaml")
    (root / "scenarios").mkdir()
    shutil.copy(REPO / "scenarios" / "db_restore.yaml", root / "scenarios" / "db_restore.yaml")
    env = _drill_env()
    up = subprocess.run(
        _cli("sandbox", "up"), cwd=root, env=env, capture_output=True, text=True, timeout=900
    )
    if up.returncode != 0:
        print(f"db_restore skipped: sandbox up failed: {up.stderr[-400:]}", file=sys.stderr)
        return None
    rows: list[dict[str, Any]] = []
    try:
        cmd = _cli("run", "scenarios/db_restore.yaml")
        run_drill(cmd, root, env)  # warm-up, not counted
        for i in range(runs):
            rows.append(run_drill(cmd, root, env))
            print(f"[db_restore {i + 1}/{runs}] {rows[-1]['wall']:.3f}s", file=sys.stderr)
    finally:
        subprocess.run(_cli("sandbox", "down"), cwd=root, env=env, capture_output=True, timeout=300)
    return {"rows": rows}


def bench_probe_cpu(root: Path) -> list[dict[str, Any]]:
    """Prober CPU per sample on the engine's path, from ``probe_scale.run_engine``."""
    import probe_scale

    server, ports = probe_scale.start_server(4)
    out = []
    try:
        for count in PROBE_COUNTS:
            work = root / f"probes-{count}"
            work.mkdir(parents=True)
            row = probe_scale.run_engine(count, ports, PROBE_SECONDS, work)
            out.append(row)
            print(f"[probes {count}] {row['cpu_per_probe_us']:.0f} µs/probe", file=sys.stderr)
    finally:
        probe_scale.stop_server(server)
    return out


def _clean_env() -> dict[str, str]:
    """The caller's environment without DRILLBOOK_* and without PYTHONDONTWRITEBYTECODE."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("DRILLBOOK_") and k != "PYTHONDONTWRITEBYTECODE"
    }


def bench_import(runs: int) -> dict[str, Any]:
    env = _drill_env()

    def wall(code: str) -> float:
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, timeout=60, env=env)
        return time.perf_counter() - t0

    wall("import drillbook.plugin, drillbook.cli, drillbook.runner")  # warm-up: .pyc files

    bare, full, plugin = [], [], []
    cumulative: list[float] = []
    for _ in range(runs):
        bare.append(wall("pass"))
        full.append(wall("import drillbook"))
        plugin.append(wall("import drillbook.plugin"))
        out = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", "import drillbook"],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        ).stderr
        for line in out.splitlines():
            parts = [p.strip() for p in line.split("|")]
            if len(parts) == 3 and parts[2] == "drillbook":
                cumulative.append(int(parts[1]) / 1e6)
    heavy = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, drillbook, drillbook.plugin, drillbook.cli, drillbook.runner; "
            "print(' '.join(m for m in ('boto3','kubernetes','docker','psycopg','pytest') "
            "if m in sys.modules))",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    ).stdout.strip()
    return {
        "bare": bare,
        "full": full,
        "plugin": plugin,
        "importtime": cumulative,
        "heavy_after_plugin": heavy,
    }


SCENARIO = """\
id: s{i:03d}
description: generated scenario {i}
objectives: {{rto: 30s, severity: P2}}
probe_interval: 250ms
fault: {{type: process.kill, target: demo-service, signal: KILL}}
probes:
  - {{name: health, type: http, target: demo-service}}
recovery:
  - {{kind: automatic}}
"""


def bench_collect(runs: int, root: Path) -> dict[str, Any]:
    (root / "scenarios").mkdir(parents=True)
    for i in range(500):
        (root / "scenarios" / f"s{i:03d}.yaml").write_text(SCENARIO.format(i=i))
    (root / "drillbook.yaml").write_text(
        "environment: sandbox\ntargets:\n  demo-service: {backend: local, command: [sleep, '60'],"
        " port: 1}\n"
    )
    (root / "drills").mkdir()
    shutil.copy(REPO / "drills" / "test_scenarios.py", root / "drills" / "test_scenarios.py")
    code = (
        "import time, sys; from pathlib import Path; t0 = time.perf_counter(); "
        "from drillbook.config import load_config; from drillbook.scenario import load_scenarios; "
        "from drillbook.backends.base import get_registry; c = load_config(workdir=Path('.')); "
        "s = load_scenarios(c.scenarios_dir, registry=get_registry(), config=c); "
        "assert len(s) == 500, len(s); print(time.perf_counter() - t0)"
    )
    inproc, whole = [], []
    env = _drill_env()
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", code],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
        )
        if out.returncode != 0:
            raise RuntimeError(out.stderr[-500:])
        inproc.append(float(out.stdout.strip()))
        t0 = time.perf_counter()
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "--collect-only",
                "-q",
                "-p",
                "no:cacheprovider",
                "drills/",
            ],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
        )
        whole.append(time.perf_counter() - t0)
        if "500 tests collected" not in proc.stdout:
            raise RuntimeError(f"collect: {proc.stdout[-300:]} {proc.stderr[-300:]}")
    return {"inproc": inproc, "whole": whole}


def _med(v: Sequence[float]) -> float:
    return statistics.median(v) if v else float("nan")


def _part(rows: Sequence[dict[str, Any]], key: str) -> list[float]:
    return [r[key] for r in rows if key in r]


def _load_note() -> str:
    """Whether the machine was busy: a shared machine's figures are what a drill got there."""
    load = os.getloadavg()[0]
    cores = os.cpu_count() or 1
    if load < 0.75 * cores:
        return (
            f"The machine was quiet while these ran (1-minute load {load:.2f} on {cores} cores, "
            "mostly these runs themselves)."
        )
    return (
        f"This machine is shared and was busy while these ran (1-minute load {load:.2f} on "
        f"{cores} cores: other sessions' builds and tests): the figures are what a drill got "
        "here, not a quiet machine's best."
    )


def _bound(values: Sequence[float], bound: float) -> str:
    if not values:
        return "no figures"
    worst = max(values)
    verdict = "met" if _med(values) < bound else "NOT met"
    return f"< {bound:.1f} s: {verdict} (median {_med(values):.3f}, worst run {worst:.3f})"


def _drill_rows(name: str, rows: Sequence[dict[str, Any]]) -> list[str]:
    ok = sum(1 for r in rows if r["code"] == 0)
    startup, exit_ = _part(rows, "startup_to_inject"), _part(rows, "exit_after_recovered")
    fmt = lambda key: f"{_med(_part(rows, key)):.3f}"  # noqa: E731
    return [
        f"| {name} | {len(rows)} ({ok} exit 0) | {_med(_part(rows, 'wall')):.3f} | "
        f"{_med(_part(rows, 'cpu')):.3f} | {fmt('startup_to_inject')} ({spread(startup)}) | "
        f"{fmt('to_run_start')} + {fmt('run_start_to_inject')} | "
        f"{fmt('exit_after_recovered')} ({spread(exit_)}) | "
        f"{fmt('recovered_to_drill_end')} + {fmt('drill_end_to_run_end')} + "
        f"{fmt('run_end_to_exit')} | {fmt('inject')} | {fmt('revert')} | "
        f"{fmt('ledger_history')} |"
    ]


def render(
    trivial: dict[str, Any],
    db: dict[str, Any] | None,
    probes: list[dict[str, Any]],
    imp: dict[str, Any],
    col: dict[str, Any],
    args: Any,
) -> str:
    command = "python benchmarks/overhead.py " + " ".join(sys.argv[1:])
    mine = trivial["rows"]["drillbook"]
    db_rows = db["rows"] if db else []
    startup = _part(mine, "startup_to_inject") + _part(db_rows, "startup_to_inject")
    exit_ = _part(mine, "exit_after_recovered") + _part(db_rows, "exit_after_recovered")
    imp_net = [f - b for f, b in zip(imp["full"], imp["bare"], strict=True)]
    plug_net = [f - b for f, b in zip(imp["plugin"], imp["bare"], strict=True)]
    lines = [
        header(
            "Overhead: the harness's own time per drill, CPU per probe",
            command.strip(),
            f"trivial: {args.runs} runs (after one warm-up); db_restore: {args.db_runs} runs "
            f"(after one warm-up); {args.import_runs} import runs; {args.collect_runs} "
            "collection runs",
        ),
        _load_note(),
        "",
        "Whole `drillbook run scenarios/<id>.yaml` processes (no pytest; journal, report.html, "
        "summary.md, drills.csv and history written, reports rendered in the same process), this "
        "interpreter with this tree's `src` on PYTHONPATH. Start-up to inject = process spawned → "
        "the journal's `inject` event; recovery verified to exit = the `recovered` event → the "
        "process has exited, less the time inside the fault's own revert (the platform's work, "
        "in its own column); start-up to inject is less the fault's own inject, from the call "
        "until the fault is seen (the `inject` event's `inject_s`: the platform's work, in its "
        "own column); start-up to inject is also less the wait for the RPO ledger's "
        "history (it must have written for longer than the RPO before the fault, or an older "
        "loss could not be seen: the measure's need, in its own column). Parts come from the "
        "run's own events.jsonl. A bare `python -c pass`, "
        "run in the same rounds to show the machine's state, took a median "
        f"{_med(_part(trivial['rows']['floor'], 'wall')):.3f} s.",
        "",
        f"- trivial: a busybox httpd victim; steady-state HTTP probe every {PROBE_INTERVAL}; "
        f"`process.kill` (SIGKILL); restart by a scripted `command` step; recovered once the probe "
        f"has passed for {STABLE_FOR}; revert checks the victim runs.",
        "- db_restore (`scenarios/db_restore.yaml`, the embedded sandbox's real PostgreSQL): "
        "steady state with the ledger writing at 50/s; `postgres.destroy_data`; restore of the "
        "base backup + WAL; verify checks (two SQL queries), ledger read-back, revert. The "
        "sandbox is up before the runs (`drillbook sandbox up`), as a user leaves it.",
        "",
        "| drill | runs | wall median (s) | CPU median (s) | start-up to inject, median (spread) "
        "(s) | = to run_start + run_start to inject | recovery verified to exit, median "
        "(spread) (s) | = verify/verdict + journal + reports/history/exit | the fault's inject, "
        "not counted (s) | the fault's revert, not counted (s) | the ledger's history before "
        "the fault, not counted (s) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        *_drill_rows("trivial", mine),
        *(_drill_rows("db_restore", db_rows) if db_rows else []),
        "",
        f"- Start-up to inject, both drills: {_bound(startup, BOUND_STARTUP)}; trivial: "
        f"{_bound(_part(mine, 'startup_to_inject'), BOUND_STARTUP)}; db_restore: "
        f"{_bound(_part(db_rows, 'startup_to_inject'), BOUND_STARTUP)}.",
        f"- Recovery verified to exit, both drills: {_bound(exit_, BOUND_EXIT)}; trivial: "
        f"{_bound(_part(mine, 'exit_after_recovered'), BOUND_EXIT)}; db_restore: "
        f"{_bound(_part(db_rows, 'exit_after_recovered'), BOUND_EXIT)}.",
    ]
    if not db_rows:
        lines.append("- db_restore: not measured (the sandbox could not start here).")
    lines += [
        "",
        "CPU per probe (engine path: a real Drill with a run journal, http probes at 10 Hz "
        f"against a local keep-alive server process, {PROBE_SECONDS:.0f} s each; prober CPU "
        "divided by samples taken):",
        "",
        "| probes | samples | CPU per probe (µs) | p99 scheduling lag (ms) |",
        "|---|---|---|---|",
        *[
            f"| {r['count']} | {r['ok'] + r['fail']} | {r['cpu_per_probe_us']:.0f} | "
            f"{r['p99'] * 1000:.1f} |"
            for r in probes
        ],
        "",
    ]
    chaos = trivial["rows"].get("chaos")
    if chaos:
        c, cu = _med(_part(chaos, "wall")), _med(_part(chaos, "cpu"))
        w, wu = _med(_part(mine, "wall")), _med(_part(mine, "cpu"))
        ok = sum(1 for r in chaos if r["code"] == 0)
        lines += [
            "For information (no goal): the same trivial experiment as a whole `chaos run` "
            f"({trivial['chaos_version']}, own virtualenv at {CTK_VENV}; steady-state hypothesis "
            "of one HTTP probe before and after; method `kill -9`, then the restart script; "
            "journal to a file), alternated with drillbook's runs.",
            "",
            "| tool | wall median (s) | wall spread (s) | CPU median (s) | exit 0 |",
            "|---|---|---|---|---|",
            f"| `drillbook run scenarios/trivial.yaml` | {w:.3f} | {spread(_part(mine, 'wall'))} "
            f"| {wu:.3f} | {sum(1 for r in mine if r['code'] == 0)}/{len(mine)} |",
            f"| `chaos run experiment.json` | {c:.3f} | {spread(_part(chaos, 'wall'))} | "
            f"{cu:.3f} | {ok}/{len(chaos)} |",
            "",
            f"- Ratio drillbook / Chaos Toolkit: wall {w / c:.2f}, CPU {wu / cu:.2f}. drillbook "
            "does more per run (intent ledger, TTL watchdog, hash-chained journal, three report "
            "files, history); the ratio is information, not a goal.",
            "",
        ]
    lines += [
        "| what | median (ms) | spread (ms) | goal |",
        "|---|---|---|---|",
        f"| `import drillbook` (wall - bare interpreter) | {_med(imp_net) * 1000:.1f} | "
        f"{spread([x * 1000 for x in imp_net])} | < 150 ms: "
        f"{'met' if _med(imp_net) < 0.150 else 'NOT met'} |",
        f"| `import drillbook` (-X importtime cumulative) | {_med(imp['importtime']) * 1000:.1f} "
        f"| {spread([x * 1000 for x in imp['importtime']])} | < 150 ms |",
        f"| `import drillbook.plugin` (wall - bare) | {_med(plug_net) * 1000:.1f} | "
        f"{spread([x * 1000 for x in plug_net])} | - |",
        f"| bare `python -c pass` | {_med(imp['bare']) * 1000:.1f} | "
        f"{spread([x * 1000 for x in imp['bare']])} | floor |",
        f"| collect 500 scenarios, in-process `load_scenarios` | {_med(col['inproc']) * 1000:.0f}"
        f" | {spread([x * 1000 for x in col['inproc']])} | "
        f"< 1 s: {'met' if _med(col['inproc']) < 1.0 else 'NOT met'} |",
        f"| collect 500 scenarios, whole `pytest --collect-only` | {_med(col['whole']) * 1000:.0f}"
        f" | {spread([x * 1000 for x in col['whole']])} | (includes interpreter + pytest start) |",
        "",
        f"- SDK modules loaded after `import drillbook, drillbook.plugin, drillbook.cli, "
        f"drillbook.runner`: "
        f"`{imp['heavy_after_plugin'] or 'none'}` (boto3/kubernetes/docker must not appear).",
    ]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=15, help="trivial drill runs")
    ap.add_argument("--db-runs", type=int, default=5, help="db_restore runs")
    ap.add_argument("--import-runs", type=int, default=20)
    ap.add_argument("--collect-runs", type=int, default=7)
    ap.add_argument("--no-chaos", action="store_true", help="skip the Chaos Toolkit comparison")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="drillbook-overhead-") as tmp:
        trivial = bench_trivial(args.runs, Path(tmp) / "drill", with_chaos=not args.no_chaos)
        db = bench_db_restore(args.db_runs, Path(tmp) / "db") if args.db_runs else None
        probes = bench_probe_cpu(Path(tmp) / "probes")
        imp = bench_import(args.import_runs)
        col = bench_collect(args.collect_runs, Path(tmp) / "collect")
    text = render(trivial, db, probes, imp, col, args)
    if args.no_write:
        print(text)
    else:
        write_result("overhead", text)
    startup = [
        r["startup_to_inject"]
        for r in trivial["rows"]["drillbook"] + (db["rows"] if db else [])
        if "startup_to_inject" in r
    ]
    exit_ = [
        r["exit_after_recovered"]
        for r in trivial["rows"]["drillbook"] + (db["rows"] if db else [])
        if "exit_after_recovered" in r
    ]
    met = bool(startup and exit_) and _med(startup) < BOUND_STARTUP and _med(exit_) < BOUND_EXIT
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())

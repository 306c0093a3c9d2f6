"""Overhead: a trivial drill run whole by drillbook and by Chaos Toolkit; import and collect time.

The experiment is the same for both tools, as whole processes from a cold interpreter:
a victim HTTP server (busybox httpd, started by the benchmark, pid in a file) is probed once
(steady state), killed with SIGKILL (the process action), restarted by the same shell script,
and probed healthy again. drillbook runs it as a scenario, ``drillbook run scenarios/trivial.yaml``
(direct: no pytest; journal, reports and history included, as a user gets them), and also through
pytest (``drillbook run -k trivial``, ``python -m pytest drills/``) so nothing is hidden; Chaos
Toolkit runs the equivalent experiment.json through ``chaos run``. Runs alternate so machine noise
hits every tool alike.

Each tool runs from its own virtualenv, installed by this benchmark with pip (Chaos Toolkit:
``pip install chaostoolkit``; drillbook: ``pip install -e <repo>``), both on the same base
interpreter. The machine's own site-packages carry a sandbox-only ``.pth`` that imports certifi
at every interpreter start (~25 ms) which neither venv has; the system-interpreter drillbook row
shows that cost. ``PYTHONDONTWRITEBYTECODE`` is removed from the tools' environment, so the
warm-up run leaves ``.pyc`` files as a pip install does; with it, every run would recompile
drillbook's edited modules and chaostoolkit's would not.

Also: ``import drillbook`` time (subprocess wall time minus a bare interpreter's, and
``-X importtime``'s cumulative figure), and collecting 500 generated scenarios (in-process
``load_scenarios`` and a whole ``pytest --collect-only``).

    python benchmarks/overhead.py [--runs 15] [--import-runs 20]
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

from _common import header, spread, write_result

__all__ = ["main"]

REPO = Path(__file__).resolve().parent.parent
CTK_VENV = Path(os.environ.get("DRILLBOOK_BENCH_CTK_VENV", "/tmp/drillbook-bench-ctk"))
DB_VENV = Path(os.environ.get("DRILLBOOK_BENCH_DB_VENV", "/tmp/drillbook-bench-db"))
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


def ensure_drillbook_venv() -> Path:
    """drillbook in its own virtualenv, like the peer: an editable install of this tree."""
    script = DB_VENV / "bin" / "drillbook"
    check = [str(DB_VENV / "bin" / "python"), "-c", "import drillbook.runner"]
    if script.exists() and subprocess.run(check, capture_output=True, timeout=60).returncode == 0:
        return script
    subprocess.run([sys.executable, "-m", "venv", str(DB_VENV)], check=True)
    subprocess.run(
        [str(DB_VENV / "bin" / "pip"), "install", "-q", "-e", str(REPO)], check=True, timeout=900
    )
    return script


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
    (root / "drills").mkdir()
    shutil.copy(REPO / "drills" / "test_scenarios.py", root / "drills" / "test_scenarios.py")

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


#: Row name -> what it is, in the results table. The first is the headline.
DRILLBOOK_ROWS = {
    "direct": "`drillbook run scenarios/trivial.yaml` (direct, no pytest; drillbook venv)",
    "direct-inproc": "the same, reports rendered in-process (`DRILLBOOK_REPORT_WORKER=0`)",
    "direct-system": "the same, system interpreter (its site-packages' sandbox .pth included)",
    "pytest-run": "`drillbook run -k trivial` (wraps pytest; drillbook venv)",
    "pytest": "`python -m pytest drills/` (drillbook venv)",
}


def bench_drill(runs: int, root: Path) -> dict[str, Any]:
    chaos = ensure_chaostoolkit()
    drillbook = ensure_drillbook_venv()
    project = make_project(root)
    system_drillbook = str(Path(sys.executable).parent / "drillbook")
    # Only drillbook's plugin in pytest, as a clean install has it (this dev environment also
    # autoloads hypothesis/benchmark/timeout plugins); no DRILLBOOK_* from the caller; .pyc
    # files written as a pip install leaves them (see the module docstring).
    env = _clean_env()
    env.update(PYTEST_DISABLE_PLUGIN_AUTOLOAD="1", PYTEST_ADDOPTS="-p drillbook.plugin")
    venv_python = str(DB_VENV / "bin" / "python")
    tools: dict[str, list[str]] = {
        "direct": [str(drillbook), "run", "scenarios/trivial.yaml"],
        "direct-inproc": [str(drillbook), "run", "scenarios/trivial.yaml"],
        "direct-system": [system_drillbook, "run", "scenarios/trivial.yaml"],
        "pytest-run": [str(drillbook), "run", "-k", "trivial"],
        "pytest": [venv_python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "drills/"],
        "chaos": [
            str(chaos),
            "--log-file",
            str(root / "chaostoolkit.log"),
            "run",
            "--journal-path",
            str(root / "ctk-journal.json"),
            "experiment.json",
        ],
    }
    envs = {k: env for k in tools}
    envs["direct-inproc"] = {**env, "DRILLBOOK_REPORT_WORKER": "0"}
    times: dict[str, list[float]] = {k: [] for k in tools}
    cpus: dict[str, list[float]] = {k: [] for k in tools}
    drill_s: dict[str, list[float]] = {k: [] for k in tools}
    run_s: dict[str, list[float]] = {k: [] for k in tools}
    codes: dict[str, list[int]] = {k: [] for k in tools}
    # One warm-up each (page cache, .pyc files), not counted.
    for name, cmd in tools.items():
        start_victim(project)
        timed(cmd, root, envs[name])
        stop_victim(project)
    for i in range(runs):
        order = list(tools) if i % 2 == 0 else list(reversed(tools))
        for name in order:
            start_victim(project)
            elapsed, cpu, code = timed(tools[name], root, envs[name])
            stop_victim(project)
            if name != "chaos":
                inner = _journal_times(root)
                if inner:
                    drill_s[name].append(inner[0])
                    run_s[name].append(inner[1])
            times[name].append(elapsed)
            cpus[name].append(cpu)
            codes[name].append(code)
        print(
            f"[drill {i + 1}/{runs}] "
            + ", ".join(f"{k} {v[-1]:.3f}s (exit {codes[k][-1]})" for k, v in times.items()),
            file=sys.stderr,
        )
    version = subprocess.run(
        [str(chaos), "--version"], capture_output=True, text=True, timeout=60
    ).stdout.strip()
    imports = []
    for _ in range(3):
        start_victim(project)
        cmd = [venv_python, "-X", "importtime", "-m", "drillbook.cli"]
        # One process (no helper), so -X importtime's lines are the run's imports, all of them.
        imports.append(_import_seconds(cmd, root, {**env, "DRILLBOOK_REPORT_WORKER": "0"}))
        stop_victim(project)
    startup = {
        "python -c pass (drillbook venv)": [
            timed([venv_python, "-c", "pass"], root, env)[0] for _ in range(5)
        ],
        "python -c pass (system interpreter)": [
            timed([sys.executable, "-c", "pass"], root, env)[0] for _ in range(5)
        ],
        "drillbook --version (venv)": [
            timed([str(drillbook), "--version"], root, env)[0] for _ in range(5)
        ],
        "pytest --collect-only (drillbook plugin only, venv)": [
            timed([venv_python, "-m", "pytest", "--co", "-q", "drills/"], root, env)[0]
            for _ in range(5)
        ],
        "chaos --version": [timed([str(chaos), "--version"], root, env)[0] for _ in range(5)],
    }
    return {
        "times": times,
        "cpus": cpus,
        "codes": codes,
        "ctk_version": version,
        "drill_s": drill_s,
        "run_s": run_s,
        "startup": startup,
        "imports": imports,
    }


def _import_seconds(cmd: list[str], root: Path, env: dict[str, str]) -> float:
    """Total module import time of one direct run (``-X importtime``, top-level imports)."""
    out = subprocess.run(
        [*cmd, "run", "scenarios/trivial.yaml"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    ).stderr
    total = 0
    for line in out.splitlines():
        parts = line.split("|")
        top_level = len(parts) == 3 and parts[2][:1] == " " and parts[2][:2] != "  "
        if line.startswith("import time:") and top_level and parts[1].strip().isdigit():
            total += int(parts[1])
    return total / 1e6


def _journal_times(root: Path) -> tuple[float, float] | None:
    """(the drill's own duration, the pytest session's journal start→end) from the journal."""
    try:
        doc = json.loads((root / "reports" / "latest" / "journal.json").read_text())
        started = datetime.fromisoformat(doc["started_at"].replace("Z", "+00:00"))
        ended = datetime.fromisoformat(doc["ended_at"].replace("Z", "+00:00"))
        return float(doc["drills"][0]["duration_s"]), (ended - started).total_seconds()
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return None


def _clean_env() -> dict[str, str]:
    """The caller's environment without DRILLBOOK_* and without PYTHONDONTWRITEBYTECODE."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("DRILLBOOK_") and k != "PYTHONDONTWRITEBYTECODE"
    }


def bench_import(runs: int) -> dict[str, Any]:
    env = _clean_env()

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
    env = _clean_env()
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


def render(drill: dict[str, Any], imp: dict[str, Any], col: dict[str, Any], args: Any) -> str:
    t, u = drill["times"], drill["cpus"]
    c, cu = _med(t["chaos"]), _med(u["chaos"])
    imp_net = [f - b for f, b in zip(imp["full"], imp["bare"], strict=True)]
    plug_net = [f - b for f, b in zip(imp["plugin"], imp["bare"], strict=True)]
    command = "python benchmarks/overhead.py " + " ".join(sys.argv[1:])
    ok = {k: sum(1 for x in v if x == 0) for k, v in drill["codes"].items()}
    rows = []
    for key, label in DRILLBOOK_ROWS.items():
        w, cpu = _med(t[key]), _med(u[key])
        goal = f"<= 1.00: {'met' if w <= c else 'NOT met'}" if key == "direct" else "-"
        rows.append(
            f"| {label} | {w:.3f} | {spread(t[key])} | {cpu:.3f} | {ok[key]}/{args.runs} | "
            f"{w / c:.2f} | {cpu / cu:.2f} | {goal} |"
        )
    direct_wall = _med(t["direct"])
    drill_part = _med(drill["drill_s"]["direct"])
    run_part = _med(drill["run_s"]["direct"])
    import_part = _med(drill["imports"])
    lines = [
        header(
            "Overhead against Chaos Toolkit; import and collection time",
            command.strip(),
            f"{args.runs} alternated runs per tool (after one warm-up each); "
            f"{args.import_runs} import runs; {args.collect_runs} collection runs",
        ),
        "Experiment: victim = busybox httpd (pid file) started by the benchmark before every run; "
        "steady-state HTTP probe; SIGKILL the victim; restart it with the same shell script "
        "(it returns once the victim answers); probe healthy again.",
        "",
        f"- drillbook (`scenarios/trivial.yaml`): steady-state probe; `process.kill` (SIGKILL, "
        f"intent fsynced to the intent ledger and a TTL watchdog process spawned first); probes "
        f"every {PROBE_INTERVAL}, and at once when the kill is verified and when the restart step "
        f"ends; the restart as a scripted `command` step; recovered once the probe has passed "
        f"for {STABLE_FOR} with no failure since; revert (checks the "
        "victim runs and listens); verdict; journal (hash-chained events.jsonl, journal.json), "
        "report.html, summary.md, drills.csv, history (SQLite). Wall times are the whole process. "
        "The direct run forks a helper at start-up (drillbook/reportworker.py) that reads the "
        "config and validates the scenario while the parent imports the engine, then imports "
        "Jinja2, tabulate and the history module on the other core while the drill runs, and "
        "renders from journal.json; its CPU is in the CPU column (the whole process tree).",
        "- Chaos Toolkit (`experiment.json`): steady-state hypothesis (one HTTP probe, tolerance "
        "200) before and after the method; method = `kill -9 $(cat pidfile)`, then the restart "
        "script; no rollbacks; journal written to a file; log to a file.",
        f"- Peer: Chaos Toolkit `chaos run` ({drill['ctk_version']}), own virtualenv at "
        f"{CTK_VENV}. drillbook: own virtualenv at {DB_VENV} (`pip install -e` of this tree), same "
        "base interpreter. `PYTHONDONTWRITEBYTECODE` removed for every tool (see the docstring of "
        "benchmarks/overhead.py).",
        "",
        "| what | wall median (s) | wall spread (s) | CPU median (s) | exit 0 | wall ratio vs "
        "Chaos Toolkit | CPU ratio | goal |",
        "|---|---|---|---|---|---|---|---|",
        *rows,
        f"| `chaos run experiment.json` | {c:.3f} | {spread(t['chaos'])} | {cu:.3f} | "
        f"{ok['chaos']}/{args.runs} | 1.00 | 1.00 | peer |",
        "",
        "Where the direct run's time goes (medians; the drill and journal figures come from the "
        "runs' own journal.json, the imports from `-X importtime` of 3 extra direct runs):",
        "",
        "| part | median (s) |",
        "|---|---|",
        f"| whole `drillbook run scenarios/trivial.yaml` (wall) | {direct_wall:.3f} |",
        f"| module imports, all of a run's (`-X importtime`, one process: "
        f"`DRILLBOOK_REPORT_WORKER=0`; with the helper, the report modules load on the other core)"
        f" | "
        f"{import_part:.3f} |",
        f"| the journal's run (journal created at the first drill → journal.finish) | "
        f"{run_part:.3f} |",
        f"| of which the drill itself (journal `duration_s`: steady state, kill, detection, "
        f"restart step, stable_for, revert) | {drill_part:.3f} |",
        f"| the rest (interpreter start, config, validation, reports, history, exit; less the "
        f"imports the helper takes off this path) | "
        f"{direct_wall - import_part - run_part:.3f} |",
        *[f"| {k} | {_med(v):.3f} |" for k, v in drill["startup"].items()],
        f"| the drill itself through pytest (`drillbook run -k trivial`) | "
        f"{_med(drill['drill_s']['pytest-run']):.3f} |",
        "",
        "| what | median (ms) | spread (ms) | ratio vs goal | goal |",
        "|---|---|---|---|---|",
        f"| `import drillbook` (wall - bare interpreter) | {_med(imp_net) * 1000:.1f} | "
        f"{spread([x * 1000 for x in imp_net])} | {_med(imp_net) / 0.150:.2f} | < 150 ms: "
        f"{'met' if _med(imp_net) < 0.150 else 'NOT met'} |",
        f"| `import drillbook` (-X importtime cumulative) | {_med(imp['importtime']) * 1000:.1f} "
        f"| {spread([x * 1000 for x in imp['importtime']])} | "
        f"{_med(imp['importtime']) / 0.150:.2f} | < 150 ms |",
        f"| `import drillbook.plugin` (wall - bare) | {_med(plug_net) * 1000:.1f} | "
        f"{spread([x * 1000 for x in plug_net])} | - | - |",
        f"| bare `python -c pass` | {_med(imp['bare']) * 1000:.1f} | "
        f"{spread([x * 1000 for x in imp['bare']])} | - | floor |",
        f"| collect 500 scenarios, in-process `load_scenarios` | {_med(col['inproc']) * 1000:.0f}"
        f" | {spread([x * 1000 for x in col['inproc']])} | {_med(col['inproc']) / 1.0:.2f} | "
        f"< 1 s: {'met' if _med(col['inproc']) < 1.0 else 'NOT met'} |",
        f"| collect 500 scenarios, whole `pytest --collect-only` | {_med(col['whole']) * 1000:.0f}"
        f" | {spread([x * 1000 for x in col['whole']])} | {_med(col['whole']) / 1.0:.2f} | "
        "(includes interpreter + pytest start) |",
        "",
        f"- SDK modules loaded after `import drillbook, drillbook.plugin, drillbook.cli, "
        f"drillbook.runner`: "
        f"`{imp['heavy_after_plugin'] or 'none'}` (boto3/kubernetes/docker must not appear).",
    ]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--import-runs", type=int, default=20)
    ap.add_argument("--collect-runs", type=int, default=7)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="drillbook-overhead-") as tmp:
        drill = bench_drill(args.runs, Path(tmp) / "drill")
        imp = bench_import(args.import_runs)
        col = bench_collect(args.collect_runs, Path(tmp) / "collect")
    text = render(drill, imp, col, args)
    if args.no_write:
        print(text)
    else:
        write_result("overhead", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

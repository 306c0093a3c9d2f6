"""``drillbook run scenarios/x.yaml``: scenarios run without pytest, recorded as the pytest path
records them, with the same exit codes. Real processes: the local backend's demo service."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from signalkit import default_signals

REPO = Path(__file__).resolve().parents[2]

CONFIG = """\
environment: test
defaults: {probe_interval: 50ms, stable_for: 300ms, probe_timeout: 1s}
targets:
  svc:
    backend: local
    command: ["{python}", "-m", "drillbook.backends.local.demo_service", "--port", "{port}"]
    port: auto
    restart: always
    restart_delay: 300ms
  norestart:
    backend: local
    command: ["{python}", "-m", "drillbook.backends.local.demo_service", "--port", "{port}"]
    port: auto
    restart: never
"""

SCENARIO = """\
id: svc_restart
objectives: {rto: 20s, severity: P2}
controls: [SOC2-A1.3]
fault: {type: process.kill, target: svc, signal: KILL}
probes:
  - {name: health, type: http, target: svc}
recovery:
  - {kind: automatic}
"""


def drillbook(
    cwd: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "drillbook.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def journal(root: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((root / "reports" / "latest" / "journal.json").read_text())
    return data


def intent_ops(root: Path) -> list[str]:
    """The intent ledger's operations (its archive's, then the live ones), from complete lines
    only: a test may read the file while the drill is still appending to it."""
    ops: list[str] = []
    for name in ("intents.archive.jsonl", "intents.jsonl"):
        path = root / ".drillbook" / name
        if path.exists():
            ops += [json.loads(x)["op"] for x in path.read_text().split("\n")[:-1]]
    return ops


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "drillbook.yaml").write_text(CONFIG)
    (tmp_path / "scenarios").mkdir()
    (tmp_path / "scenarios" / "svc_restart.yaml").write_text(SCENARIO)
    return tmp_path


def test_process_restart_direct_and_through_pytest_record_the_same(tmp_path: Path) -> None:
    """The shipped scenario, the shipped config: both paths write the same journal shape."""
    shutil.copy(REPO / "drillbook.yaml", tmp_path / "drillbook.yaml")
    (tmp_path / "scenarios").mkdir()
    shutil.copy(REPO / "scenarios" / "process_restart.yaml", tmp_path / "scenarios")
    (tmp_path / "drills").mkdir()
    shutil.copy(REPO / "drills" / "test_scenarios.py", tmp_path / "drills")

    out = drillbook(tmp_path, "run", "scenarios/process_restart.yaml")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "test session starts" not in out.stdout and " passed in " not in out.stdout
    assert "process_restart" in out.stdout and "PASSED" in out.stdout
    assert "reports: " in out.stdout
    direct = journal(tmp_path)
    run_dir = tmp_path / "reports" / direct["run_id"]
    for name in ("events.jsonl", "journal.json", "report.html", "summary.md", "drills.csv"):
        assert (run_dir / name).is_file(), name
    raw = (run_dir / "events.jsonl").read_bytes().splitlines()
    prev = "0" * 64
    for i, line in enumerate(raw):
        event = json.loads(line)
        assert event["seq"] == i and event["prev"] == prev
        prev = hashlib.sha256(line).hexdigest()
    kinds = [json.loads(x)["kind"] for x in raw]
    assert kinds[0] == "run_start" and kinds[-1] == "run_end"
    assert {"intent", "inject", "detect", "recovered", "revert", "verdict"} <= set(kinds)
    assert intent_ops(tmp_path) == ["intent", "injected", "reverted"]
    with sqlite3.connect(tmp_path / "reports" / "history.sqlite") as db:
        rows = db.execute("SELECT run_id, drill_id, verdict FROM drills").fetchall()
    assert rows == [(direct["run_id"], "process_restart", "passed")]

    out = drillbook(tmp_path, "run", "-k", "process_restart")
    assert out.returncode == 0, out.stdout + out.stderr
    via_pytest = journal(tmp_path)
    assert via_pytest["run_id"] != direct["run_id"]
    assert set(via_pytest) == set(direct)
    (d,) = direct["drills"]
    (p,) = via_pytest["drills"]
    assert set(d) == set(p)
    assert set(d["measures"]) == set(p["measures"]) and set(d["objectives"]) == set(p["objectives"])
    assert d["verdict"] == p["verdict"] == "passed"
    assert d["id"] == p["id"] == d["scenario"] == "process_restart"
    assert [x["phase"] for x in d["phases"]] == [x["phase"] for x in p["phases"]]
    assert d["reverts"][0]["ok"] and p["reverts"][0]["ok"]
    assert direct["environment"].keys() == via_pytest["environment"].keys()


def test_missed_objective_exits_1_and_reverts(project: Path) -> None:
    scenario = project / "scenarios" / "svc_restart.yaml"
    scenario.write_text(SCENARIO.replace("rto: 20s", "rto: 1ms"))
    out = drillbook(project, "run", "scenarios/svc_restart.yaml")
    assert out.returncode == 1, out.stdout + out.stderr
    assert "svc_restart: drill failed:" in out.stdout and "FAILED" in out.stdout
    (d,) = journal(project)["drills"]
    assert d["verdict"] == "failed" and d["reverts"][0]["ok"] is True


def test_bad_scenario_file_exits_2_with_one_line_and_injects_nothing(project: Path) -> None:
    bad = project / "scenarios" / "bad.yaml"
    bad.write_text(SCENARIO.replace("rto: 20s", "rto: someday").replace("svc_restart", "bad"))
    out = drillbook(project, "run", "scenarios/bad.yaml")
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("scenarios/bad.yaml:2: objectives.rto:")
    assert "Traceback" not in out.stderr
    assert not (project / ".drillbook").exists() and not (project / "reports").exists()

    out = drillbook(project, "run", "scenarios/missing.yaml")
    assert out.returncode == 2 and "scenarios/missing.yaml: no such file" in out.stderr
    out = drillbook(project, "run", "scenarios/svc_restart.yaml", "-k", "svc")
    assert out.returncode == 2 and "not both" in out.stderr
    assert not (project / ".drillbook").exists()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_a_signal_mid_drill_reverts_and_exits_3(project: Path, signum: int) -> None:
    # No restart policy: the target stays down until the revert brings it back.
    (project / "scenarios" / "svc_restart.yaml").write_text(
        SCENARIO.replace("target: svc", "target: norestart") + "timeout: 2m\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "drillbook.cli", "run", "scenarios/svc_restart.yaml"],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=default_signals,
    )
    try:
        deadline = time.monotonic() + 120
        while "injected" not in intent_ops(project):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the fault was never injected"
            time.sleep(0.05)
        proc.send_signal(signum)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 3, stdout + stderr
    assert "Traceback" not in stderr
    (d,) = journal(project)["drills"]
    assert d["verdict"] == "aborted" and d["reasons"][0].startswith("interrupted")
    assert d["reverts"][0]["ok"] is True and d["reverts"][0]["verified"] is True
    assert intent_ops(project) == ["intent", "injected", "reverted"]
    assert journal(project)["exit_status"] == 3


def test_unavailable_backend_exits_4_with_one_line(project: Path) -> None:
    site = project / "site"
    site.mkdir()
    (site / "acme_drills-1.0.dist-info").mkdir()
    (site / "acme_drills-1.0.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: acme-drills\nVersion: 1.0\n"
    )
    (site / "acme_drills-1.0.dist-info" / "entry_points.txt").write_text(
        "[drillbook.backends]\nacme = acme_drills:register\n"
    )
    (site / "acme_drills.py").write_text(
        textwrap.dedent(
            """
            from drillbook.backends.base import Fault

            class Meteor(Fault):
                read_only = True  # so it needs no target: this scenario names none

                def inject(self): raise AssertionError("must not inject")
                def verify_injected(self): return True
                def revert(self): pass

            def register(registry):
                registry.add_backend("acme", lambda settings: "the acme API does not answer")
                registry.add_fault("acme.meteor", "acme", Meteor)
            """
        )
    )
    (project / "scenarios" / "meteor.yaml").write_text(
        "id: meteor\nobjectives: {rto: 20s}\nfault: {type: acme.meteor}\n"
        "probes: [{name: h, type: http, target: svc}]\nrecovery: [{kind: automatic}]\n"
    )
    env = {**os.environ, "PYTHONPATH": f"{site}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    out = drillbook(project, "run", "scenarios/meteor.yaml", env=env)
    assert out.returncode == 4, out.stdout + out.stderr
    lines = out.stderr.strip().splitlines()
    assert lines == [
        "drillbook: scenarios/meteor.yaml: acme unavailable: the acme API does not answer"
    ]
    assert intent_ops(project) == []


def test_dry_run_prints_the_plan_and_touches_nothing(project: Path) -> None:
    out = drillbook(project, "run", "scenarios/svc_restart.yaml", "--dry-run")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "[dry run] svc_restart: would inject process.kill: SIGKILL svc (pid " in out.stdout
    assert "DRY RUN" in out.stdout
    assert intent_ops(project) == []
    assert journal(project)["drills"] == []


def test_evidence_bundle_is_written(project: Path) -> None:
    from drillbook.evidence.keys import generate_key, private_key_pem

    (project / "signing.key").write_bytes(private_key_pem(generate_key()))
    env = {**os.environ, "DRILLBOOK_SIGNING_KEY_FILE": str(project / "signing.key")}
    env.pop("DRILLBOOK_SIGNING_KEY", None)
    out = drillbook(project, "run", "--evidence", "scenarios/svc_restart.yaml", env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    bundles = [p for p in (project / "reports" / "evidence").iterdir() if p.is_dir()]
    assert len(bundles) == 1
    verify = drillbook(project, "evidence", "verify", str(bundles[0]), env=env)
    assert verify.returncode == 0, verify.stdout + verify.stderr


@pytest.mark.parametrize(("expect", "code"), [("failed", 0), ("passed", 1)])
def test_expect_is_judged_as_the_plugin_judges_it(project: Path, expect: str, code: int) -> None:
    # No restart policy and no recovery step: the drill fails its RTO. A scenario that says it
    # expects that (a blind-spot drill) exits 0; one that expects a pass exits 1.
    (project / "scenarios" / "svc_restart.yaml").write_text(
        SCENARIO.replace("target: svc", "target: norestart").replace("rto: 20s", "rto: 1s")
        + f"timeout: 3s\nexpect: {expect}\n"
    )
    done = drillbook(project, "run", "scenarios/svc_restart.yaml")
    assert journal(project)["drills"][0]["verdict"] == "failed", done.stdout + done.stderr
    assert done.returncode == code, done.stdout + done.stderr


def _watchdogs_of(root: Path) -> list[int]:
    """Live watchdog processes watching this project's intent ledger."""
    ledger = str(root / ".drillbook" / "intents.jsonl").encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if b"drillbook.watchdog" in cmdline and ledger in cmdline and ") Z" not in stat:
                found.append(int(entry.name))
    return found


def test_the_runs_early_watchdog_guards_the_inject_and_none_is_left_behind(
    project: Path,
) -> None:
    """The watchdog started before the engine loads is the one the inject records as live;
    a run whose drill never injected (unhealthy before injection) leaves no watchdog waiting."""
    done = drillbook(project, "run", "scenarios/svc_restart.yaml")
    assert done.returncode == 0, done.stdout + done.stderr
    drill = journal(project)["drills"][0]
    live = [e for e in drill["timeline"] if e["kind"] == "watchdog"]
    intent = [e for e in drill["timeline"] if e["kind"] == "intent"]
    assert live and live[0]["live"] is True and live[0]["intent"] == intent[0]["intent"]
    assert _watchdogs_of(project) == []

    (project / "scenarios" / "unhealthy.yaml").write_text(
        SCENARIO.replace("svc_restart", "unhealthy").replace(
            "{name: health, type: http, target: svc}",
            "{name: health, type: http, url: 'http://127.0.0.1:9/health', timeout: 200ms}",
        )
    )
    done = drillbook(project, "run", "scenarios/unhealthy.yaml")
    assert done.returncode == 4, done.stdout + done.stderr  # nothing injected
    assert _watchdogs_of(project) == []

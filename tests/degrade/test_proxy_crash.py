"""Crash cells for the fault proxies: SIGKILL the harness after inject, then ``drillbook
rollback`` (and, separately, the TTL watchdog) leaves nothing behind: no proxy process, nothing
listening on its port, no route, no files. Real harness subprocesses and real proxies."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from drillbook.backends.local.service import pid_alive
from drillbook.degrade import proxyproc
from drillbook.intents import Intent, IntentLedger

CONFIG = """\
environment: test
defaults: {probe_interval: 100ms, stable_for: 300ms, probe_timeout: 2s}
targets:
  svc:
    backend: local
    command: ["{python}", "-m", "drillbook.backends.local.demo_service", "--port", "{port}"]
    port: auto
    restart: never
"""
SCENARIO = """\
id: slow_hold
shape: hold
duration: 10m
timeout: 20m
fault: {type: FAULT, target: svc, PARAMS, ttl: TTL}
probes:
  - {name: p95, type: slo.latency, target: svc, max: 5s, rate: 5, window: 2s}
"""
TEST = """\
def test_scenario(drill_scenario, drill):
    drill.run(drill_scenario)
"""
FAULTS = {
    "network.degrade": "latency: 20ms",
    "http.faults": "error_rate: 0.01",
}


def _project(tmp_path: Path, fault: str, ttl: str) -> Path:
    (tmp_path / "drillbook.yaml").write_text(CONFIG)
    (tmp_path / "scenarios").mkdir()
    scenario = SCENARIO.replace("FAULT", fault).replace("PARAMS", FAULTS[fault])
    (tmp_path / "scenarios" / "slow_hold.yaml").write_text(scenario.replace("TTL", ttl))
    (tmp_path / "test_drills.py").write_text(TEST)
    return tmp_path


@pytest.fixture
def cleanup(tmp_path: Path) -> Iterator[None]:
    yield
    state = tmp_path / ".drillbook" / "local" / "svc.json"
    if state.exists():
        data = json.loads(state.read_text())
        for key in ("child_pid", "supervisor_pid"):
            pid = data.get(key)
            if isinstance(pid, int) and pid_alive(pid):
                os.kill(pid, signal.SIGTERM)
    for pidfile in (tmp_path / ".drillbook" / "proxies").glob("*.pid"):
        pid = proxyproc.read_pidfile(pidfile)
        if pid and pid_alive(pid):
            os.kill(pid, signal.SIGKILL)


def _harness_killed_after_inject(project: Path) -> Intent:
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "test_drills.py"],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    ledger = IntentLedger(project / ".drillbook" / "intents.jsonl")
    end = time.monotonic() + 90
    try:
        while time.monotonic() < end:
            found = [i for i in ledger.all().values() if i.status == "injected"]
            if found and found[0].state.get("pid"):
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(10)
                return found[0]
            if proc.poll() is not None:
                out = proc.stdout.read().decode() if proc.stdout else ""
                pytest.fail(f"harness exited before injecting:\n{out}")
            time.sleep(0.05)
        pytest.fail("the fault was never injected")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def _route(project: Path) -> Path:
    return project / ".drillbook" / "local" / "svc.route"


def _left_behind(project: Path, intent: Intent) -> list[str]:
    state = intent.state
    found = []
    if proxyproc.proxy_alive(int(state["pid"]), str(state["tag"])):
        found.append(f"proxy pid {state['pid']}")
    if proxyproc.port_open(int(state["listen_port"])):
        found.append(f"port {state['listen_port']}")
    if _route(project).exists():
        found.append("route file")
    found += [p.name for p in (project / ".drillbook" / "proxies").glob("*")]
    return found


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_sigkill_after_inject_then_rollback_leaves_nothing(
    tmp_path: Path, cleanup: None, fault: str
) -> None:
    project = _project(tmp_path, fault, "10m")
    intent = _harness_killed_after_inject(project)
    # The harness is gone and the fault is still in place: the proxy runs and is routed in.
    assert proxyproc.proxy_alive(int(intent.state["pid"]), str(intent.state["tag"]))
    assert _route(project).exists()
    out = subprocess.run(
        [sys.executable, "-m", "drillbook.cli", "rollback"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"ok {intent.id} {fault}" in out.stdout
    assert _left_behind(project, intent) == []
    assert IntentLedger(project / ".drillbook" / "intents.jsonl").pending() == []


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_sigkill_after_inject_then_ttl_watchdog_leaves_nothing(
    tmp_path: Path, cleanup: None, fault: str
) -> None:
    project = _project(tmp_path, fault, "4s")
    intent = _harness_killed_after_inject(project)
    ledger = IntentLedger(project / ".drillbook" / "intents.jsonl")
    end = time.monotonic() + 60
    while time.monotonic() < end and ledger.lookup(intent.id).status != "reverted":  # type: ignore[union-attr]
        time.sleep(0.2)
    assert ledger.lookup(intent.id).status == "reverted"  # type: ignore[union-attr]
    assert _left_behind(project, intent) == []

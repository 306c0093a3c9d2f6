"""A crash mid-drill loses nothing: SIGKILL → ``drillbook rollback`` reverts; SIGTERM/SIGHUP/SIGINT
revert before exit. Real harness subprocesses, a real frozen (SIGSTOPped) service."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from drillbook.intents import IntentLedger
from drillbook.procs import pid_alive, process_state
from signalkit import default_signals

CONFIG = """\
environment: test
defaults: {probe_interval: 100ms, stable_for: 300ms, probe_timeout: 500ms}
targets:
  svc:
    backend: local
    command: ["{python}", "-m", "drillbook.backends.local.demo_service", "--port", "{port}"]
    port: auto
    restart: never
"""
SCENARIO = """\
id: freeze
objectives: {rto: 2m}
timeout: 2m
fault: {type: process.stop, target: svc, ttl: 10m}
probes:
  - {name: health, type: http, target: svc, timeout: 300ms}
recovery:
  - {kind: automatic}
"""
TEST = """\
def test_scenario(drill_scenario, drill):
    drill.run(drill_scenario)
"""


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Path]:
    (tmp_path / "drillbook.yaml").write_text(CONFIG)
    (tmp_path / "scenarios").mkdir()
    (tmp_path / "scenarios" / "freeze.yaml").write_text(SCENARIO)
    (tmp_path / "test_drills.py").write_text(TEST)
    yield tmp_path
    # Stop the service's supervisor the harness started (it outlives a SIGKILLed harness).
    state = tmp_path / ".drillbook" / "local" / "svc.json"
    if state.exists():
        data = json.loads(state.read_text())
        for key in ("child_pid", "supervisor_pid"):
            pid = data.get(key)
            if isinstance(pid, int) and pid_alive(pid):
                os.kill(pid, signal.SIGCONT)
                os.kill(pid, signal.SIGTERM)


def start_harness(project: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "test_drills.py"],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=default_signals,
    )


def wait_injected(project: Path, proc: subprocess.Popen[bytes], timeout: float = 60) -> str:
    ledger = IntentLedger(project / ".drillbook" / "intents.jsonl")
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        events = project / "reports" / "latest" / "events.jsonl"
        # The ledger's "injected" line comes before the fault is verified; the journal's
        # "inject" event after: a signal sent is not yet a process stopped.
        verified = events.exists() and '"kind":"inject"' in events.read_text()
        for intent in ledger.all().values():
            if intent.status == "injected" and verified:
                return intent.id
        if proc.poll() is not None:
            out = proc.stdout.read().decode() if proc.stdout else ""
            pytest.fail(f"harness exited before injecting:\n{out}")
        time.sleep(0.05)
    proc.kill()
    pytest.fail("the fault was never injected")


def service_pid(project: Path) -> int:
    data = json.loads((project / ".drillbook" / "local" / "svc.json").read_text())
    pid = data["child_pid"]
    assert isinstance(pid, int)
    return pid


def healthy(project: Path) -> bool:
    port = (project / ".drillbook" / "local" / "svc.port").read_text().strip()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as resp:
            return resp.status == 200
    except OSError:
        return False


def test_sigkill_after_inject_then_rollback_reverts(project: Path) -> None:
    proc = start_harness(project)
    intent_id = wait_injected(project, proc)
    pid = service_pid(project)
    assert process_state(pid) == "T"  # frozen by the fault
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    assert process_state(pid) == "T"  # nothing reverted it: the harness is gone
    assert not healthy(project)
    # The events so far are on disk.
    events = (project / "reports" / "latest" / "events.jsonl").read_text().splitlines()
    assert any(json.loads(e)["kind"] == "intent" for e in events)

    out = subprocess.run(
        [sys.executable, "-m", "drillbook.cli", "rollback"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"ok {intent_id} process.stop" in out.stdout
    assert process_state(pid) not in ("T", "t")
    assert healthy(project)
    ledger = IntentLedger(project / ".drillbook" / "intents.jsonl")
    assert ledger.lookup(intent_id).status == "reverted"  # type: ignore[union-attr]
    assert ledger.pending() == []
    again = subprocess.run(
        [sys.executable, "-m", "drillbook.cli", "rollback"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert again.returncode == 0 and "nothing pending" in again.stdout


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_signal_mid_fault_reverts_before_exit(project: Path, sig: signal.Signals) -> None:
    proc = start_harness(project)
    intent_id = wait_injected(project, proc)
    pid = service_pid(project)
    assert process_state(pid) == "T"
    os.kill(proc.pid, sig)
    out = proc.communicate(timeout=60)[0].decode()
    assert proc.returncode != 0
    ledger = IntentLedger(project / ".drillbook" / "intents.jsonl")
    assert ledger.lookup(intent_id).status == "reverted", out  # type: ignore[union-attr]
    doc = json.loads((project / "reports" / "latest" / "journal.json").read_text())
    (d,) = doc["drills"]
    assert d["verdict"] == "aborted", out
    assert d["reverts"][0]["ok"] is True


def _tear_the_ledger(project: Path) -> None:
    """A ledger whose last line a crash cut mid-write (an earlier harness killed, a full disk)."""
    ledger = project / ".drillbook" / "intents.jsonl"
    ledger.parent.mkdir(parents=True, exist_ok=True)
    ledger.write_text('{"op":"intent","id":"int-0123456789ab","run_id":"earlier","drill":"freeze"')


def test_after_a_torn_ledger_line_rollback_reverts_a_killed_drill(project: Path) -> None:
    _tear_the_ledger(project)
    proc = start_harness(project)
    intent_id = wait_injected(project, proc)
    pid = service_pid(project)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    assert process_state(pid) == "T"
    ledger = IntentLedger(project / ".drillbook" / "intents.jsonl")
    assert [i.id for i in ledger.pending()] == [intent_id]
    out = subprocess.run(
        [sys.executable, "-m", "drillbook.cli", "rollback"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"ok {intent_id} process.stop" in out.stdout
    assert process_state(pid) not in ("T", "t") and healthy(project)
    assert ledger.pending() == []


def test_after_a_torn_ledger_line_the_watchdog_reverts_a_killed_drill(project: Path) -> None:
    (project / "scenarios" / "freeze.yaml").write_text(SCENARIO.replace("ttl: 10m", "ttl: 3s"))
    _tear_the_ledger(project)
    proc = start_harness(project)
    intent_id = wait_injected(project, proc)
    pid = service_pid(project)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    ledger = IntentLedger(project / ".drillbook" / "intents.jsonl")
    end = time.monotonic() + 60
    while time.monotonic() < end and ledger.lookup(intent_id).status != "reverted":  # type: ignore[union-attr]
        time.sleep(0.2)
    assert ledger.lookup(intent_id).status == "reverted"  # type: ignore[union-attr]
    assert process_state(pid) not in ("T", "t") and healthy(project)


def test_ttl_watchdog_reverts_when_nobody_else_does(project: Path) -> None:
    (project / "scenarios" / "freeze.yaml").write_text(SCENARIO.replace("ttl: 10m", "ttl: 3s"))
    proc = start_harness(project)
    intent_id = wait_injected(project, proc)
    pid = service_pid(project)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    ledger = IntentLedger(project / ".drillbook" / "intents.jsonl")
    end = time.monotonic() + 30
    while time.monotonic() < end and ledger.lookup(intent_id).status != "reverted":  # type: ignore[union-attr]
        time.sleep(0.2)
    assert ledger.lookup(intent_id).status == "reverted"  # type: ignore[union-attr]
    assert process_state(pid) not in ("T", "t")

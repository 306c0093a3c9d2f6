"""The TTL watchdog: started before the intent, ready before any inject, gone once the fault is
reverted, and required: a drill without one does not inject unless told so, in the journal.
The revert at the deadline is covered end to end in test_crash.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from drillbook.intents import Intent, IntentLedger
from drillbook.watchdog import await_intent, spawn


def _intent(iid: str, expires_at: float) -> Intent:
    return Intent(
        id=iid,
        run_id="r",
        drill="d",
        fault_type="process.stop",
        params={},
        targets=("svc",),
        config_path=None,
        workdir="/tmp",
        environment="test",
        created_at=time.time(),
        expires_at=expires_at,
    )


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_a_watchdog_says_it_is_ready_and_leaves_once_its_intent_is_reverted(
    tmp_path: Path,
) -> None:
    path = tmp_path / "intents.jsonl"
    watchdog = spawn(path, "int-e", tmp_path / "watchdog.log", before_intent_s=60)
    try:
        assert watchdog.wait_ready(60)
        assert watchdog.proc.poll() is None  # this process (its harness) lives: it waits
        ledger = IntentLedger(path)
        ledger.record(_intent("int-e", time.time() + 600))
        time.sleep(0.5)
        assert watchdog.proc.poll() is None  # pending now: it waits for the TTL
        ledger.reverted("int-e")  # and the intent moves to the archive
        assert watchdog.proc.wait(timeout=10) == 0
    finally:
        watchdog.stop()
        watchdog.reap()
    assert (tmp_path / "watchdog.log").read_text() == ""


def test_a_watchdog_that_dies_before_it_is_ready_is_not_live(tmp_path: Path) -> None:
    """A ledger path it cannot read (a folder) stops it before it says ready."""
    (tmp_path / "intents.jsonl").mkdir()
    watchdog = spawn(tmp_path / "intents.jsonl", "int-f", tmp_path / "watchdog.log")
    try:
        assert watchdog.wait_ready(60) is False
    finally:
        watchdog.stop()
        watchdog.reap()
    assert "IsADirectoryError" in (tmp_path / "watchdog.log").read_text()


def test_waiting_for_an_intent_not_recorded_yet(tmp_path: Path) -> None:
    ledger = IntentLedger(tmp_path / "intents.jsonl")
    # The harness is gone and never recorded it: nothing to watch.
    assert await_intent(ledger, "int-c", _dead_pid(), 30) is False
    # Recorded just before the harness died: the re-read after seeing it gone finds it.
    ledger.record(_intent("int-c", time.time() + 600))
    assert await_intent(ledger, "int-c", _dead_pid(), 30) is True
    # A live harness that never records it: bounded by the limit.
    assert await_intent(ledger, "int-d", os.getpid(), 0.3) is False


def _watchdogs_of(ledger: Path) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmd = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"drillbook.watchdog" in cmd and str(ledger).encode() in cmd:
                found.append(int(entry.name))
    return found


def _project(tmp_path: Path, port: int, pid_file: str = "svc.pid") -> None:
    (tmp_path / "drillbook.yaml").write_text(
        "environment: test\n"
        f"targets:\n  svc: {{backend: local, pid_file: {pid_file}, port: {port}}}\n"
    )
    (tmp_path / "scenarios").mkdir()
    (tmp_path / "scenarios" / "s.yaml").write_text(
        "id: s\nobjectives: {rto: 30s, severity: P3}\ntimeout: 4s\n"
        "fault: {type: process.stop, target: svc}\n"
        f'probes:\n  - {{name: h, type: http, url: "http://127.0.0.1:{port}/health"}}\n'
        "recovery:\n  - {kind: automatic}\n"
    )


def _run(tmp_path: Path, **env_extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRILLBOOK_")}
    env.update(env_extra)
    return subprocess.run(
        [sys.executable, "-m", "drillbook.cli", "run", "scenarios/s.yaml"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_a_drill_that_never_injects_leaves_no_watchdog(tmp_path: Path) -> None:
    """Started before the steady-state check, the watchdog is ended when the drill stops
    without injecting (the target is down: steady state fails, nothing is injected)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: nothing listens there
    _project(tmp_path, port)
    (tmp_path / "svc.pid").write_text("999999\n")
    out = _run(tmp_path)
    assert out.returncode != 0 and "unhealthy before injection" in out.stdout + out.stderr
    ledger = tmp_path / ".drillbook" / "intents.jsonl"
    assert not ledger.exists() or "int-" not in ledger.read_text()
    assert (tmp_path / ".drillbook" / "watchdog.log").exists()  # one was started ahead
    deadline = time.monotonic() + 10
    while _watchdogs_of(ledger):
        assert time.monotonic() < deadline, "a watchdog outlived a drill that never injected"
        time.sleep(0.05)


def _demo_service(tmp_path: Path) -> tuple[subprocess.Popen[bytes], int]:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "drillbook.backends.local.demo_service", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    (tmp_path / "svc.pid").write_text(f"{proc.pid}\n")
    import urllib.request

    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1):
                return proc, port
        except OSError:
            assert time.monotonic() < deadline, "the demo service did not start"
            time.sleep(0.05)


def test_no_live_watchdog_no_inject_exit_4(tmp_path: Path) -> None:
    """The watchdog cannot start (its log path is a folder): the drill refuses before any
    intent, exit 4, saying why and how to opt out; the service was never touched."""
    proc, port = _demo_service(tmp_path)
    try:
        _project(tmp_path, port)
        (tmp_path / ".drillbook" / "watchdog.log").mkdir(parents=True)
        out = _run(tmp_path)
        assert out.returncode == 4, out.stdout + out.stderr
        assert "no live TTL watchdog" in out.stdout + out.stderr
        assert "safety.watchdog: false" in out.stdout + out.stderr
        ledger = tmp_path / ".drillbook" / "intents.jsonl"
        assert not ledger.exists() or "int-" not in ledger.read_text()
        state = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(") ", 1)[1][:1]
        assert state in ("S", "R")  # never stopped
    finally:
        proc.kill()
        proc.wait()


def test_going_without_a_watchdog_is_an_explicit_journaled_choice(tmp_path: Path) -> None:
    proc, port = _demo_service(tmp_path)
    try:
        _project(tmp_path, port)
        (tmp_path / ".drillbook" / "watchdog.log").mkdir(parents=True)  # could not start one
        out = _run(tmp_path, DRILLBOOK_NO_WATCHDOG="1")
        assert "no live TTL watchdog" not in out.stdout + out.stderr
        events = [
            json.loads(x)
            for x in (tmp_path / "reports" / "latest" / "events.jsonl").read_text().splitlines()
        ]
        (chosen,) = [e for e in events if e["kind"] == "watchdog"]
        assert chosen["live"] is False and chosen["allowed_by"] == "$DRILLBOOK_NO_WATCHDOG=1"
        assert any(e["kind"] == "inject" for e in events)
        assert not _watchdogs_of(tmp_path / ".drillbook" / "intents.jsonl")
    finally:
        proc.kill()
        proc.wait()


def test_the_watchdog_variable_takes_only_a_clear_yes_or_no(tmp_path: Path) -> None:
    (tmp_path / "drillbook.yaml").write_text("environment: test\n")
    out = subprocess.run(
        [sys.executable, "-m", "drillbook.cli", "rollback"],
        cwd=tmp_path,
        env={**os.environ, "DRILLBOOK_NO_WATCHDOG": "maybe"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2 and "$DRILLBOOK_NO_WATCHDOG" in out.stderr


def test_a_run_that_never_used_its_early_watchdog_stops_it(tmp_path: Path) -> None:
    """The run's early watchdog waits for an intent for up to an hour; a run that ends without
    injecting (a backend failed to prepare, a signal between drills) must not leave it."""
    from drillbook.config import Config
    from drillbook.session import RunSession
    from drillbook.watchdog import spare_for

    cfg = Config(source="test", workdir=tmp_path, state_dir=tmp_path / ".drillbook")
    spare = spare_for(cfg)
    assert spare is not None
    _intent_id, watchdog = spare
    assert watchdog.wait_ready(60)
    session = RunSession(lambda: cfg, config=cfg, spare_watchdog=spare)
    session.finish(0)
    assert watchdog.proc.poll() is not None  # stopped and reaped, not left waiting

"""The watchdog's light wait (:mod:`drillbook.ttlwait`) reads the ledger as IntentLedger does,
imports no drillbook while it waits, and is what :func:`drillbook.watchdog.spawn` starts.
The revert at the deadline through it is covered end to end in test_crash.py (harness SIGKILLed,
the watchdog reverts a SIGSTOPped service)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import drillbook.ttlwait
from drillbook.intents import Intent, IntentLedger
from drillbook.ttlwait import ledger_status
from drillbook.watchdog import spawn

TTLWAIT = Path(drillbook.ttlwait.__file__).resolve()


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


def test_status_and_deadline_agree_with_the_intent_ledger(tmp_path: Path) -> None:
    path = tmp_path / "intents.jsonl"
    ledger = IntentLedger(path)
    now = time.time()
    for i, ops in enumerate(
        [[], ["injected"], ["injected", "reverted"], ["revert_failed"], ["reverted", "injected"]]
    ):
        ledger.record(_intent(f"int-{i}", now + i))
        for op in ops:
            getattr(ledger, op)(
                f"int-{i}", *({"injected": [{}], "revert_failed": ["x"]}.get(op, []))
            )
    ledger.record(_intent("int-0", now + 99))  # the same id again: the record starts over
    with open(path, "a") as fh:
        fh.write("\n   \n{not json\n" + json.dumps({"op": "reverted"}) + "\n")
        fh.write(json.dumps({"op": "reverted", "id": "int-missing"}) + "\n")
        fh.write('{"op": "injected", "id": "int-1", "sta')  # torn by a crash mid-write
    for iid in [f"int-{i}" for i in range(5)] + ["int-missing", "nope"]:
        got = IntentLedger(path).get(iid)
        expected = (got.status, got.expires_at) if got is not None else (None, 0.0)
        assert ledger_status(str(path), iid) == expected, iid
    assert ledger_status(str(tmp_path / "absent.jsonl"), "int-0") == (None, 0.0)


def test_a_long_ledger_is_read_the_same_and_odd_ids_still_match(tmp_path: Path) -> None:
    """Lines without the id are skipped unparsed; the answers stay IntentLedger's, for ids that
    are prefixes of others and for an id JSON writes escaped."""
    path = tmp_path / "intents.jsonl"
    ledger = IntentLedger(path)
    now = time.time()
    for i in range(300):
        ledger.record(_intent(f"int-{i}", now + i))
        ledger.injected(f"int-{i}", {}, wait_for_disk=False)
        if i % 3:
            ledger.reverted(f"int-{i}", wait_for_disk=False)
    ledger.record(_intent("int-é", now + 7))  # written as "int-\u00e9"
    assert "int-\\u00e9" in path.read_text()
    for iid in ("int-1", "int-10", "int-299", "int-3", "int-é", "int-300"):
        got = IntentLedger(path).get(iid)
        expected = (got.status, got.expires_at) if got is not None else (None, 0.0)
        assert ledger_status(str(path), iid) == expected, iid


def test_waiting_imports_no_drillbook(tmp_path: Path) -> None:
    path = tmp_path / "intents.jsonl"
    ledger = IntentLedger(path)
    ledger.record(_intent("int-a", time.time() + 600))
    ledger.reverted("int-a")
    code = (
        "import runpy, sys\n"
        f"sys.argv = [{str(TTLWAIT)!r}, {str(path)!r}, 'int-a']\n"
        "try:\n"
        f"    runpy.run_path({str(TTLWAIT)!r}, run_name='__main__')\n"
        "except SystemExit as exc:\n"
        "    print(exc.code, sorted(m for m in sys.modules if m.startswith('drillbook')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-P", "-c", code], capture_output=True, text=True, timeout=60
    )
    assert out.stdout.split(" ", 1) == ["0", "[]\n"], out.stdout + out.stderr


def test_spawn_starts_the_light_wait_and_it_leaves_once_reverted(tmp_path: Path) -> None:
    path = tmp_path / "intents.jsonl"
    ledger = IntentLedger(path)
    ledger.record(_intent("int-b", time.time() + 600))
    proc = spawn(path, "int-b", tmp_path / "watchdog.log")
    try:
        assert str(TTLWAIT) in [str(a) for a in proc.args]  # type: ignore[union-attr]
        time.sleep(0.3)
        assert proc.poll() is None  # pending: it waits
        ledger.reverted("int-b")
        assert proc.wait(timeout=10) == 0  # polled at most every second
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert (tmp_path / "watchdog.log").read_text() == ""


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_waiting_for_an_intent_not_recorded_yet(tmp_path: Path) -> None:
    from drillbook.ttlwait import await_intent

    path = tmp_path / "intents.jsonl"
    ledger = IntentLedger(path)
    # The harness is gone and never recorded it: nothing to watch.
    assert await_intent(str(path), "int-c", _dead_pid(), 30) is False
    # Recorded just before the harness died: the re-read after seeing it gone finds it.
    ledger.record(_intent("int-c", time.time() + 600))
    assert await_intent(str(path), "int-c", _dead_pid(), 30) is True
    # A live harness that never records it: bounded by the limit.
    assert await_intent(str(path), "int-d", os.getpid(), 0.3) is False


def test_a_watchdog_started_ahead_watches_the_intent_once_it_is_recorded(tmp_path: Path) -> None:
    path = tmp_path / "intents.jsonl"
    proc = spawn(path, "int-e", tmp_path / "watchdog.log", before_intent_s=60)
    try:
        time.sleep(0.5)
        assert proc.poll() is None  # this process (its harness) lives: it waits for the intent
        ledger = IntentLedger(path)
        ledger.record(_intent("int-e", time.time() + 600))
        time.sleep(0.5)
        assert proc.poll() is None  # pending now: it waits for the TTL
        ledger.reverted("int-e")
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _watchdogs_of(ledger: Path) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmd = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if any(b"ttlwait.py" in c for c in cmd) and str(ledger).encode() in cmd:
                found.append(int(entry.name))
    return found


def test_a_drill_that_never_injects_leaves_no_watchdog(tmp_path: Path) -> None:
    """Started before the steady-state check, the watchdog is ended when the drill stops
    without injecting (the target is down: steady state fails, nothing is injected)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: nothing listens there
    (tmp_path / "drillbook.yaml").write_text(
        f"environment: test\ntargets:\n  svc: {{backend: local, pid_file: svc.pid, port: {port}}}\n"
    )
    (tmp_path / "svc.pid").write_text("999999\n")
    (tmp_path / "scenarios").mkdir()
    (tmp_path / "scenarios" / "s.yaml").write_text(
        "id: s\nobjectives: {rto: 30s, severity: P3}\n"
        "fault: {type: process.kill, target: svc, signal: KILL}\n"
        f'probes:\n  - {{name: h, type: http, url: "http://127.0.0.1:{port}/"}}\n'
        "recovery:\n  - {kind: automatic}\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRILLBOOK_")}
    out = subprocess.run(
        [sys.executable, "-m", "drillbook.cli", "run", "scenarios/s.yaml"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode != 0 and "unhealthy before injection" in out.stdout + out.stderr
    ledger = tmp_path / ".drillbook" / "intents.jsonl"
    assert not ledger.exists() or "int-" not in ledger.read_text()
    assert (tmp_path / ".drillbook" / "watchdog.log").exists()  # one was started ahead
    deadline = time.monotonic() + 10
    while _watchdogs_of(ledger):
        assert time.monotonic() < deadline, "a watchdog outlived a drill that never injected"
        time.sleep(0.05)


def test_a_harness_killed_but_not_yet_reaped_counts_as_gone() -> None:
    from drillbook.ttlwait import _alive

    proc = subprocess.Popen(["sleep", "60"])
    try:
        assert _alive(proc.pid)
        proc.kill()
        deadline = time.monotonic() + 10
        while Path(f"/proc/{proc.pid}/stat").read_text().rsplit(") ", 1)[1][:1] != "Z":
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert not _alive(proc.pid)  # a zombie: its parent (this test) has not reaped it
    finally:
        proc.kill()
        proc.wait()

"""The watchdog's light wait (:mod:`drillbook.ttlwait`) reads the ledger as IntentLedger does,
imports no drillbook while it waits, and is what :func:`drillbook.watchdog.spawn` starts.
The revert at the deadline through it is covered end to end in test_crash.py (harness SIGKILLed,
the watchdog reverts a SIGSTOPped service)."""

from __future__ import annotations

import json
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

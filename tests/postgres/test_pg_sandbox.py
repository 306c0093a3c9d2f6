"""The sandbox starts a real topology and leaves nothing behind, even when its owners die."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest


def _processes_under(root: Path) -> list[int]:
    from drillbook.backends.postgres.sandbox.lifecycle import our_processes

    return our_processes(root)


def _parser() -> argparse.ArgumentParser:
    from drillbook.backends.postgres.sandbox.commands import register

    parser = argparse.ArgumentParser(prog="drillbook")
    register(parser.add_subparsers(dest="command"))
    return parser


def test_up_status_down_via_commands_leaves_nothing(
    fresh_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = fresh_root
    parser = _parser()
    args = parser.parse_args(["sandbox", "up", "--root", str(root)])
    assert args.handler(args) == 0
    state = json.loads((root / "state.json").read_text())
    pids = [n["pid"] for n in state["nodes"].values()] + [state["supervisor"]["pid"]]
    assert all(isinstance(p, int) for p in pids)
    port = state["nodes"]["app"]["port"]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as response:
        assert json.loads(response.read()) == {"region": "region-a", "ok": True}

    capsys.readouterr()
    args = parser.parse_args(["sandbox", "status", "--root", str(root), "--json"])
    assert args.handler(args) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["serving"] == "region-a"
    assert {n: v["pid"] for n, v in status["nodes"].items()} == {
        n: v["pid"] for n, v in state["nodes"].items()
    }
    args = parser.parse_args(["sandbox", "down", "--root", str(root)])
    assert args.handler(args) == 0
    assert not root.exists()
    assert _processes_under(root) == []
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text()

    args = parser.parse_args(["sandbox", "status", "--root", str(root)])
    assert args.handler(args) == 1  # down


def test_status_reports_roles(pg: Path) -> None:
    from drillbook.backends.postgres.sandbox import sandbox_status

    status = sandbox_status(pg)
    assert status["up"] is True
    assert status["serving"] == "region-a"
    assert status["nodes"]["region-a"]["role"] == "primary"
    assert status["nodes"]["region-b"]["role"] == "standby"


def test_killed_supervisor_leaves_nothing_down_cannot_clean(fresh_root: Path) -> None:
    from drillbook.backends.postgres.sandbox import down, up

    root = fresh_root
    state = up(root)
    sup_pid = json.loads((root / "state.json").read_text())["supervisor"]["pid"]
    os.kill(sup_pid, signal.SIGKILL)
    # The servers outlive their supervisor: exactly the mess a crash leaves.
    assert _processes_under(root), "postgres should still be running without its supervisor"
    assert state["nodes"]["region-a"]["port"]
    done = down(root)
    assert any("stray pid" in line for line in done)
    assert not root.exists()
    assert _processes_under(root) == []


HARNESS = r"""
import os, signal, sys, time
from pathlib import Path
from drillbook.backends.base import Context
from drillbook.model import TargetSpec
from drillbook.backends.postgres.faults import DestroyData
from drillbook.backends.postgres.ledger import PostgresLedger
from drillbook.backends.postgres.sandbox import up
root = Path(sys.argv[1]); state_file = Path(sys.argv[2])
up(root)
target = TargetSpec("pg-primary", "postgres", {"sandbox": "region-a", "root": str(root)})
ctx = Context(params={}, targets=(target,), workdir=root.parent, state_dir=root.parent / "sd")
ledger = PostgresLedger(Context(params={"rate_per_s": 50}, targets=(target,)))
ledger.start()
time.sleep(0.5)
fault = DestroyData(ctx)
fault.inject()
import json; state_file.write_text(json.dumps(fault.state()))
os.kill(os.getpid(), signal.SIGKILL)  # the harness dies mid-drill
"""


def test_killed_harness_mid_drill_is_reverted_then_cleaned(
    fresh_root: Path, tmp_path: Path
) -> None:
    """A harness SIGKILLed after injecting: revert from the saved state in a new process (what
    ``drillbook rollback`` does), then ``sandbox down`` leaves no process and no folder."""
    from drillbook.backends.base import Context
    from drillbook.backends.postgres.faults import DestroyData
    from drillbook.backends.postgres.sandbox import down
    from drillbook.model import TargetSpec

    root = fresh_root
    state_file = tmp_path / "fault-state.json"
    src = str(Path(__file__).resolve().parents[2] / "src")
    env = {**os.environ, "PYTHONPATH": src}
    proc = subprocess.run(
        [sys.executable, "-c", HARNESS, str(root), str(state_file)], env=env, timeout=180
    )
    try:
        assert proc.returncode == -signal.SIGKILL
        assert not (root / "region-a" / "data" / "PG_VERSION").exists()
        target = TargetSpec("pg-primary", "postgres", {"sandbox": "region-a", "root": str(root)})
        ctx = Context(params={}, targets=(target,), workdir=tmp_path, state_dir=tmp_path / "sd")
        fault = DestroyData(ctx)
        fault.load_state(json.loads(state_file.read_text()))
        fault.revert()
        assert fault.verify_reverted()
        assert (root / "region-a" / "data" / "PG_VERSION").exists()
    finally:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not root.exists():
            time.sleep(0.1)
        down(root)
    assert not root.exists()
    assert _processes_under(root) == []


def test_sync_standby_option_makes_replication_synchronous(fresh_root: Path) -> None:
    import psycopg

    from drillbook.backends.postgres.sandbox import up
    from drillbook.backends.postgres.sandbox.state import dsn_for_port

    state = up(fresh_root, sync=True)
    port = state["nodes"]["region-a"]["port"]
    with psycopg.connect(dsn_for_port(port), autocommit=True) as conn:
        deadline = time.monotonic() + 30
        rows: list[tuple[object, ...]] = []
        while time.monotonic() < deadline:
            rows = conn.execute(
                "SELECT application_name, sync_state FROM pg_stat_replication"
            ).fetchall()
            if rows and rows[0][1] == "sync":
                break
            time.sleep(0.1)
    assert rows == [("region_b", "sync")]

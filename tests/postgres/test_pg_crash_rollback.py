"""Must-show 4: kill the harness mid-drill; ``drillbook rollback`` and ``drillbook sandbox down``
clean up everything: the data comes back, then no server process and no folder remain."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

CONFIG = """\
environment: sandbox
targets:
  pg-primary: {backend: postgres, sandbox: region-a}
"""

SCENARIO = """\
id: crash_db_restore
objectives: {rto: 5m, severity: P2}
probe_interval: 250ms
stable_for: 1s
timeout: 5m
fault: {type: postgres.destroy_data, target: pg-primary, ttl: 10m}
probes:
  - {name: accounts, type: sql, target: pg-primary, query: "SELECT count(*) FROM accounts", expected: 1000}
recovery:
  - {kind: automatic, name: "nobody restores it: the harness is killed while it waits"}
"""

DRILL = """\
from drillbook.model import Scenario
from drillbook.plugin import DrillFixture


def test_scenario(drill_scenario: Scenario, drill: DrillFixture) -> None:
    drill.run(drill_scenario)
"""


@pytest.fixture
def project(pg: Path) -> Iterator[Path]:  # pg: the backend must be available
    del pg
    root = Path(tempfile.mkdtemp(prefix="drillbook-crash-"))
    (root / "drillbook.yaml").write_text(CONFIG)
    (root / "scenarios").mkdir()
    (root / "scenarios" / "crash_db_restore.yaml").write_text(SCENARIO)
    (root / "drills").mkdir()
    (root / "drills" / "test_crash.py").write_text(DRILL)
    yield root
    from drillbook.backends.postgres.sandbox import down

    down(root / ".sandbox")
    shutil.rmtree(root, ignore_errors=True)


def _events(project: Path) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for path in project.glob("reports/*/events.jsonl"):
        for line in path.read_text().splitlines():
            if line.strip():
                out.append(json.loads(line))
    return out


def _cli(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    return subprocess.run(
        [sys.executable, "-m", "drillbook.cli", "--config", str(project / "drillbook.yaml"), *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_killed_harness_then_rollback_then_down_leaves_nothing(project: Path) -> None:
    from drillbook.backends.postgres.sandbox.lifecycle import our_processes

    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    harness = subprocess.Popen(
        [sys.executable, "-m", "pytest", "drills", "-p", "no:cacheprovider", "-q"],
        cwd=project,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 240
        while not any(e.get("kind") == "inject" for e in _events(project)):
            assert harness.poll() is None, "the harness ended before injecting"
            assert time.monotonic() < deadline, "no inject event"
            time.sleep(0.1)
    finally:
        os.killpg(harness.pid, signal.SIGKILL)  # the harness dies mid-drill
        harness.wait(30)
    sandbox = project / ".sandbox"
    assert not (sandbox / "region-a" / "data" / "PG_VERSION").exists()

    done = _cli(project, "rollback")
    assert done.returncode == 0, done.stdout + done.stderr
    assert (sandbox / "region-a" / "data" / "PG_VERSION").exists()
    from drillbook.backends.base import Context
    from drillbook.backends.postgres.probes import SqlProbe
    from drillbook.model import TargetSpec

    target = TargetSpec("pg-primary", "postgres", {"sandbox": "region-a", "root": str(sandbox)})
    query = "SELECT count(*) FROM accounts"
    probe = SqlProbe(Context(params={"query": query, "expected": 1000}, targets=(target,)))
    assert probe.check().ok

    done = _cli(project, "sandbox", "down")
    assert done.returncode == 0, done.stdout + done.stderr
    assert not sandbox.exists()
    assert our_processes(sandbox) == []

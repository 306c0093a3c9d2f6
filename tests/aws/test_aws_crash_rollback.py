"""The crash path: a harness SIGKILLed right after ``ec2.stop`` leaves stopped instances;
``drillbook rollback``, in a new process, starts them again from the intent ledger alone.

The harness is the real engine (``Drill.inject``: guard, intent ledger, fsync, state) in a
subprocess talking to moto over HTTP; the reaper is the real CLI, as an operator would run it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from aws_world import instance_states, run_instances

HARNESS = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from drillbook.config import Overrides, load_config
    from drillbook.engine import Drill
    from drillbook.model import FaultSpec

    workdir = Path(sys.argv[1])
    cfg = load_config(Overrides(config_path=workdir / "drillbook.yaml"), workdir=workdir)
    drill = Drill("crash_ec2_stop", cfg)
    drill.inject(FaultSpec("ec2.stop", {"count": 2}, ("web",), 300.0))
    print("INJECTED", flush=True)
    time.sleep(600)
    """
)


def _config(tmp_path: Path, aws: dict[str, Any]) -> Path:
    path = tmp_path / "drillbook.yaml"
    endpoint = f"    endpoint_url: {aws['endpoint_url']}\n" if aws.get("endpoint_url") else ""
    path.write_text(
        "environment: sandbox\n"
        "safety: {max_targets: 2, max_percent: 100}\n"
        "targets:\n"
        "  web: {backend: aws, region: us-east-1, tags: {app: crash-web}}\n"
        "backends:\n"
        "  aws:\n"
        f"{endpoint}"
        f"    allowed_accounts: {list(aws['allowed_accounts'])}\n"
        f"    allowed_regions: {list(aws['allowed_regions'])}\n"
        "    require_opt_in: true\n"
    )
    return path


def _rollback(config: Path, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "drillbook.cli", "--config", str(config), "rollback"],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=180,
    )


def test_sigkilled_harness_after_ec2_stop_is_reverted_by_drillbook_rollback(
    aws: dict[str, Any], tmp_path: Path
) -> None:
    ids = run_instances(aws, 3, {"app": "crash-web", "drillbook:chaos": "allowed"})
    config = _config(tmp_path, aws)
    env = {**os.environ, "DRILLBOOK_NO_WATCHDOG": "1"}
    harness = subprocess.Popen(
        [sys.executable, "-c", HARNESS, str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    try:
        assert harness.stdout is not None
        line = harness.stdout.readline()
        assert line.strip() == "INJECTED", harness.stderr.read() if harness.stderr else line
        harness.send_signal(signal.SIGKILL)
        assert harness.wait(timeout=30) == -signal.SIGKILL
    finally:
        if harness.poll() is None:
            harness.kill()
            harness.wait(timeout=30)
    # The fault outlived its harness: two of the three are stopped.
    states = instance_states(aws, ids)
    assert sorted(states.values()).count("running") == 1, states
    assert (
        sorted(states.values()).count("running")
        + sum(s in ("stopping", "stopped") for s in states.values())
        == 3
    ), states

    reaper = _rollback(config, tmp_path, env)
    assert reaper.returncode == 0, reaper.stdout + reaper.stderr
    assert "ec2.stop" in reaper.stdout and "ok" in reaper.stdout
    assert set(instance_states(aws, ids).values()) <= {"pending", "running"}

    again = _rollback(config, tmp_path, env)
    assert again.returncode == 0 and "nothing pending" in again.stdout


def test_sigkilled_harness_after_ec2_stop_is_reverted_by_its_watchdog_alone(
    aws: dict[str, Any], tmp_path: Path
) -> None:
    """The same crash with the watchdog on (the default) and nobody else acting: at the fault's
    TTL the watchdog starts the instances again, and the ledger says who did."""
    import time

    from drillbook.intents import IntentLedger

    ids = run_instances(aws, 3, {"app": "crash-web", "drillbook:chaos": "allowed"})
    _config(tmp_path, aws)
    env = {k: v for k, v in os.environ.items() if k != "DRILLBOOK_NO_WATCHDOG"}
    harness = subprocess.Popen(
        [sys.executable, "-c", HARNESS.replace("300.0", "4.0"), str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    try:
        assert harness.stdout is not None
        line = harness.stdout.readline()
        assert line.strip() == "INJECTED", harness.stderr.read() if harness.stderr else line
        harness.send_signal(signal.SIGKILL)
        assert harness.wait(timeout=30) == -signal.SIGKILL
    finally:
        if harness.poll() is None:
            harness.kill()
            harness.wait(timeout=30)
    ledger = IntentLedger(tmp_path / ".drillbook" / "intents.jsonl")
    end = time.monotonic() + 120
    while ledger.pending() and time.monotonic() < end:
        time.sleep(0.2)
    assert ledger.pending() == []
    (done,) = ledger.archived().values()
    assert done.status == "reverted" and done.fault_type == "ec2.stop"
    assert '"by":"ttl-watchdog"' in ledger.archive_path.read_text()
    assert set(instance_states(aws, ids).values()) <= {"pending", "running"}

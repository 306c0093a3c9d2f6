"""The crash path: a harness SIGKILLed right after ``docker.disconnect`` leaves a partitioned
container; ``drillbook rollback``, in a new process, reconnects it with the same aliases.

The harness is the real engine (``Drill.inject``: intent ledger, fsync, state) in a subprocess;
the reaper is the real CLI (``drillbook rollback``) as an operator would run it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

from docker_kit import Made, http_status

HARNESS = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from drillbook.config import Overrides, load_config
    from drillbook.engine import Drill
    from drillbook.model import FaultSpec

    workdir = Path(sys.argv[1])
    cfg = load_config(Overrides(config_path=workdir / "drillbook.yaml"), workdir=workdir)
    drill = Drill("crash_partition", cfg)
    drill.inject(FaultSpec("docker.disconnect", {"network": sys.argv[2]}, ("edge",), 300.0))
    print("INJECTED", flush=True)
    time.sleep(600)
    """
)


def wait(pred: Callable[[], bool], timeout: float = 20.0) -> bool:
    import time

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.1)
    return pred()


def test_sigkilled_harness_after_disconnect_is_healed_by_drillbook_rollback(
    made: Made, docker_client: Any, tmp_path: Path
) -> None:
    net = made.network()
    c, port = made.container(network=net, aliases=["edge", "edge.internal"])
    assert wait(lambda: http_status(port) == 200)
    (tmp_path / "drillbook.yaml").write_text(
        "environment: sandbox\n"
        "safety: {max_targets: 1, max_percent: 100}\n"
        f"targets:\n  edge: {{backend: docker, container: {c.name}}}\n"
    )
    env = {**os.environ, "DRILLBOOK_NO_WATCHDOG": "1"}
    harness = subprocess.Popen(
        [sys.executable, "-c", HARNESS, str(tmp_path), net],
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
    # The fault outlived its harness: still partitioned.
    nets = docker_client.api.inspect_container(c.id)["NetworkSettings"]["Networks"]
    assert net not in nets
    assert http_status(port) is None

    reaper = subprocess.run(
        [
            sys.executable,
            "-m",
            "drillbook.cli",
            "--config",
            str(tmp_path / "drillbook.yaml"),
            "rollback",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
    )
    assert reaper.returncode == 0, reaper.stdout + reaper.stderr
    assert "ok" in reaper.stdout and "docker.disconnect" in reaper.stdout
    nets = docker_client.api.inspect_container(c.id)["NetworkSettings"]["Networks"]
    assert {"edge", "edge.internal"} <= set(nets[net]["Aliases"])
    assert wait(lambda: http_status(port) == 200)

    again = subprocess.run(
        [
            sys.executable,
            "-m",
            "drillbook.cli",
            "--config",
            str(tmp_path / "drillbook.yaml"),
            "rollback",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
    )
    assert again.returncode == 0 and "nothing pending" in again.stdout


def test_sigkilled_harness_after_disconnect_is_healed_by_its_watchdog_alone(
    made: Made, docker_client: Any, tmp_path: Path
) -> None:
    """The same crash with the watchdog on (the default) and nobody else acting: at the fault's
    TTL the watchdog reconnects the container, and the ledger says who did."""
    from drillbook.intents import IntentLedger

    net = made.network()
    c, port = made.container(network=net, aliases=["edge", "edge.internal"])
    assert wait(lambda: http_status(port) == 200)
    (tmp_path / "drillbook.yaml").write_text(
        "environment: sandbox\n"
        "safety: {max_targets: 1, max_percent: 100}\n"
        f"targets:\n  edge: {{backend: docker, container: {c.name}}}\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "DRILLBOOK_NO_WATCHDOG"}
    harness = subprocess.Popen(
        [sys.executable, "-c", HARNESS.replace("300.0", "4.0"), str(tmp_path), net],
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
    nets = docker_client.api.inspect_container(c.id)["NetworkSettings"]["Networks"]
    assert net not in nets  # the fault outlived its harness
    assert wait(lambda: http_status(port) == 200, timeout=90)
    nets = docker_client.api.inspect_container(c.id)["NetworkSettings"]["Networks"]
    assert {"edge", "edge.internal"} <= set(nets[net]["Aliases"])
    ledger = IntentLedger(tmp_path / ".drillbook" / "intents.jsonl")
    # The container answers as soon as it is reconnected; the watchdog verifies the revert and
    # only then records it, so wait for the record rather than read it at once.
    assert wait(lambda: ledger.pending() == [], timeout=60), ledger.pending()
    (done,) = ledger.archived().values()
    assert done.status == "reverted" and done.fault_type == "docker.disconnect"
    archive = ledger.archive_path.read_text()
    assert '"by":"ttl-watchdog"' in archive

"""The sandbox estate, the control-plane player, and the four shipped AWS scenarios end to end.

The scenario test runs ``pytest drills/ -k ...`` in a subprocess, exactly as README's command does,
against this session's moto, and reads the journal it wrote.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from aws_world import boto, make_ctx

from drillbook.backends.aws import sandbox
from drillbook.backends.aws.ec2 import AsgTerminateInstances
from drillbook.backends.aws.probes import AsgInService, RdsAvailable
from drillbook.backends.aws.rds import RdsRebootFailover
from drillbook.backends.base import get_registry
from drillbook.errors import BackendUnavailable

REPO = Path(__file__).resolve().parents[2]
SCENARIOS = ("db_restore_rds", "rds_failover", "az_instance_loss", "region_loss_aws")


def _until(pred: Any, timeout: float = 30.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.1)
    return bool(pred())


def test_prepare_builds_the_estate_plays_the_control_plane_and_removes_it(
    aws: dict[str, Any], moto_only: None
) -> None:
    settings = {
        **aws,
        "sandbox": True,
        "sandbox_timings": {"rds_reboot_s": 5, "asg_launch_s": 5},
    }
    rds = boto(aws, "rds")
    with sandbox.prepare(make_ctx(aws, settings=settings)):
        ids = {d["DBInstanceIdentifier"] for d in rds.describe_db_instances()["DBInstances"]}
        assert {sandbox.DEMO["db"], sandbox.DEMO["gdb"]} <= ids
        west = boto(aws, "rds", sandbox.REGION_B).describe_db_instances()["DBInstances"]
        assert [d["DBInstanceIdentifier"] for d in west] == [sandbox.DEMO["gdb_replica"]]

        # The player: a reboot takes the instance away for a while, then it comes back.
        db = {"db": {"id": sandbox.DEMO["db"]}}
        available = RdsAvailable(make_ctx(aws, settings=settings, targets=db))
        reboot = RdsRebootFailover(make_ctx(aws, settings=settings, targets=db))
        reboot.inject()
        assert not available.check().ok
        assert _until(lambda: available.check().ok)

        # The player: replacements are unhealthy until their grace period has passed.
        asg = {"asg": {"id": sandbox.DEMO["asg"]}}
        capacity = AsgInService(make_ctx(aws, settings=settings, targets=asg))
        assert capacity.check().ok
        kill = AsgTerminateInstances(make_ctx(aws, {"count": 1}, asg, settings=settings))
        kill.resolve()
        kill.inject()
        low = capacity.check()
        assert not low.ok and "3 healthy" in low.detail
        assert _until(lambda: capacity.check().ok)
    assert not [
        d
        for d in rds.describe_db_instances()["DBInstances"]
        if d["DBInstanceIdentifier"].startswith("drillbook-demo")
    ]
    zones = boto(aws, "route53").list_hosted_zones()["HostedZones"]
    assert sandbox.ZONE not in {z["Name"] for z in zones}


def test_prepare_refuses_a_sandbox_without_an_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DRILLBOOK_AWS_ENDPOINT_URL", raising=False)
    with (
        pytest.raises(BackendUnavailable, match="never real AWS"),
        sandbox.prepare(make_ctx({}, settings={"sandbox": True, "allowed_accounts": ["1"]})),
    ):
        pass


def test_registry_has_every_name_the_issue_asks_for() -> None:
    registry = get_registry()
    assert "aws" in registry.backends, registry.broken
    faults = {
        "rds.reboot_failover",
        "rds.failover_cluster",
        "ec2.stop",
        "ec2.terminate",
        "asg.suspend",
        "asg.terminate_instances",
        "route53.fail_health_check",
        "route53.failover",
        "elbv2.deregister_targets",
        "fis.start_experiment",
    }
    steps = {
        "rds.restore_snapshot",
        "rds.restore_pitr",
        "rds.promote_replica",
        "asg.resume",
        "route53.failover",
    }
    probes = {
        "aws.rds_available",
        "aws.ec2_running",
        "aws.asg_in_service",
        "aws.route53_resolves",
        "aws.health_check",
    }
    assert faults <= set(registry.faults)
    assert steps <= set(registry.recoveries)
    assert probes <= set(registry.probes)


@pytest.mark.slow
def test_the_four_aws_scenarios_pass_with_numeric_rta(
    aws: dict[str, Any], moto_only: None, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "DRILLBOOK_AWS_ENDPOINT_URL": aws["endpoint_url"],
        "DRILLBOOK_REPORTS_DIR": str(tmp_path / "reports"),
        "DRILLBOOK_STATE_DIR": str(tmp_path / "state"),
        "DRILLBOOK_NO_WATCHDOG": "1",
    }
    env.pop("DRILLBOOK_REQUIRE_BACKENDS", None)
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "drills/",
            "-q",
            "-p",
            "no:cacheprovider",
            "-k",
            " or ".join(SCENARIOS),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    journals = [
        p for p in (tmp_path / "reports").glob("*/journal.json") if p.parent.name != "latest"
    ]
    assert len(journals) == 1
    drills = {d["id"]: d for d in json.loads(journals[0].read_text())["drills"]}
    assert set(drills) == set(SCENARIOS)
    for name, drill in drills.items():
        assert drill["verdict"] == "passed", (name, drill["reasons"])
        rta = drill["measures"]["rta_s"]
        assert isinstance(rta, float) and rta > 0, (name, rta)
        assert drill["measures"]["ttd_s"] is not None, name
        assert all(r["ok"] and r["verified"] for r in drill["reverts"]), name

"""Recovery steps and probes against moto, and the bounded poll they all wait with."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from aws_world import OPT_IN, boto, demo_estate, make_ctx

from drillbook.backends.aws.poll import PollTimeout, poll_until
from drillbook.backends.aws.probes import RdsAvailable, Route53Resolves
from drillbook.backends.aws.rds import RdsPromoteReplica, RdsRestorePitr, RdsRestoreSnapshot
from drillbook.backends.aws.route53 import Route53FailoverStep
from drillbook.backends.aws.sandbox import DEMO, REGION_B, ZONE
from drillbook.backends.base import Context
from drillbook.clock import FakeClock
from drillbook.errors import RecoveryError

DB_CNAME = "db." + ZONE


def _demo(aws: dict[str, Any]) -> dict[str, str]:
    return demo_estate(aws)


def test_restore_newest_snapshot_into_new_instance_and_repoint(aws: dict[str, Any]) -> None:
    facts = _demo(aws)
    rds = boto(aws, "rds")
    rds.create_db_snapshot(
        DBInstanceIdentifier=DEMO["db"], DBSnapshotIdentifier="drillbook-demo-db-newest"
    )
    via_cname = RdsAvailable(make_ctx(aws, {"zone": ZONE, "record": DB_CNAME, "writable": True}))
    assert DEMO["db"] in via_cname.check().detail
    rds.stop_db_instance(DBInstanceIdentifier=DEMO["db"])
    down = via_cname.check()
    assert not down.ok and "stopped" in down.detail

    step = RdsRestoreSnapshot(
        make_ctx(
            aws,
            {"repoint": {"zone": ZONE, "record": DB_CNAME}, "new_instance": "drillbook-demo-db-r1"},
            {"db": {"id": DEMO["db"], "region": "us-east-1"}},
        )
    )
    detail = step.run()
    assert "drillbook-demo-db-newest" in detail and "drillbook-demo-db-r1" in detail
    restored = rds.describe_db_instances(DBInstanceIdentifier="drillbook-demo-db-r1")[
        "DBInstances"
    ][0]
    assert restored["DBInstanceStatus"] == "available"
    up = via_cname.check()
    assert up.ok and "drillbook-demo-db-r1" in up.detail
    assert facts["db_endpoint"] not in up.detail


def test_restore_named_snapshot_and_missing_snapshot(aws: dict[str, Any]) -> None:
    _demo(aws)
    targets = {"db": {"id": DEMO["db"]}}
    named = RdsRestoreSnapshot(
        make_ctx(aws, {"snapshot": DEMO["snapshot"], "new_instance": "r-named"}, targets)
    )
    assert DEMO["snapshot"] in named.run()
    boto(aws, "rds").create_db_instance(
        DBInstanceIdentifier="no-backups",
        DBInstanceClass="db.t3.micro",
        Engine="postgres",
        MasterUsername="u",
        MasterUserPassword="password1",
        AllocatedStorage=20,
        BackupRetentionPeriod=0,
        Tags=OPT_IN,
    )
    nothing = RdsRestoreSnapshot(
        make_ctx(aws, {"snapshot_type": "manual"}, {"db": {"id": "no-backups"}})
    )
    with pytest.raises(RecoveryError, match="no available snapshot"):
        nothing.run()


def test_restore_pitr(aws: dict[str, Any]) -> None:
    _demo(aws)
    step = RdsRestorePitr(
        make_ctx(aws, {"new_instance": "drillbook-demo-db-pitr"}, {"db": {"id": DEMO["db"]}})
    )
    assert "latest restorable time" in step.run()
    assert RdsAvailable(make_ctx(aws, {"id": "drillbook-demo-db-pitr"})).check().ok


def test_promote_cross_region_replica_and_repoint(aws: dict[str, Any]) -> None:
    _demo(aws)
    gdb = "gdb." + ZONE
    via_cname = RdsAvailable(make_ctx(aws, {"zone": ZONE, "record": gdb}))
    replica_target = {"r": {"id": DEMO["gdb_replica"], "region": REGION_B}}
    replica = RdsAvailable(make_ctx(aws, {"writable": True}, replica_target))
    not_yet = replica.check()
    assert not not_yet.ok and "read replica" in not_yet.detail
    params = {"repoint": {"zone": ZONE, "record": gdb}, "wait_for": "available"}
    step = RdsPromoteReplica(make_ctx(aws, params, replica_target))
    assert "promoted" in step.run()
    result = via_cname.check()
    assert result.ok and DEMO["gdb_replica"] in result.detail and REGION_B in result.detail


def test_promote_waiting_for_standalone_is_bounded_by_the_deadline(
    aws: dict[str, Any], moto_only: None
) -> None:
    """moto never clears ReadReplicaSourceDBInstanceIdentifier after a promotion, so waiting for
    a standalone instance cannot succeed there; the wait must end at the drill's deadline."""
    _demo(aws)
    clock = FakeClock()
    replica_target = {"r": {"id": DEMO["gdb_replica"], "region": REGION_B}}
    ctx = make_ctx(aws, {}, replica_target, clock=clock, deadline=clock.monotonic() + 30)
    with pytest.raises(RecoveryError, match="timed out"):
        RdsPromoteReplica(ctx).run()
    assert clock.monotonic() == pytest.approx(ctx.deadline)


def test_route53_failover_step_is_idempotent_with_to(aws: dict[str, Any]) -> None:
    _demo(aws)
    params = {"zone": ZONE, "record": "app." + ZONE, "to": "region-b"}
    step = Route53FailoverStep(make_ctx(aws, params))
    assert "-> region-b" in step.run()
    assert "-> region-b" in step.run()
    answers_b = Route53Resolves(
        make_ctx(aws, {**params, "expect": "web.us-west-2.drillbook-demo.test"})
    )
    assert answers_b.check().ok


def test_poll_backs_off_and_stops_at_the_drill_deadline() -> None:
    clock = FakeClock()
    ctx = Context(params={}, clock=clock, deadline=clock.monotonic() + 10.0)
    calls: list[float] = []

    def never() -> None:
        calls.append(clock.monotonic())
        return None

    with pytest.raises(PollTimeout, match="the thing"):
        poll_until(ctx, never, what="the thing", timeout_s=3600, first_delay_s=0.5, max_delay_s=4.0)
    gaps = [b - a for a, b in itertools.pairwise(calls)]
    assert gaps[0] == pytest.approx(0.5)
    assert all(b >= a for a, b in itertools.pairwise(gaps[:-1]))  # backing off; last is clipped
    assert max(gaps) <= 4.0
    assert calls[-1] == pytest.approx(ctx.deadline)  # never past the deadline


def test_poll_returns_the_first_answer() -> None:
    clock = FakeClock()
    ctx = Context(params={}, clock=clock)
    answers = iter([None, None, "ready"])
    assert poll_until(ctx, lambda: next(answers), what="x", timeout_s=5) == "ready"


def test_rds_available_connect_checks_the_endpoint_answers(
    aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``connect: true`` means a TCP connect to the instance endpoint. moto's endpoints are names
    that resolve nowhere, so the connect is intercepted here (no traffic leaves 127.0.0.1)."""
    import socket

    demo_estate(aws)
    tried: list[tuple[str, int]] = []

    def refuse(address: tuple[str, int], timeout: float = 0.0) -> socket.socket:
        tried.append(address)
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr(socket, "create_connection", refuse)
    probe = RdsAvailable(make_ctx(aws, {"connect": True}, {"db": {"id": DEMO["db"]}}))
    result = probe.check()
    assert not result.ok and "refused" in result.detail
    assert tried and tried[0][0].startswith(DEMO["db"] + ".") and tried[0][1] == 5432

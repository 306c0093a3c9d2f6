"""Each aws fault against moto: inject, observe, revert (idempotent), and revert from state alone."""

from __future__ import annotations

from typing import Any

import pytest
from aws_world import (
    AMI,
    OPT_IN,
    boto,
    demo_estate,
    instance_states,
    make_ctx,
    moto_only_resource,
    run_instances,
)

from drillbook.backends.aws.ec2 import AsgSuspend, AsgTerminateInstances, Ec2Stop, Ec2Terminate
from drillbook.backends.aws.elbv2 import Elbv2DeregisterTargets
from drillbook.backends.aws.probes import AsgInService, Ec2Running, HealthCheck, Route53Resolves
from drillbook.backends.aws.rds import RdsFailoverCluster, RdsRebootFailover, RdsStop
from drillbook.backends.aws.region import RegionLoss
from drillbook.backends.aws.route53 import Route53FailHealthCheck, Route53Failover
from drillbook.backends.aws.sandbox import DEMO, REGION_A, REGION_B, ZONE
from drillbook.backends.base import Fault
from drillbook.errors import ConfigError, FaultError, SafetyError

TAGS = {"drillbook:chaos": "allowed", "app": "web"}


def rebuilt(fault_type: type[Fault], fault: Fault) -> Fault:
    """The fault as `drillbook rollback` sees it: a new object, same params/targets, state only."""
    fresh = fault_type(fault.ctx)
    fresh.load_state(dict(fault.state()))
    return fresh


def test_ec2_stop_inject_revert_from_state(aws: dict[str, Any]) -> None:
    ids = run_instances(aws, 4, TAGS)
    fault = Ec2Stop(make_ctx(aws, {"tags": {"app": "web"}, "count": 2}))
    sel = fault.resolve()
    assert len(sel.chosen) == 2 and set(sel.chosen) <= set(ids) and sel.candidates == 4
    assert sel.seed is not None  # a subset was drawn: its seed goes in the journal
    fault.preflight()
    fault.inject()
    assert fault.verify_injected()
    states = instance_states(aws, ids)
    assert {states[i] for i in sel.chosen} <= {"stopping", "stopped"}
    assert {states[i] for i in set(ids) - set(sel.chosen)} == {"running"}
    again = rebuilt(Ec2Stop, fault)
    again.revert()
    again.revert()  # idempotent
    assert again.verify_reverted()
    assert set(instance_states(aws, ids).values()) <= {"pending", "running"}


def test_percent_rounds_up_and_empty_selection_is_an_error(aws: dict[str, Any]) -> None:
    run_instances(aws, 3, TAGS)
    assert (
        len(Ec2Stop(make_ctx(aws, {"tags": {"app": "web"}, "percent": 50})).resolve().chosen) == 2
    )
    with pytest.raises(ConfigError):
        Ec2Stop(make_ctx(aws, {"tags": {"app": "web"}, "count": 1, "percent": 5})).resolve()
    with pytest.raises(ConfigError, match="selector"):
        Ec2Stop(make_ctx(aws, {})).resolve()
    nothing = Ec2Stop(make_ctx(aws, {"tags": {"app": "nope"}}))
    assert nothing.resolve().candidates == 0
    with pytest.raises(SafetyError, match="empty selection"):
        nothing.inject()


def test_ec2_terminate_and_probe(aws: dict[str, Any]) -> None:
    ids = run_instances(aws, 2, TAGS)
    probe = Ec2Running(make_ctx(aws, {"tags": {"app": "web"}}))
    assert probe.check().ok
    fault = Ec2Terminate(make_ctx(aws, {"ids": ids[:1]}))
    fault.resolve()
    fault.inject()
    assert fault.verify_injected()
    result = probe.check()
    assert result.ok  # the terminated one no longer counts; 1/1 running
    assert Ec2Running(make_ctx(aws, {"tags": {"app": "web"}, "min": 2})).check().ok is False
    fault.revert()  # nothing to undo, and says so by not failing


def _asg(aws: dict[str, Any], size: int = 4) -> str:
    moto_only_resource("an Auto Scaling group")
    ec2 = boto(aws, "ec2")
    ec2.create_launch_template(
        LaunchTemplateName="drillbook-t",
        LaunchTemplateData={"ImageId": AMI, "InstanceType": "t3.micro"},
    )
    boto(aws, "autoscaling").create_auto_scaling_group(
        AutoScalingGroupName="web-asg",
        LaunchTemplate={"LaunchTemplateName": "drillbook-t"},
        MinSize=size,
        MaxSize=size,
        DesiredCapacity=size,
        AvailabilityZones=["us-east-1a", "us-east-1b"],
        Tags=[{**t, "PropagateAtLaunch": True} for t in OPT_IN],
    )
    return "web-asg"


def test_asg_terminate_instances_is_replaced(aws: dict[str, Any]) -> None:
    name = _asg(aws)
    ctx = make_ctx(aws, {"percent": 50}, {"web": {"id": name}})
    fault = AsgTerminateInstances(ctx)
    sel = fault.resolve()
    assert len(sel.chosen) == 2 and sel.candidates == 4
    fault.preflight()
    fault.inject()
    assert fault.verify_injected()
    # moto replaces terminated group members at once (real AWS takes minutes): docs/aws.md.
    assert AsgInService(make_ctx(aws, {}, {"web": {"id": name}})).check().ok
    members = boto(aws, "autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[name])
    now = {i["InstanceId"] for i in members["AutoScalingGroups"][0]["Instances"]}
    assert not (now & set(sel.chosen))


def test_asg_suspend_resumes_only_what_it_suspended(aws: dict[str, Any]) -> None:
    name = _asg(aws, 2)
    asg = boto(aws, "autoscaling")
    asg.suspend_processes(AutoScalingGroupName=name, ScalingProcesses=["AZRebalance"])
    fault = AsgSuspend(make_ctx(aws, {}, {"web": {"id": name}}))
    fault.resolve()
    fault.inject()
    assert fault.verify_injected()
    rebuilt(AsgSuspend, fault).revert()

    def suspended() -> set[str]:
        g = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0]
        return {p["ProcessName"] for p in g["SuspendedProcesses"]}

    assert suspended() == {"AZRebalance"}  # the operator's own suspension stays


def _db(
    aws: dict[str, Any], identifier: str, region: str = "us-east-1", **extra: Any
) -> dict[str, Any]:
    moto_only_resource("an RDS instance")
    resp = boto(aws, "rds", region).create_db_instance(
        DBInstanceIdentifier=identifier,
        DBInstanceClass="db.t3.micro",
        Engine="postgres",
        MasterUsername="u",
        MasterUserPassword="password1",
        AllocatedStorage=20,
        BackupRetentionPeriod=7,
        Tags=OPT_IN,
        **extra,
    )
    db: dict[str, Any] = resp["DBInstance"]
    return db


def test_rds_stop_and_revert(aws: dict[str, Any]) -> None:
    _db(aws, "orders")
    fault = RdsStop(make_ctx(aws, {}, {"orders": {"id": "orders"}}))
    fault.resolve()
    fault.inject()
    assert fault.verify_injected()
    again = rebuilt(RdsStop, fault)
    again.revert()
    again.revert()
    assert again.verify_reverted()


def test_rds_reboot_failover_needs_multi_az(aws: dict[str, Any]) -> None:
    _db(aws, "single")
    _db(aws, "multi", MultiAZ=True)
    with pytest.raises(FaultError, match="not Multi-AZ"):
        RdsRebootFailover(make_ctx(aws, {}, {"db": {"id": "single"}})).preflight()
    fault = RdsRebootFailover(make_ctx(aws, {}, {"db": {"id": "multi"}}))
    fault.preflight()
    fault.inject()
    assert fault.verify_injected()


def test_rds_failover_cluster_and_failback(aws: dict[str, Any]) -> None:
    moto_only_resource("an Aurora cluster")
    rds = boto(aws, "rds")
    rds.create_db_cluster(
        DBClusterIdentifier="aurora",
        Engine="aurora-postgresql",
        MasterUsername="u",
        MasterUserPassword="password1",
    )
    for name in ("aurora-a", "aurora-b"):
        rds.create_db_instance(
            DBInstanceIdentifier=name,
            DBClusterIdentifier="aurora",
            Engine="aurora-postgresql",
            DBInstanceClass="db.r5.large",
        )
    fault = RdsFailoverCluster(
        make_ctx(aws, {"target_instance": "aurora-b"}, {"c": {"id": "aurora"}})
    )
    fault.resolve()
    fault.inject()
    assert fault.verify_injected() and fault.writer() == "aurora-b"
    again = rebuilt(RdsFailoverCluster, fault)
    again.revert()
    assert again.verify_reverted() and again.writer() == "aurora-a"  # type: ignore[attr-defined]


def test_route53_health_check_and_failover_records(aws: dict[str, Any]) -> None:
    facts = demo_estate(aws)
    hc_target = {"hc": {"health_check_name": DEMO["health_check"]}}
    app = {"zone": ZONE, "record": "app." + ZONE}
    assert HealthCheck(make_ctx(aws, {}, hc_target)).check().ok
    resolves = Route53Resolves(
        make_ctx(aws, {**app, "expect": f"web.{REGION_A}.drillbook-demo.test"})
    )
    first = resolves.check()
    assert first.ok, first.detail

    fail = Route53FailHealthCheck(make_ctx(aws, {}, hc_target))
    fail.resolve()
    fail.inject()
    assert fail.verify_injected()
    assert HealthCheck(make_ctx(aws, {}, hc_target)).check().ok is False
    moved = resolves.check()
    assert not moved.ok and f"web.{REGION_B}" in moved.detail and "SECONDARY" in moved.detail
    fresh = rebuilt(Route53FailHealthCheck, fail)
    assert fresh.state()["health_check_id"] == facts["health_check_id"]
    fresh.revert()
    assert fresh.verify_reverted() and resolves.check().ok

    swap = Route53Failover(make_ctx(aws, app))
    swap.inject()
    assert swap.verify_injected() and swap.current_primary() == "region-b"  # type: ignore[attr-defined]
    assert not resolves.check().ok
    rebuilt(Route53Failover, swap).revert()
    assert resolves.check().ok


def test_elbv2_deregister_and_reregister(aws: dict[str, Any]) -> None:
    ids = run_instances(aws, 3, TAGS)
    elb = boto(aws, "elbv2")
    vpc = boto(aws, "ec2").describe_vpcs()["Vpcs"][0]["VpcId"]
    arn = elb.create_target_group(Name="web-tg", Protocol="HTTP", Port=80, VpcId=vpc)[
        "TargetGroups"
    ][0]["TargetGroupArn"]
    elb.register_targets(TargetGroupArn=arn, Targets=[{"Id": i, "Port": 8080} for i in ids])
    fault = Elbv2DeregisterTargets(make_ctx(aws, {"count": 2}, {"tg": {"name": "web-tg"}}))
    sel = fault.resolve()
    assert sel.candidates == 3 and len(sel.chosen) == 2
    fault.inject()
    assert fault.verify_injected()
    left = elb.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]
    assert len(left) == 1
    again = rebuilt(Elbv2DeregisterTargets, fault)
    again.revert()
    assert again.verify_reverted()
    ports = {
        d["Target"]["Port"]
        for d in elb.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]
    }
    assert ports == {8080}


def test_region_loss_composite_reverts_every_part_from_state(aws: dict[str, Any]) -> None:
    demo_estate(aws)
    params = {
        "region": REGION_A,
        "instance_tags": {"drillbook:demo": "web", "drillbook:region": REGION_A},
        "db_instance": DEMO["gdb"],
        "health_check_name": DEMO["health_check"],
    }
    fault = RegionLoss(make_ctx(aws, params))
    sel = fault.resolve()
    # 2 instances + the db + the health check: every part changes a target, so all count.
    assert sel.candidates == 4 and len(sel.chosen) == 4 and DEMO["gdb"] in sel.chosen
    fault.preflight()
    fault.inject()
    assert fault.verify_injected()
    west = Ec2Running(make_ctx(aws, {"tags": {"drillbook:demo": "web"}, "region": REGION_B}))
    assert west.check().ok  # the other region is untouched
    again = rebuilt(RegionLoss, fault)
    again.revert()
    again.revert()
    assert again.verify_reverted()
    east = Ec2Running(make_ctx(aws, {"tags": {"drillbook:demo": "web"}, "region": REGION_A}))
    assert east.check().ok


def test_ec2_stop_revert_when_an_instance_was_terminated_meanwhile(aws: dict[str, Any]) -> None:
    ids = run_instances(aws, 2, TAGS)
    fault = Ec2Stop(make_ctx(aws, {"ids": ids}))
    fault.resolve()
    fault.inject()
    boto(aws, "ec2").terminate_instances(InstanceIds=ids[:1])
    again = rebuilt(Ec2Stop, fault)
    again.revert()
    states = instance_states(aws, ids)
    assert states[ids[0]] in ("shutting-down", "terminated")
    assert states[ids[1]] in ("pending", "running")
    assert again.verify_reverted()  # nothing of the stop remains; the reaper must not loop


def test_rds_by_tag_selector_needs_exactly_one_match(aws: dict[str, Any]) -> None:
    _db(aws, "orders-a")
    rds = boto(aws, "rds")
    arn = rds.describe_db_instances(DBInstanceIdentifier="orders-a")["DBInstances"][0][
        "DBInstanceArn"
    ]
    rds.add_tags_to_resource(ResourceName=arn, Tags=[{"Key": "service", "Value": "orders"}])
    fault = RdsStop(make_ctx(aws, {"tags": {"service": "orders"}}))
    assert fault.resolve().chosen == ("orders-a",)
    _db(aws, "orders-b")
    arn_b = rds.describe_db_instances(DBInstanceIdentifier="orders-b")["DBInstances"][0][
        "DBInstanceArn"
    ]
    rds.add_tags_to_resource(ResourceName=arn_b, Tags=[{"Key": "service", "Value": "orders"}])
    with pytest.raises(ConfigError, match="exactly one"):
        RdsStop(make_ctx(aws, {"tags": {"service": "orders"}})).resolve()

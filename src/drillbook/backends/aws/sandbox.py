"""The demo estate that the shipped sandbox drills run against, created in moto only.

``prepare`` builds it when ``backends.aws.sandbox`` is true and removes it afterwards. It refuses
to run without an explicit endpoint URL: demo resources are never created in whatever account
ambient credentials reach. Names are fixed (``drillbook-demo-*``) so drillbook.yaml can name them;
generated ids (health checks) are found by their ``Name`` tag.

Region A is ``us-east-1`` (primary), region B ``us-west-2`` (secondary).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from drillbook.backends.base import Context
from drillbook.errors import BackendUnavailable

from .clients import add_client_hook, client, remove_client_hook
from .config import AwsSettings
from .player import ControlPlanePlayer

__all__ = ["DEMO", "REGION_A", "REGION_B", "create_demo", "destroy_demo", "prepare"]

log = logging.getLogger("drillbook.aws")

REGION_A = "us-east-1"
REGION_B = "us-west-2"
PREFIX = "drillbook-demo"
ZONE = "drillbook-demo.test."
#: An image id moto ships in every region (the demo estate exists only in moto).
DEMO_AMI = "ami-12c6146b"
OPT_IN = [{"Key": "drillbook:chaos", "Value": "allowed"}]

#: Names drillbook.yaml and the scenarios refer to.
DEMO = {
    "db": f"{PREFIX}-db",  # Multi-AZ, region A, snapshots (db_restore_rds, rds_failover)
    "snapshot": f"{PREFIX}-db-snap-1",
    "gdb": f"{PREFIX}-gdb",  # region A primary with a cross-region replica (region_loss_aws)
    "gdb_replica": f"{PREFIX}-gdb-replica",  # region B
    "asg": f"{PREFIX}-asg",  # region A, 4 instances over 2 AZs (az_instance_loss)
    "zone": ZONE,
    "health_check": f"{PREFIX}-primary",  # Name tag of region A's health check
}


def _rds_create(rds: Any, identifier: str, **extra: Any) -> dict[str, Any]:
    resp = rds.create_db_instance(
        DBInstanceIdentifier=identifier,
        DBInstanceClass="db.t3.micro",
        Engine="postgres",
        MasterUsername="drillbook",
        MasterUserPassword="drillbook-demo-only",
        AllocatedStorage=20,
        BackupRetentionPeriod=7,
        Tags=OPT_IN,
        **extra,
    )
    instance: dict[str, Any] = resp["DBInstance"]
    return instance


def create_demo(settings: AwsSettings) -> dict[str, str]:
    """Create the demo estate; returns facts (endpoints, ids) for logs and tests."""
    facts: dict[str, str] = {}
    rds_a = client(settings, "rds", REGION_A)
    rds_b = client(settings, "rds", REGION_B)
    db = _rds_create(rds_a, DEMO["db"], MultiAZ=True)
    rds_a.create_db_snapshot(DBInstanceIdentifier=DEMO["db"], DBSnapshotIdentifier=DEMO["snapshot"])
    gdb = _rds_create(rds_a, DEMO["gdb"])
    rds_b.create_db_instance_read_replica(
        DBInstanceIdentifier=DEMO["gdb_replica"],
        SourceDBInstanceIdentifier=gdb["DBInstanceArn"],
        DBInstanceClass="db.t3.micro",
        Tags=OPT_IN,
    )
    facts["db_endpoint"] = db["Endpoint"]["Address"]
    facts["gdb_endpoint"] = gdb["Endpoint"]["Address"]

    for region in (REGION_A, REGION_B):
        ec2 = client(settings, "ec2", region)
        ami = DEMO_AMI
        ec2.run_instances(
            ImageId=ami,
            InstanceType="t3.micro",
            MinCount=2,
            MaxCount=2,
            TagSpecifications=[
                {
                    "ResourceType": "instance",
                    "Tags": [
                        *OPT_IN,
                        {"Key": "drillbook:demo", "Value": "web"},
                        {"Key": "drillbook:region", "Value": region},
                    ],
                }
            ],
        )
        if region == REGION_A:
            ec2.create_launch_template(
                LaunchTemplateName=f"{PREFIX}-lt",
                LaunchTemplateData={"ImageId": ami, "InstanceType": "t3.micro"},
            )
            client(settings, "autoscaling", region).create_auto_scaling_group(
                AutoScalingGroupName=DEMO["asg"],
                LaunchTemplate={"LaunchTemplateName": f"{PREFIX}-lt"},
                MinSize=4,
                MaxSize=4,
                DesiredCapacity=4,
                AvailabilityZones=[f"{region}a", f"{region}b"],
                Tags=[{**t, "PropagateAtLaunch": True} for t in OPT_IN],
            )

    r53 = client(settings, "route53", REGION_A)
    zone_id = r53.create_hosted_zone(Name=ZONE, CallerReference=f"{PREFIX}-zone")["HostedZone"][
        "Id"
    ]
    check = r53.create_health_check(
        CallerReference=f"{PREFIX}-hc",
        HealthCheckConfig={
            "Type": "HTTP",
            "IPAddress": "127.0.0.1",
            "Port": 80,
            "ResourcePath": "/",
        },
    )["HealthCheck"]["Id"]
    r53.change_tags_for_resource(
        ResourceType="healthcheck",
        ResourceId=check,
        AddTags=[{"Key": "Name", "Value": DEMO["health_check"]}, *OPT_IN],
    )

    def cname(name: str, value: str, **extra: Any) -> dict[str, Any]:
        rrs = {"Name": f"{name}.{ZONE}", "Type": "CNAME", "TTL": 60, **extra}
        rrs["ResourceRecords"] = [{"Value": value}]
        return {"Action": "UPSERT", "ResourceRecordSet": rrs}

    r53.change_resource_record_sets(
        HostedZoneId=zone_id,
        ChangeBatch={
            "Changes": [
                cname("db", facts["db_endpoint"]),
                cname("gdb", facts["gdb_endpoint"]),
                cname(
                    "app",
                    f"web.{REGION_A}.{ZONE}".rstrip("."),
                    SetIdentifier="region-a",
                    Failover="PRIMARY",
                    HealthCheckId=check,
                ),
                cname(
                    "app",
                    f"web.{REGION_B}.{ZONE}".rstrip("."),
                    SetIdentifier="region-b",
                    Failover="SECONDARY",
                ),
            ]
        },
    )
    facts["zone_id"] = zone_id
    facts["health_check_id"] = check
    return facts


def _quiet(what: str, fn: Any, *args: Any, **kwargs: Any) -> None:
    try:
        fn(*args, **kwargs)
    except Exception as exc:
        log.debug("demo teardown: %s: %s", what, exc)


def destroy_demo(settings: AwsSettings) -> None:
    """Remove every ``drillbook-demo*`` resource (and instances restored from them)."""
    for region in (REGION_A, REGION_B):
        asg = client(settings, "autoscaling", region)
        for group in asg.describe_auto_scaling_groups()["AutoScalingGroups"]:
            if group["AutoScalingGroupName"].startswith(PREFIX):
                _quiet(
                    "asg",
                    asg.delete_auto_scaling_group,
                    AutoScalingGroupName=group["AutoScalingGroupName"],
                    ForceDelete=True,
                )
        ec2 = client(settings, "ec2", region)
        reservations = ec2.describe_instances(
            Filters=[{"Name": "tag:drillbook:chaos", "Values": ["allowed"]}]
        )["Reservations"]
        ids = [
            i["InstanceId"]
            for r in reservations
            for i in r["Instances"]
            if i["State"]["Name"] != "terminated"
        ]
        if ids:
            _quiet("instances", ec2.terminate_instances, InstanceIds=ids)
        _quiet("launch template", ec2.delete_launch_template, LaunchTemplateName=f"{PREFIX}-lt")
        rds = client(settings, "rds", region)
        instances = rds.describe_db_instances()["DBInstances"]
        # Replicas first: a source with replicas cannot be deleted.
        instances.sort(key=lambda i: not i.get("ReadReplicaSourceDBInstanceIdentifier"))
        for inst in instances:
            if inst["DBInstanceIdentifier"].startswith(PREFIX):
                _quiet(
                    "rds",
                    rds.delete_db_instance,
                    DBInstanceIdentifier=inst["DBInstanceIdentifier"],
                    SkipFinalSnapshot=True,
                )
        for snap in rds.describe_db_snapshots(SnapshotType="manual")["DBSnapshots"]:
            if snap["DBSnapshotIdentifier"].startswith(PREFIX):
                _quiet(
                    "snapshot",
                    rds.delete_db_snapshot,
                    DBSnapshotIdentifier=snap["DBSnapshotIdentifier"],
                )
    r53 = client(settings, "route53", REGION_A)
    for zone in r53.list_hosted_zones()["HostedZones"]:
        if zone["Name"] != ZONE:
            continue
        zone_id = zone["Id"]
        sets = r53.list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]
        changes = [
            {"Action": "DELETE", "ResourceRecordSet": s}
            for s in sets
            if s["Type"] not in ("NS", "SOA")
        ]
        if changes:
            _quiet(
                "records",
                r53.change_resource_record_sets,
                HostedZoneId=zone_id,
                ChangeBatch={"Changes": changes},
            )
        _quiet("zone", r53.delete_hosted_zone, Id=zone_id)
    for hc in r53.list_health_checks()["HealthChecks"]:
        if str(hc.get("CallerReference", "")).startswith(PREFIX):
            _quiet("health check", r53.delete_health_check, HealthCheckId=hc["Id"])


@contextmanager
def prepare(ctx: Context) -> Iterator[None]:
    """Create the demo estate for a sandbox run on moto; remove it on exit."""
    settings = AwsSettings.from_mapping(ctx.settings)
    if not settings.sandbox:
        yield  # a real staging account: its resources exist already
        return
    if not settings.endpoint_url:
        raise BackendUnavailable(
            "backends.aws.sandbox needs DRILLBOOK_AWS_ENDPOINT_URL (moto); "
            "never real AWS implicitly"
        )
    destroy_demo(settings)  # leftovers of a killed session
    facts = create_demo(settings)
    log.info("aws sandbox ready at %s: %s", settings.endpoint_url, facts)
    player = ControlPlanePlayer(settings, dict(ctx.settings.get("sandbox_timings") or {}))
    add_client_hook(player.hook)
    try:
        yield
    finally:
        remove_client_hook(player.hook)
        player.stop()
        destroy_demo(settings)

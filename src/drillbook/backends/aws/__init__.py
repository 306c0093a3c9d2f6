"""The aws backend: RDS, EC2/Auto Scaling, Route 53, ELBv2 and FIS faults, recovery steps and
probes, behind an account guard.

``register`` only records names, lazy factories and schemas; the fault, probe and step modules are
imported when a drill first builds one, and boto3 when a client is first made (:mod:`.clients`), so
``import drillbook`` and a drill on another backend stay fast and work without boto3 installed.
See docs/aws.md for settings, IAM permissions and what moto fakes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drillbook.backends.base import Registry, lazy

__all__ = ["available", "register"]

_COUNT = {
    "count": {"type": "integer", "minimum": 1},
    "percent": {"type": "number", "exclusiveMinimum": 0, "maximum": 100},
}
_INSTANCES = {
    "type": "object",
    "properties": {
        "ids": {"type": "array", "items": {"type": "string"}},
        "tags": {"type": "object", "additionalProperties": {"type": "string"}},
        "region": {"type": "string"},
        "force": {"type": "boolean"},
        **_COUNT,
    },
}
_REPOINT = {
    "type": "object",
    "properties": {
        "zone": {"type": "string"},
        "record": {"type": "string"},
        "ttl": {"type": "integer"},
    },
    "required": ["zone", "record"],
}


def available(settings: Mapping[str, Any]) -> str | None:
    """None when an endpoint answers or credentials are configured; else the one-line reason."""
    import socket
    from urllib.parse import urlsplit

    from .config import ENDPOINT_ENV, AwsSettings

    s = AwsSettings.from_mapping(settings)
    if s.endpoint_url:
        parts = urlsplit(s.endpoint_url)
        host = parts.hostname or "127.0.0.1"
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            with socket.create_connection((host, port), timeout=1.0):
                return None
        except OSError as exc:
            return f"AWS endpoint {s.endpoint_url} does not answer ({exc.strerror or exc})"
    if s.sandbox:
        return (
            f'sandbox AWS targets need {ENDPOINT_ENV} (moto: eval "$(scripts/testenv up aws)"); '
            "never real AWS implicitly"
        )
    if not s.has_credentials():
        return f"no {ENDPOINT_ENV} and no AWS credentials configured"
    return None


def register(registry: Registry) -> None:
    """Name every fault, probe and step; the modules behind them load when a drill builds one."""
    registry.add_backend(
        "aws",
        available,
        "AWS via boto3 (moto in tests): RDS, EC2/ASG, Route 53, ELBv2, FIS",
        prepare=lazy("drillbook.backends.aws.sandbox:prepare"),
    )
    fault = registry.add_fault
    fault(
        "ec2.stop",
        "aws",
        lazy("drillbook.backends.aws.ec2:Ec2Stop"),
        help="stop instances by id/tag; revert starts them",
        params_schema=_INSTANCES,
    )
    fault(
        "ec2.terminate",
        "aws",
        lazy("drillbook.backends.aws.ec2:Ec2Terminate"),
        help="terminate instances by id/tag (capped)",
        params_schema=_INSTANCES,
    )
    fault(
        "asg.suspend",
        "aws",
        lazy("drillbook.backends.aws.ec2:AsgSuspend"),
        help="suspend Auto Scaling processes; revert resumes them",
        params_schema={"type": "object", "properties": {"processes": {"type": "array"}}},
    )
    fault(
        "asg.terminate_instances",
        "aws",
        lazy("drillbook.backends.aws.ec2:AsgTerminateInstances"),
        help="terminate a share of a group's in-service instances (optionally one AZ)",
        params_schema={"type": "object", "properties": {"az": {"type": "string"}, **_COUNT}},
    )
    fault(
        "rds.stop",
        "aws",
        lazy("drillbook.backends.aws.rds:RdsStop"),
        help="stop an RDS instance; revert starts it",
    )
    fault(
        "rds.reboot_failover",
        "aws",
        lazy("drillbook.backends.aws.rds:RdsRebootFailover"),
        help="reboot a Multi-AZ instance with ForceFailover",
    )
    fault(
        "rds.failover_cluster",
        "aws",
        lazy("drillbook.backends.aws.rds:RdsFailoverCluster"),
        help="fail an Aurora cluster over; revert fails back (failback: false to keep)",
        params_schema={
            "type": "object",
            "properties": {"target_instance": {"type": "string"}, "failback": {"type": "boolean"}},
        },
    )
    fault(
        "route53.fail_health_check",
        "aws",
        lazy("drillbook.backends.aws.route53:Route53FailHealthCheck"),
        help="invert a Route 53 health check; revert restores it",
    )
    fault(
        "route53.failover",
        "aws",
        lazy("drillbook.backends.aws.route53:Route53Failover"),
        help="make the SECONDARY failover record PRIMARY; revert restores the roles",
    )
    fault(
        "elbv2.deregister_targets",
        "aws",
        lazy("drillbook.backends.aws.elbv2:Elbv2DeregisterTargets"),
        help="deregister targets from a target group; revert re-registers them",
    )
    fault(
        "fis.start_experiment",
        "aws",
        lazy("drillbook.backends.aws.fis:FisStartExperiment"),
        help="start an AWS FIS experiment template; revert stops it",
    )
    fault(
        "aws.region_loss",
        "aws",
        lazy("drillbook.backends.aws.region:RegionLoss"),
        help="stop a region's tagged instances and primary DB, fail its health check",
    )

    step = registry.add_recovery
    step(
        "rds.restore_snapshot",
        "aws",
        lazy("drillbook.backends.aws.rds:RdsRestoreSnapshot"),
        help="restore the newest (or a named) snapshot into a new instance; repoint a CNAME",
        params_schema={
            "type": "object",
            "properties": {
                "snapshot": {"type": "string"},
                "snapshot_type": {"enum": ["automated", "manual"]},
                "new_instance": {"type": "string"},
                "repoint": _REPOINT,
            },
        },
    )
    step(
        "rds.restore_pitr",
        "aws",
        lazy("drillbook.backends.aws.rds:RdsRestorePitr"),
        help="restore to a point in time into a new instance; repoint a CNAME",
        params_schema={
            "type": "object",
            "properties": {
                "restore_time": {"type": "string"},
                "new_instance": {"type": "string"},
                "repoint": _REPOINT,
            },
        },
    )
    step(
        "rds.promote_replica",
        "aws",
        lazy("drillbook.backends.aws.rds:RdsPromoteReplica"),
        help="promote a (cross-region) read replica; repoint a CNAME",
        params_schema={
            "type": "object",
            "properties": {
                "repoint": _REPOINT,
                "wait_for": {"enum": ["standalone", "available"]},
            },
        },
    )
    step(
        "route53.failover",
        "aws",
        lazy("drillbook.backends.aws.route53:Route53FailoverStep"),
        help="make a failover record PRIMARY (to: SetIdentifier)",
    )
    step(
        "asg.resume",
        "aws",
        lazy("drillbook.backends.aws.ec2:AsgResume"),
        help="resume an Auto Scaling group's processes",
    )

    probe = registry.add_probe
    probe(
        "aws.rds_available",
        "aws",
        lazy("drillbook.backends.aws.probes:RdsAvailable"),
        help="an RDS instance (or the one a CNAME points at) is available [and writable]",
    )
    probe(
        "aws.ec2_running",
        "aws",
        lazy("drillbook.backends.aws.probes:Ec2Running"),
        help="at least min instances running",
    )
    probe(
        "aws.asg_in_service",
        "aws",
        lazy("drillbook.backends.aws.probes:AsgInService"),
        help="at least min healthy in-service instances",
    )
    probe(
        "aws.route53_resolves",
        "aws",
        lazy("drillbook.backends.aws.probes:Route53Resolves"),
        help="a record answers the expected value [and its health check is healthy]",
    )
    probe(
        "aws.health_check",
        "aws",
        lazy("drillbook.backends.aws.probes:HealthCheck"),
        help="a Route 53 health check is healthy",
    )

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

from drillbook.backends.base import Registry, lazy, params
from drillbook.backends.selection import SELECTION_PARAMS

__all__ = ["available", "register"]

#: Every aws fault, step and probe may name the region it acts in (default: the target's).
_REGION = {"region": {"type": "string", "minLength": 1}}
_NAME = {"type": "string", "minLength": 1}
_TAGS = {"type": "object", "additionalProperties": {"type": "string"}}
#: An RDS instance: by id (``instance`` or ``id``) or by tags; the target usually names it.
_DB = {"instance": _NAME, "id": _NAME, "tags": _TAGS, **_REGION}
_REPOINT = {
    "type": "object",
    "properties": {
        "zone": _NAME,
        "record": _NAME,
        "ttl": {"type": "integer", "minimum": 0, "maximum": 2147483647},
    },
    "required": ["zone", "record"],
    "additionalProperties": False,
}
#: The new instance a restore creates: its name, its class and subnet group (default: the old
#: instance's), and the CNAME to point at it.
_RESTORE = {
    **_DB,
    "new_instance": _NAME,
    "DBInstanceClass": _NAME,
    "DBSubnetGroupName": _NAME,
    "repoint": _REPOINT,
}
_HEALTH_CHECK = {"health_check_id": _NAME, "health_check_name": _NAME, "id": _NAME}
_RECORD = {"zone": _NAME, "record": _NAME, "record_type": _NAME}


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
    registry.add_fault(
        "ec2.stop",
        "aws",
        lazy("drillbook.backends.aws.ec2:Ec2Stop"),
        help="stop instances by id/tag; revert starts them",
        params_schema=params(
            {
                "ids": {"type": "array", "items": _NAME},
                "id": _NAME,
                "tags": _TAGS,
                "force": {"type": "boolean"},
                **_REGION,
                **SELECTION_PARAMS,
            }
        ),
    )
    registry.add_fault(
        "ec2.terminate",
        "aws",
        lazy("drillbook.backends.aws.ec2:Ec2Terminate"),
        help="terminate instances by id/tag (capped)",
        params_schema=params(
            {
                "ids": {"type": "array", "items": _NAME},
                "id": _NAME,
                "tags": _TAGS,
                **_REGION,
                **SELECTION_PARAMS,
            }
        ),
    )
    registry.add_fault(
        "asg.suspend",
        "aws",
        lazy("drillbook.backends.aws.ec2:AsgSuspend"),
        help="suspend Auto Scaling processes; revert resumes them",
        params_schema=params(
            {
                "group": _NAME,
                "id": _NAME,
                "processes": {"type": "array", "items": _NAME, "minItems": 1},
                **_REGION,
            }
        ),
    )
    registry.add_fault(
        "asg.terminate_instances",
        "aws",
        lazy("drillbook.backends.aws.ec2:AsgTerminateInstances"),
        help="terminate a share of a group's in-service instances (optionally one AZ)",
        params_schema=params(
            {"group": _NAME, "id": _NAME, "az": _NAME, **_REGION, **SELECTION_PARAMS}
        ),
    )
    registry.add_fault(
        "rds.stop",
        "aws",
        lazy("drillbook.backends.aws.rds:RdsStop"),
        help="stop an RDS instance; revert starts it",
        params_schema=params(_DB),
    )
    registry.add_fault(
        "rds.reboot_failover",
        "aws",
        lazy("drillbook.backends.aws.rds:RdsRebootFailover"),
        help="reboot a Multi-AZ instance with ForceFailover",
        params_schema=params(_DB),
    )
    registry.add_fault(
        "rds.failover_cluster",
        "aws",
        lazy("drillbook.backends.aws.rds:RdsFailoverCluster"),
        help="fail an Aurora cluster over; revert fails back (failback: false to keep)",
        params_schema=params(
            {
                "cluster": _NAME,
                "id": _NAME,
                "target_instance": _NAME,
                "failback": {"type": "boolean"},
                **_REGION,
            }
        ),
    )
    registry.add_fault(
        "route53.fail_health_check",
        "aws",
        lazy("drillbook.backends.aws.route53:Route53FailHealthCheck"),
        help="invert a Route 53 health check; revert restores it",
        params_schema=params({**_HEALTH_CHECK, **_REGION}),
    )
    registry.add_fault(
        "route53.failover",
        "aws",
        lazy("drillbook.backends.aws.route53:Route53Failover"),
        help="make the SECONDARY failover record PRIMARY; revert restores the roles",
        params_schema=params({**_RECORD, "to": _NAME, **_REGION}),
    )
    registry.add_fault(
        "elbv2.deregister_targets",
        "aws",
        lazy("drillbook.backends.aws.elbv2:Elbv2DeregisterTargets"),
        help="deregister targets from a target group; revert re-registers them",
        params_schema=params(
            {
                "arn": _NAME,
                "name": _NAME,
                "ids": {"type": "array", "items": _NAME},
                **_REGION,
                **SELECTION_PARAMS,
            }
        ),
    )
    registry.add_fault(
        "fis.start_experiment",
        "aws",
        lazy("drillbook.backends.aws.fis:FisStartExperiment"),
        help="start an AWS FIS experiment template; revert stops it",
        params_schema=params({"template_id": _NAME, "id": _NAME, **_REGION}),
    )
    registry.add_fault(
        "aws.region_loss",
        "aws",
        lazy("drillbook.backends.aws.region:RegionLoss"),
        help="stop a region's tagged instances and primary DB, fail its health check",
        params_schema=params(
            {
                "instance_tags": _TAGS,
                "db_instance": _NAME,
                "health_check_id": _NAME,
                "health_check_name": _NAME,
                **_REGION,
                **SELECTION_PARAMS,
            }
        ),
    )

    registry.add_recovery(
        "rds.restore_snapshot",
        "aws",
        lazy("drillbook.backends.aws.rds:RdsRestoreSnapshot"),
        help="restore the newest (or a named) snapshot into a new instance; repoint a CNAME",
        params_schema=params(
            {"snapshot": _NAME, "snapshot_type": {"enum": ["automated", "manual"]}, **_RESTORE}
        ),
    )
    registry.add_recovery(
        "rds.restore_pitr",
        "aws",
        lazy("drillbook.backends.aws.rds:RdsRestorePitr"),
        help="restore to a point in time into a new instance; repoint a CNAME",
        params_schema=params({"restore_time": _NAME, **_RESTORE}),
    )
    registry.add_recovery(
        "rds.promote_replica",
        "aws",
        lazy("drillbook.backends.aws.rds:RdsPromoteReplica"),
        help="promote a (cross-region) read replica; repoint a CNAME",
        params_schema=params(
            {"repoint": _REPOINT, "wait_for": {"enum": ["standalone", "available"]}, **_DB}
        ),
    )
    registry.add_recovery(
        "route53.failover",
        "aws",
        lazy("drillbook.backends.aws.route53:Route53FailoverStep"),
        help="make a failover record PRIMARY (to: SetIdentifier)",
        params_schema=params({**_RECORD, "to": _NAME, **_REGION}),
    )
    registry.add_recovery(
        "asg.resume",
        "aws",
        lazy("drillbook.backends.aws.ec2:AsgResume"),
        help="resume an Auto Scaling group's processes",
        params_schema=params(
            {
                "group": _NAME,
                "id": _NAME,
                "processes": {"type": "array", "items": _NAME, "minItems": 1},
                **_REGION,
            }
        ),
    )

    registry.add_probe(
        "aws.rds_available",
        "aws",
        lazy("drillbook.backends.aws.probes:RdsAvailable"),
        help="an RDS instance (or the one a CNAME points at) is available [and writable]",
        params_schema=params(
            {
                **_DB,
                "zone": _NAME,
                "record": _NAME,
                "writable": {"type": "boolean"},
                "connect": {"type": "boolean"},
            }
        ),
    )
    registry.add_probe(
        "aws.ec2_running",
        "aws",
        lazy("drillbook.backends.aws.probes:Ec2Running"),
        help="at least min instances running",
        params_schema=params(
            {
                "ids": {"type": "array", "items": _NAME},
                "id": _NAME,
                "tags": _TAGS,
                "min": {"type": "integer", "minimum": 0},
                **_REGION,
            }
        ),
    )
    registry.add_probe(
        "aws.asg_in_service",
        "aws",
        lazy("drillbook.backends.aws.probes:AsgInService"),
        help="at least min healthy in-service instances",
        params_schema=params(
            {"group": _NAME, "id": _NAME, "min": {"type": "integer", "minimum": 0}, **_REGION}
        ),
    )
    registry.add_probe(
        "aws.route53_resolves",
        "aws",
        lazy("drillbook.backends.aws.probes:Route53Resolves"),
        help="a record answers the expected value [and its health check is healthy]",
        params_schema=params(
            {
                **_RECORD,
                "expect": {"oneOf": [_NAME, {"type": "array", "items": _NAME, "minItems": 1}]},
                "healthy": {"type": "boolean"},
                **_REGION,
            }
        ),
    )
    registry.add_probe(
        "aws.health_check",
        "aws",
        lazy("drillbook.backends.aws.probes:HealthCheck"),
        help="a Route 53 health check is healthy",
        params_schema=params({**_HEALTH_CHECK, **_REGION}),
    )

"""Read-only health checks against AWS APIs. They never raise: ``safe_check`` turns errors into
not-ok results, and each probe says in ``detail`` what it saw."""

from __future__ import annotations

import contextlib
import socket
from typing import Any

from drillbook.backends.base import Context
from drillbook.clock import get_clock
from drillbook.model import ProbeResult

from .common import AwsProbe
from .ec2 import describe_instances
from .rds import describe_instance
from .route53 import (
    ROUTE53_REGION,
    find_zone_id,
    health_check_healthy,
    health_check_id,
    resolve_answer,
)

__all__ = [
    "AsgInService",
    "Ec2Running",
    "HealthCheck",
    "RdsAvailable",
    "Route53Resolves",
]


class RdsAvailable(AwsProbe):
    """An instance (``id``, or the one a CNAME ``record`` in ``zone`` points at) is available;
    with ``writable: true`` it must not be a read replica; with ``connect: true`` its endpoint
    must accept a TCP connection."""

    warm = (("rds", None), ("route53", ROUTE53_REGION))

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        if self.tparam("record"):  # the CNAME may point into any allowed region
            for region in self.settings.allowed_regions:
                with contextlib.suppress(Exception):
                    self.fast_client("rds", region)

    def _via_record(self) -> tuple[str, str] | None:
        record = self.tparam("record")
        if not record:
            return None
        r53 = self.fast_client("route53", ROUTE53_REGION)
        zone_id = find_zone_id(r53, str(self.require("zone")))
        answer = resolve_answer(r53, zone_id, str(record), "CNAME").values
        if not answer:
            return None
        address = answer[0]
        # moto and RDS name endpoints <id>.<hash>.<region>.rds.amazonaws.com
        parts = address.split(".")
        region = parts[2] if len(parts) > 3 else self.region()
        return parts[0], region

    def check(self) -> ProbeResult:
        start = get_clock().monotonic()
        region = self.region()
        via = None
        if self.tparam("record"):
            via = self._via_record()
            if via is None:
                return ProbeResult(
                    False, get_clock().monotonic() - start, f"{self.tparam('record')}: no answer"
                )
            identifier, region = via
        else:
            identifier = str(self.tparam("instance") or self.require("id"))
        inst = describe_instance(self.fast_client("rds", region), identifier)
        latency = get_clock().monotonic() - start
        if inst is None:
            return ProbeResult(False, latency, f"{identifier}: not found in {region}")
        status = str(inst.get("DBInstanceStatus"))
        replica_of = inst.get("ReadReplicaSourceDBInstanceIdentifier")
        where = f"{identifier} ({region})" + (f" via {self.tparam('record')}" if via else "")
        if status != "available":
            return ProbeResult(False, latency, f"{where}: {status}", status)
        if self.tparam("writable") and replica_of:
            return ProbeResult(False, latency, f"{where}: read replica of {replica_of}", status)
        if self.tparam("connect"):
            # "Answers": a TCP connect to the endpoint (real accounts; moto has no endpoints).
            endpoint = inst.get("Endpoint") or {}
            address, port = str(endpoint.get("Address", "")), int(endpoint.get("Port", 5432))
            try:
                with socket.create_connection((address, port), timeout=2.0):
                    pass
            except OSError as exc:
                latency = get_clock().monotonic() - start
                return ProbeResult(False, latency, f"{where}: {address}:{port}: {exc}", status)
            latency = get_clock().monotonic() - start
        return ProbeResult(True, latency, f"{where}: available", status)


class Ec2Running(AwsProbe):
    """At least ``min`` (default: all matched) instances by ``ids``/``tags`` are running."""

    warm = (("ec2", None),)

    def check(self) -> ProbeResult:
        start = get_clock().monotonic()
        ids = self.tparam("ids") or ([self.tparam("id")] if self.tparam("id") else None)
        tags = dict(self.tparam("tags") or {})
        found = describe_instances(self.fast_client("ec2"), ids, tags)
        found = [i for i in found if i["State"]["Name"] != "terminated"]
        running = [i["InstanceId"] for i in found if i["State"]["Name"] == "running"]
        want = int(self.tparam("min", len(found) or 1))
        ok = len(running) >= want and want > 0
        detail = f"{len(running)}/{len(found)} running (need {want}) in {self.region()}"
        return ProbeResult(ok, get_clock().monotonic() - start, detail, len(running))


class AsgInService(AwsProbe):
    """At least ``min`` (default: desired capacity) healthy in-service instances whose EC2 state
    is running."""

    warm = (("autoscaling", None), ("ec2", None))

    def check(self) -> ProbeResult:
        start = get_clock().monotonic()
        name = str(self.tparam("group") or self.require("id"))
        groups = self.fast_client("autoscaling").describe_auto_scaling_groups(
            AutoScalingGroupNames=[name]
        )["AutoScalingGroups"]
        if not groups:
            return ProbeResult(False, get_clock().monotonic() - start, f"no group {name}")
        group: dict[str, Any] = groups[0]
        members = [
            i["InstanceId"]
            for i in group.get("Instances", [])
            if i.get("LifecycleState") == "InService" and i.get("HealthStatus") == "Healthy"
        ]
        running = 0
        if members:
            found = describe_instances(self.fast_client("ec2"), members)
            running = sum(1 for i in found if i["State"]["Name"] == "running")
        want = int(self.tparam("min", group.get("DesiredCapacity", 1)))
        detail = f"{name}: {running} healthy in service (need {want})"
        return ProbeResult(running >= want, get_clock().monotonic() - start, detail, running)


class Route53Resolves(AwsProbe):
    """The record answers ``expect`` (a value or list), or with ``healthy: true`` an answer whose
    record's health check is healthy."""

    warm = (("route53", ROUTE53_REGION),)

    def check(self) -> ProbeResult:
        start = get_clock().monotonic()
        r53 = self.fast_client("route53", ROUTE53_REGION)
        zone_id = find_zone_id(r53, str(self.require("zone")))
        name = str(self.require("record"))
        found = resolve_answer(r53, zone_id, name, str(self.tparam("record_type", "CNAME")))
        answer, how = found.values, found.how
        latency = get_clock().monotonic() - start
        expect = self.tparam("expect")
        if expect is not None:
            wanted = {
                str(e).rstrip(".") for e in (expect if isinstance(expect, list) else [expect])
            }
            ok = bool(answer) and set(answer) <= wanted
        else:
            ok = bool(answer)
        if ok and self.tparam("healthy") and found.healthy is False:
            ok = False
        return ProbeResult(
            ok, latency, f"{name} -> {', '.join(answer) or 'nothing'} ({how})", answer
        )


class HealthCheck(AwsProbe):
    """Route 53's view of a health check (``id``), Inverted/Disabled applied. moto's checkers
    always report success: see docs/aws.md."""

    warm = (("route53", ROUTE53_REGION),)

    def check(self) -> ProbeResult:
        start = get_clock().monotonic()
        check_id = health_check_id(self)
        ok, why = health_check_healthy(self.fast_client("route53", ROUTE53_REGION), check_id)
        return ProbeResult(ok, get_clock().monotonic() - start, f"health check {check_id}: {why}")

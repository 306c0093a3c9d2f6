"""Route 53: zone lookup, CNAME repointing, health-check and failover-record faults, and the
answer a failover record set gives.

Route 53 is global; its API lives in us-east-1 whatever region the targets are in. moto has no
TestDNSAnswer, so :func:`resolve_answer` asks TestDNSAnswer first and, where the API is not
modelled, evaluates the record sets the way Route 53 documents it (PRIMARY while its health check
is healthy, else SECONDARY; a disabled check counts as healthy; an inverted one flips).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from drillbook.backends.base import Context, Selection
from drillbook.errors import ConfigError

from .clients import is_not_implemented
from .common import AwsFault, AwsMixin, AwsStep

__all__ = [
    "ROUTE53_REGION",
    "Answer",
    "Route53FailHealthCheck",
    "Route53Failover",
    "Route53FailoverStep",
    "find_health_check",
    "find_zone_id",
    "health_check_healthy",
    "health_check_id",
    "record_sets",
    "resolve_answer",
    "upsert_cname",
]

ROUTE53_REGION = "us-east-1"


def _fqdn(name: str) -> str:
    return name if name.endswith(".") else name + "."


def find_zone_id(r53: Any, zone: str) -> str:
    """A hosted zone id from an id (``Z...`` or ``/hostedzone/Z...``) or a zone name."""
    if zone.startswith("/hostedzone/"):
        return zone.rsplit("/", 1)[1]
    if "." not in zone:
        return zone
    for hz in r53.list_hosted_zones_by_name(DNSName=_fqdn(zone), MaxItems="10")["HostedZones"]:
        if hz["Name"] == _fqdn(zone):
            return str(hz["Id"]).rsplit("/", 1)[1]
    raise ConfigError(f"no hosted zone named {zone}", field="zone")


def record_sets(r53: Any, zone_id: str, name: str, rtype: str) -> list[dict[str, Any]]:
    """Every record set with this name and type (failover pairs come back as two)."""
    out: list[dict[str, Any]] = []
    for page in r53.get_paginator("list_resource_record_sets").paginate(
        HostedZoneId=zone_id, StartRecordName=_fqdn(name), StartRecordType=rtype
    ):
        for rrs in page["ResourceRecordSets"]:
            if rrs["Name"].rstrip(".").lower() == name.rstrip(".").lower() and rrs["Type"] == rtype:
                out.append(dict(rrs))
        if (
            out
            and page["ResourceRecordSets"]
            and page["ResourceRecordSets"][-1]["Name"] != _fqdn(name)
        ):
            break
    return out


def health_check_healthy(r53: Any, check_id: str) -> tuple[bool, str]:
    """Route 53's own view of a health check, with Disabled and Inverted applied."""
    config = r53.get_health_check(HealthCheckId=check_id)["HealthCheck"]["HealthCheckConfig"]
    inverted = bool(config.get("Inverted"))
    if config.get("Disabled"):
        # AWS: a disabled check is considered healthy (unhealthy if also inverted).
        return (not inverted), "disabled" + (", inverted" if inverted else "")
    observations = r53.get_health_check_status(HealthCheckId=check_id)["HealthCheckObservations"]
    passing = sum(
        1
        for o in observations
        if str(o.get("StatusReport", {}).get("Status", "")).startswith("Success")
    )
    # Route 53 calls an endpoint healthy when more than 18% of checkers report it healthy.
    raw_ok = bool(observations) and passing / len(observations) > 0.18
    ok = raw_ok != inverted
    return ok, f"{passing}/{len(observations)} checkers ok" + (", inverted" if inverted else "")


def _values(rrs: Mapping[str, Any]) -> list[str]:
    if "AliasTarget" in rrs:
        return [str(rrs["AliasTarget"]["DNSName"]).rstrip(".")]
    return [str(r["Value"]).rstrip(".") for r in rrs.get("ResourceRecords", [])]


@dataclass(frozen=True)
class Answer:
    """What a record answers, how that was found, and whether the answering record is healthy
    (``None``: not known, e.g. from TestDNSAnswer or a record without a health check)."""

    values: list[str]
    how: str
    healthy: bool | None = None


def _set_health(r53: Any, rrs: Mapping[str, Any]) -> tuple[bool | None, str]:
    check = rrs.get("HealthCheckId")
    if not check:
        return None, "no health check"
    return health_check_healthy(r53, str(check))


def resolve_answer(r53: Any, zone_id: str, name: str, rtype: str) -> Answer:
    """What the record answers now: TestDNSAnswer where the API has it, else evaluated."""
    try:
        resp = r53.test_dns_answer(HostedZoneId=zone_id, RecordName=_fqdn(name), RecordType=rtype)
        return Answer([str(v).rstrip(".") for v in resp.get("RecordData", [])], "TestDNSAnswer")
    except Exception as exc:
        if not is_not_implemented(exc):
            raise
    sets = record_sets(r53, zone_id, name, rtype)
    if not sets:
        return Answer([], "evaluated: no record")
    by_role = {str(s.get("Failover", "")): s for s in sets}
    if "PRIMARY" in by_role:
        primary = by_role["PRIMARY"]
        ok, why = _set_health(r53, primary)
        if ok is not False or "SECONDARY" not in by_role:
            return Answer(
                _values(primary), f"evaluated: PRIMARY {primary['SetIdentifier']} ({why})", ok
            )
        secondary = by_role["SECONDARY"]
        sec_ok, sec_why = _set_health(r53, secondary)
        how = f"evaluated: SECONDARY {secondary['SetIdentifier']} ({sec_why}; PRIMARY: {why})"
        return Answer(_values(secondary), how, sec_ok)
    ok, why = _set_health(r53, sets[0])
    return Answer(_values(sets[0]), f"evaluated: simple record ({why})", ok)


def upsert_cname(mixin: AwsMixin, spec: Mapping[str, Any], value: str) -> str:
    """Point ``spec.record`` in ``spec.zone`` at ``value`` (a simple CNAME); returns the name."""
    zone = spec.get("zone")
    record = spec.get("record")
    if not zone or not record:
        raise ConfigError("repoint needs zone and record", field="repoint")
    r53 = mixin.client("route53", ROUTE53_REGION)
    zone_id = find_zone_id(r53, str(zone))
    r53.change_resource_record_sets(
        HostedZoneId=zone_id,
        ChangeBatch={
            "Comment": "drillbook recovery",
            "Changes": [
                {
                    "Action": "UPSERT",
                    "ResourceRecordSet": {
                        "Name": _fqdn(str(record)),
                        "Type": "CNAME",
                        "TTL": int(spec.get("ttl", 60)),
                        "ResourceRecords": [{"Value": value}],
                    },
                }
            ],
        },
    )
    return str(record)


class Route53FailHealthCheck(AwsFault):
    """Invert a health check so Route 53 sees it unhealthy; revert restores its old setting."""

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self._inverted_before: bool | None = None
        self._check_id: str | None = None

    def check_id(self) -> str:
        if self._check_id is None:
            self._check_id = health_check_id(self)
        return self._check_id

    def r53(self) -> Any:
        return self.client("route53", ROUTE53_REGION)

    def resolve(self) -> Selection:
        tags = self.r53().list_tags_for_resource(
            ResourceType="healthcheck", ResourceId=self.check_id()
        )
        found = {t["Key"]: t["Value"] for t in tags["ResourceTagSet"].get("Tags", [])}
        self.check_opt_in(f"health check {self.check_id()}", found)
        return Selection(chosen=(self.check_id(),), candidates=1)

    def regions(self) -> set[str]:
        return set()  # global service: the guard checks the account only

    def plan(self) -> str:
        return f"invert Route 53 health check {self.check_id()} (reported unhealthy)"

    def inverted(self) -> bool:
        config = self.r53().get_health_check(HealthCheckId=self.check_id())["HealthCheck"]
        return bool(config["HealthCheckConfig"].get("Inverted"))

    def inject(self) -> None:
        self.guard()
        self._inverted_before = self.inverted()
        self.r53().update_health_check(
            HealthCheckId=self.check_id(), Inverted=not self._inverted_before
        )

    def verify_injected(self) -> bool:
        return not health_check_healthy(self.r53(), self.check_id())[0]

    def revert(self) -> None:
        if self._inverted_before is None:
            return
        self.guard()
        if self.inverted() != self._inverted_before:
            self.r53().update_health_check(
                HealthCheckId=self.check_id(), Inverted=self._inverted_before
            )

    def verify_reverted(self) -> bool:
        return self._inverted_before is None or self.inverted() == self._inverted_before

    def state(self) -> Mapping[str, Any]:
        return {"health_check_id": self._check_id, "inverted_before": self._inverted_before}

    def load_state(self, state: Mapping[str, Any]) -> None:
        self._check_id = state.get("health_check_id") or None
        value = state.get("inverted_before")
        self._inverted_before = None if value is None else bool(value)


class _FailoverRecords(AwsMixin):
    """Shared: find a PRIMARY/SECONDARY pair and set which SetIdentifier is PRIMARY."""

    def where(self) -> tuple[Any, str, str, str]:
        r53 = self.client("route53", ROUTE53_REGION)
        zone_id = find_zone_id(r53, str(self.require("zone")))
        return r53, zone_id, str(self.require("record")), str(self.tparam("record_type", "CNAME"))

    def roles(self) -> dict[str, str]:
        r53, zone_id, name, rtype = self.where()
        return {
            str(s["SetIdentifier"]): str(s["Failover"])
            for s in record_sets(r53, zone_id, name, rtype)
            if s.get("Failover")
        }

    def make_primary(self, set_id: str) -> None:
        r53, zone_id, name, rtype = self.where()
        sets = [s for s in record_sets(r53, zone_id, name, rtype) if s.get("Failover")]
        if {s["SetIdentifier"] for s in sets} and set_id not in {s["SetIdentifier"] for s in sets}:
            raise ConfigError(
                f"{name} has no failover record with SetIdentifier {set_id}", field="to"
            )
        changes = []
        for rrs in sets:
            want = "PRIMARY" if rrs["SetIdentifier"] == set_id else "SECONDARY"
            if rrs["Failover"] != want:
                changes.append({"Action": "UPSERT", "ResourceRecordSet": {**rrs, "Failover": want}})
        if changes:
            r53.change_resource_record_sets(
                HostedZoneId=zone_id,
                ChangeBatch={"Comment": "drillbook failover", "Changes": changes},
            )

    def current_primary(self) -> str | None:
        for set_id, role in self.roles().items():
            if role == "PRIMARY":
                return set_id
        return None

    def default_to(self) -> str:
        explicit = self.ctx.param("to")
        if explicit:
            return str(explicit)
        for set_id, role in self.roles().items():
            if role == "SECONDARY":
                return set_id
        raise ConfigError("no SECONDARY failover record to fail over to", field="to")


class Route53Failover(_FailoverRecords, AwsFault):
    """Fault: make the SECONDARY record PRIMARY (traffic moves); revert restores the roles."""

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self._primary_before: str | None = None
        self._to: str | None = None

    def regions(self) -> set[str]:
        return set()  # global service: the guard checks the account only

    def plan(self) -> str:
        to = self.ctx.param("to") or "SECONDARY"
        return f"fail over {self.require('record')}: make {to} PRIMARY"

    def inject(self) -> None:
        self.guard()
        self._primary_before = self.current_primary()
        self._to = self.default_to()
        self.make_primary(self._to)

    def verify_injected(self) -> bool:
        return self.current_primary() == self._to

    def revert(self) -> None:
        if not self._primary_before:
            return
        self.guard()
        if self.current_primary() != self._primary_before:
            self.make_primary(self._primary_before)

    def verify_reverted(self) -> bool:
        return not self._primary_before or self.current_primary() == self._primary_before

    def state(self) -> Mapping[str, Any]:
        return {"primary_before": self._primary_before, "to": self._to}

    def load_state(self, state: Mapping[str, Any]) -> None:
        self._primary_before = state.get("primary_before")
        self._to = state.get("to")


class Route53FailoverStep(_FailoverRecords, AwsStep):
    """Recovery step: make ``to`` (default: the current SECONDARY) the PRIMARY record; idempotent
    when ``to`` is given."""

    def regions(self) -> set[str]:
        return set()  # global service: the guard checks the account only

    def run(self) -> str:
        self.guard()
        before = self.current_primary()
        to = self.default_to()
        self.make_primary(to)
        name = self.require("record")
        return f"{name}: PRIMARY {before} -> {to}"


def find_health_check(r53: Any, name: str) -> str:
    """A health check id by its ``Name`` tag (ids are generated, names are configured)."""
    ids: list[str] = []
    for page in r53.get_paginator("list_health_checks").paginate():
        ids.extend(str(hc["Id"]) for hc in page["HealthChecks"])
    for i in range(0, len(ids), 10):
        resp = r53.list_tags_for_resources(ResourceType="healthcheck", ResourceIds=ids[i : i + 10])
        for tag_set in resp["ResourceTagSets"]:
            tags = {t["Key"]: t["Value"] for t in tag_set.get("Tags", [])}
            if tags.get("Name") == name:
                return str(tag_set["ResourceId"])
    raise ConfigError(f"no Route 53 health check tagged Name={name}", field="health_check_name")


def health_check_id(mixin: AwsMixin) -> str:
    """``health_check_id``, ``id``, or the check tagged ``Name=health_check_name``."""
    explicit = mixin.tparam("health_check_id") or mixin.tparam("id")
    if explicit:
        return str(explicit)
    name = mixin.require("health_check_name")
    return find_health_check(mixin.client("route53", ROUTE53_REGION), str(name))

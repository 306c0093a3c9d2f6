"""RDS faults (stop, Multi-AZ reboot with failover, Aurora cluster failover) and recovery steps
(restore the newest or a named snapshot, restore to a point in time, promote a read replica).

Restores create a *new* instance, as a real recovery does, and then either repoint a Route 53
CNAME at it (``repoint: {zone, record}``) or report its endpoint. Every wait is
:func:`.poll.poll_until`, bounded by the drill's deadline.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from drillbook.backends.base import Context, Selection
from drillbook.errors import ConfigError, RecoveryError

from .common import AwsFault, AwsMixin, AwsStep, tag_dict
from .poll import PollTimeout, poll_until
from .route53 import upsert_cname

__all__ = [
    "RdsFailoverCluster",
    "RdsPromoteReplica",
    "RdsRebootFailover",
    "RdsRestorePitr",
    "RdsRestoreSnapshot",
    "RdsStop",
    "describe_instance",
]


def describe_instance(rds: Any, identifier: str) -> dict[str, Any] | None:
    try:
        found = rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"]
    except Exception as exc:
        if "NotFound" in type(exc).__name__ or "NotFound" in str(exc):
            return None
        raise
    return dict(found[0]) if found else None


class _RdsInstanceMixin(AwsMixin):
    _instance_id: str | None = None

    def instance_id(self) -> str:
        """``instance``/``id``, or the one instance whose tags match ``tags``."""
        if self._instance_id is None:
            explicit = self.tparam("instance") or self.tparam("id")
            if explicit:
                self._instance_id = str(explicit)
            elif self.tparam("tags"):
                self._instance_id = self._by_tags(
                    {str(k): str(v) for k, v in self.tparam("tags").items()}
                )
            else:
                raise ConfigError("an RDS action needs id or a tag selector", field="id")
        return self._instance_id

    def _by_tags(self, wanted: Mapping[str, str]) -> str:
        matches = []
        for page in self.client("rds").get_paginator("describe_db_instances").paginate():
            for inst in page.get("DBInstances", []):
                tags = tag_dict(inst.get("TagList"))
                if all(tags.get(k) == v for k, v in wanted.items()):
                    matches.append(str(inst["DBInstanceIdentifier"]))
        if len(matches) != 1:
            found = ", ".join(sorted(matches)) or "none"
            raise ConfigError(
                f"the tag selector must match exactly one RDS instance; matched {found}",
                field="tags",
            )
        return matches[0]

    def instance(self) -> dict[str, Any]:
        found = describe_instance(self.client("rds"), self.instance_id())
        if found is None:
            raise RecoveryError(f"no RDS instance {self.instance_id()} in {self.region()}")
        return found

    def check_instance_opt_in(self, inst: Mapping[str, Any]) -> None:
        self.check_opt_in(f"RDS instance {self.instance_id()}", tag_dict(inst.get("TagList")))


class _RdsInstanceFault(_RdsInstanceMixin, AwsFault):
    def resolve(self) -> Selection:
        self.check_instance_opt_in(self.instance())
        return Selection(chosen=(self.instance_id(),), candidates=1)

    def status(self) -> str:
        return str(self.instance().get("DBInstanceStatus", "unknown"))

    def state(self) -> Mapping[str, Any]:
        return {"region": self.region(), "instance": self.instance_id()}

    def load_state(self, state: Mapping[str, Any]) -> None:
        # The instance a tag selector chose then, not whatever it matches now.
        if state.get("instance"):
            self._instance_id = str(state["instance"])


class RdsStop(_RdsInstanceFault):
    """Stop an instance (the primary becomes unusable); revert starts it again."""

    def plan(self) -> str:
        return f"stop RDS instance {self.instance_id()} in {self.region()}"

    def inject(self) -> None:
        self.guard()
        self.check_instance_opt_in(self.instance())
        self.client("rds").stop_db_instance(DBInstanceIdentifier=self.instance_id())

    def verify_injected(self) -> bool:
        return self.status() in ("stopping", "stopped")

    def revert(self) -> None:
        self.guard()

        def settled() -> str | None:
            status = self.status()
            return None if status == "stopping" else status

        try:
            status = poll_until(
                self.ctx, settled, what="the instance to finish stopping", timeout_s=900
            )
        except PollTimeout as exc:
            raise self.fail(str(exc)) from exc
        if status == "stopped":
            self.client("rds").start_db_instance(DBInstanceIdentifier=self.instance_id())

    def verify_reverted(self) -> bool:
        return self.status() in ("starting", "available")


class RdsRebootFailover(_RdsInstanceFault):
    """Reboot a Multi-AZ instance with ForceFailover: the standby takes over (nothing to revert)."""

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self._accepted_status: str | None = None

    def preflight(self) -> None:
        super().preflight()
        if not self.instance().get("MultiAZ"):
            raise self.fail(
                f"{self.instance_id()} is not Multi-AZ: a forced failover needs a standby"
            )

    def plan(self) -> str:
        return f"reboot RDS instance {self.instance_id()} with ForceFailover in {self.region()}"

    def inject(self) -> None:
        self.guard()
        resp = self.client("rds").reboot_db_instance(
            DBInstanceIdentifier=self.instance_id(), ForceFailover=True
        )
        self._accepted_status = str(resp["DBInstance"].get("DBInstanceStatus", ""))

    def verify_injected(self) -> bool:
        # Real RDS shows "rebooting" for the failover; moto completes it at once, so the accepted
        # reboot request is the observable fact there.
        return self._accepted_status is not None or self.status() == "rebooting"

    def revert(self) -> None:
        """A failover is not undone: the new primary stays (fail back with another drill)."""


class RdsFailoverCluster(AwsFault):
    """Aurora: fail the cluster over to a reader; revert fails back to the original writer."""

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self._writer_before: str | None = None

    def cluster_id(self) -> str:
        return str(self.tparam("cluster") or self.require("id"))

    def cluster(self) -> dict[str, Any]:
        found = self.client("rds").describe_db_clusters(DBClusterIdentifier=self.cluster_id())
        return dict(found["DBClusters"][0])

    def writer(self) -> str | None:
        for member in self.cluster().get("DBClusterMembers", []):
            if member.get("IsClusterWriter"):
                return str(member["DBInstanceIdentifier"])
        return None

    def resolve(self) -> Selection:
        cluster = self.cluster()
        self.check_opt_in(f"RDS cluster {self.cluster_id()}", tag_dict(cluster.get("TagList")))
        return Selection(chosen=(self.cluster_id(),), candidates=1)

    def plan(self) -> str:
        to = self.ctx.param("target_instance")
        return f"fail over Aurora cluster {self.cluster_id()}" + (f" to {to}" if to else "")

    def inject(self) -> None:
        self.guard()
        self._writer_before = self.writer()
        kwargs: dict[str, Any] = {"DBClusterIdentifier": self.cluster_id()}
        if self.ctx.param("target_instance"):
            kwargs["TargetDBInstanceIdentifier"] = str(self.ctx.param("target_instance"))
        self.client("rds").failover_db_cluster(**kwargs)

    def verify_injected(self) -> bool:
        return self.writer() != self._writer_before

    def revert(self) -> None:
        if not self._writer_before or not self.ctx.param("failback", True):
            return
        self.guard()
        if self.writer() == self._writer_before:
            return
        self.client("rds").failover_db_cluster(
            DBClusterIdentifier=self.cluster_id(), TargetDBInstanceIdentifier=self._writer_before
        )

    def verify_reverted(self) -> bool:
        return not self.ctx.param("failback", True) or self.writer() == self._writer_before

    def state(self) -> Mapping[str, Any]:
        return {
            "region": self.region(),
            "cluster": self.cluster_id(),
            "writer_before": self._writer_before,
        }

    def load_state(self, state: Mapping[str, Any]) -> None:
        self._writer_before = state.get("writer_before")


class _RestoreStep(_RdsInstanceMixin, AwsStep):
    """Shared: name the new instance, wait until it is available, repoint or report."""

    def new_identifier(self) -> str:
        explicit = self.ctx.param("new_instance")
        if explicit:
            return str(explicit)
        stamp = self.ctx.clock.wall().strftime("%Y%m%d%H%M%S")
        return f"{self.instance_id()}-drill-{stamp}"[:63]

    def restore_kwargs(self, source: Mapping[str, Any]) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "Tags": [{"Key": "drillbook:restored-from", "Value": self.instance_id()}],
        }
        for key in ("DBInstanceClass", "DBSubnetGroupName"):
            value = self.ctx.param(key) or (
                source.get("DBSubnetGroup", {}).get("DBSubnetGroupName")
                if key == "DBSubnetGroupName"
                else source.get(key)
            )
            if value:
                kwargs[key] = value
        return kwargs

    def finish(self, new_id: str, what: str) -> str:
        rds = self.client("rds")

        def available() -> dict[str, Any] | None:
            inst = describe_instance(rds, new_id)
            return inst if inst and inst.get("DBInstanceStatus") == "available" else None

        try:
            inst = poll_until(
                self.ctx,
                available,
                what=f"{new_id} to be available",
                first_delay_s=1.0,
                max_delay_s=15.0,
            )
        except PollTimeout as exc:
            raise RecoveryError(str(exc)) from exc
        address = str(inst.get("Endpoint", {}).get("Address", ""))
        detail = f"{what} into {new_id} ({address})"
        repoint = self.ctx.param("repoint")
        if repoint:
            record = upsert_cname(self, dict(repoint), address)
            detail += f"; {record} -> {address}"
        return detail


class RdsRestoreSnapshot(_RestoreStep):
    """Restore the newest automated/manual snapshot (or ``snapshot``) into a new instance."""

    def pick_snapshot(self) -> dict[str, Any]:
        rds = self.client("rds")
        named = self.ctx.param("snapshot")
        if named:
            snaps = rds.describe_db_snapshots(DBSnapshotIdentifier=str(named))["DBSnapshots"]
        else:
            kinds = self.ctx.param("snapshot_type")  # automated | manual | None (both)
            snaps = []
            for page in rds.get_paginator("describe_db_snapshots").paginate(
                DBInstanceIdentifier=self.instance_id()
            ):
                snaps.extend(page.get("DBSnapshots", []))
            snaps = [
                s
                for s in snaps
                if s.get("Status") == "available" and (not kinds or s.get("SnapshotType") == kinds)
            ]
        if not snaps:
            raise RecoveryError(f"no available snapshot of {self.instance_id()} to restore")
        newest: dict[str, Any] = max(
            snaps, key=lambda s: s.get("SnapshotCreateTime") or datetime.min
        )
        return newest

    def run(self) -> str:
        self.guard()
        source = self.instance()
        snap = self.pick_snapshot()
        new_id = self.new_identifier()
        self.client("rds").restore_db_instance_from_db_snapshot(
            DBInstanceIdentifier=new_id,
            DBSnapshotIdentifier=snap["DBSnapshotIdentifier"],
            **self.restore_kwargs(source),
        )
        kind = snap.get("SnapshotType", "")
        return self.finish(new_id, f"restored {kind} snapshot {snap['DBSnapshotIdentifier']}")


class RdsRestorePitr(_RestoreStep):
    """Restore to a point in time (``restore_time`` ISO 8601, or the latest restorable time)."""

    def run(self) -> str:
        self.guard()
        source = self.instance()
        new_id = self.new_identifier()
        kwargs = self.restore_kwargs(source)
        when = self.ctx.param("restore_time")
        if when:
            kwargs["RestoreTime"] = datetime.fromisoformat(str(when).replace("Z", "+00:00"))
        else:
            kwargs["UseLatestRestorableTime"] = True
        self.client("rds").restore_db_instance_to_point_in_time(
            SourceDBInstanceIdentifier=self.instance_id(),
            TargetDBInstanceIdentifier=new_id,
            **kwargs,
        )
        return self.finish(
            new_id, f"restored {self.instance_id()} to {when or 'latest restorable time'}"
        )


class RdsPromoteReplica(_RdsInstanceMixin, AwsStep):
    """Promote a (cross-region) read replica to a standalone primary; optionally repoint a CNAME."""

    def run(self) -> str:
        self.guard()
        inst = self.instance()
        rds = self.client("rds")
        if inst.get("ReadReplicaSourceDBInstanceIdentifier"):
            rds.promote_read_replica(DBInstanceIdentifier=self.instance_id())
            what = f"promoted {self.instance_id()} in {self.region()}"
        else:
            what = f"{self.instance_id()} was already standalone"

        # standalone: RDS no longer names a source (real RDS clears it once promotion is done).
        # available: the status is enough (moto keeps the source field after a promotion).
        standalone = str(self.ctx.param("wait_for", "standalone")) == "standalone"

        def promoted() -> dict[str, Any] | None:
            found = describe_instance(rds, self.instance_id())
            if not found or found.get("DBInstanceStatus") != "available":
                return None
            if standalone and found.get("ReadReplicaSourceDBInstanceIdentifier"):
                return None
            return found

        try:
            found = poll_until(
                self.ctx,
                promoted,
                what=f"{self.instance_id()} to be promoted",
                first_delay_s=1.0,
                max_delay_s=15.0,
            )
        except PollTimeout as exc:
            raise RecoveryError(str(exc)) from exc
        address = str(found.get("Endpoint", {}).get("Address", ""))
        repoint = self.ctx.param("repoint")
        if repoint:
            record = upsert_cname(self, dict(repoint), address)
            what += f"; {record} -> {address}"
        return what

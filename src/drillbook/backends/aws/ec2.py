"""EC2 and Auto Scaling faults: stop or terminate instances, suspend processes, kill group members.

Instances are chosen by id or tag selector, then narrowed by ``count`` / ``percent``; the engine
enforces ``max_targets`` / ``max_percent`` on the :class:`Selection` we return, so ``candidates``
is always how many matched before narrowing. With ``require_opt_in``, instances without the
opt-in tag are not candidates at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drillbook.backends.base import Context, Selection
from drillbook.backends.selection import Picked, select
from drillbook.errors import ConfigError, SafetyError

from .common import AwsFault, AwsStep, tag_dict
from .poll import PollTimeout, poll_until

__all__ = [
    "AsgResume",
    "AsgSuspend",
    "AsgTerminateInstances",
    "Ec2Stop",
    "Ec2Terminate",
    "describe_instances",
]

LIVE_STATES = ("pending", "running")


def describe_instances(
    ec2: Any,
    ids: list[str] | None = None,
    tags: Mapping[str, str] | None = None,
    states: tuple[str, ...] | None = None,
) -> list[dict[str, Any]]:
    """Instances by ids and/or tags (paginated), flattened out of their reservations."""
    filters: list[dict[str, Any]] = [
        {"Name": f"tag:{k}", "Values": [str(v)]} for k, v in (tags or {}).items()
    ]
    if states:
        filters.append({"Name": "instance-state-name", "Values": list(states)})
    kwargs: dict[str, Any] = {"Filters": filters} if filters else {}
    if ids:
        kwargs["InstanceIds"] = ids
    out: list[dict[str, Any]] = []
    for page in ec2.get_paginator("describe_instances").paginate(**kwargs):
        for reservation in page.get("Reservations", []):
            out.extend(reservation.get("Instances", []))
    return out


class _InstanceFault(AwsFault):
    """Shared resolution for faults that act on a set of EC2 instances."""

    states: tuple[str, ...] = LIVE_STATES

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self._chosen: tuple[str, ...] | None = None
        self._picked: Picked[str] | None = None
        self._region_used: str | None = None

    def selector(self) -> tuple[list[str], dict[str, str]]:
        ids = self.tparam("ids") or ([self.tparam("id")] if self.tparam("id") else [])
        tags = dict(self.tparam("tags") or {})
        if not ids and not tags:
            raise ConfigError("a destructive EC2 fault needs ids or a tag selector", field="tags")
        return [str(i) for i in ids], {str(k): str(v) for k, v in tags.items()}

    def resolve(self) -> Selection:
        ids, tags = self.selector()
        found = describe_instances(self.client("ec2"), ids or None, tags, self.states)
        if ids and self.settings.require_opt_in:
            for inst in found:
                self.check_opt_in(f"instance {inst['InstanceId']}", tag_dict(inst.get("Tags")))
        candidates = [
            i["InstanceId"] for i in found if self.settings.opted_in(tag_dict(i.get("Tags")))
        ]
        if self._picked is None:  # drawn once: the plan, the check and the inject agree
            self._picked = select(candidates, self.ctx.params)
        self._chosen = self._picked.chosen
        return Selection(self._chosen, self._picked.candidates, self._picked.seed)

    def chosen(self) -> tuple[str, ...]:
        if self._chosen is None:
            self.resolve()
        assert self._chosen is not None
        if not self._chosen:
            raise SafetyError("the selector matched no instances: an empty selection is an error")
        return self._chosen

    def plan(self) -> str:
        verb = type(self).__name__.removeprefix("Ec2").lower()
        return f"{verb} EC2 instances {', '.join(self.chosen())} in {self.region()}"

    def state(self) -> Mapping[str, Any]:
        return {
            "region": self._region_used or self.region(),
            "instance_ids": list(self._chosen or ()),
        }

    def load_state(self, state: Mapping[str, Any]) -> None:
        self._chosen = tuple(str(i) for i in state.get("instance_ids", []))
        self._region_used = str(state.get("region") or self.region())

    def regions(self) -> set[str]:
        return {self._region_used or self.region()}

    def _states(self) -> dict[str, str]:
        ec2 = self.client("ec2", self._region_used)
        return {
            i["InstanceId"]: i["State"]["Name"]
            for i in describe_instances(ec2, list(self._chosen or ()))
        }


class Ec2Stop(_InstanceFault):
    """Stop instances; revert starts them. ``force`` passes through to StopInstances."""

    def inject(self) -> None:
        chosen = list(self.chosen())
        self._region_used = self.region()
        self.guard()
        self.client("ec2", self._region_used).stop_instances(
            InstanceIds=chosen, Force=bool(self.ctx.param("force", False))
        )

    def verify_injected(self) -> bool:
        return all(s in ("stopping", "stopped") for s in self._states().values())

    def revert(self) -> None:
        if not self._chosen:
            return
        self.guard()
        ec2 = self.client("ec2", self._region_used)

        def settled() -> dict[str, str] | None:
            states = self._states()
            return None if any(s == "stopping" for s in states.values()) else states

        try:
            states = poll_until(
                self.ctx, settled, what="instances to finish stopping", timeout_s=300
            )
        except PollTimeout as exc:
            raise self.fail(str(exc)) from exc
        to_start = [i for i, s in states.items() if s == "stopped"]
        if to_start:
            ec2.start_instances(InstanceIds=to_start)

    def verify_reverted(self) -> bool:
        # An instance terminated meanwhile carries no trace of this fault: nothing to start.
        states = self._states()
        return all(
            s in ("pending", "running", "shutting-down", "terminated") for s in states.values()
        )


class Ec2Terminate(_InstanceFault):
    """Terminate instances. Irreversible: revert has nothing to put back; recovery replaces them."""

    def inject(self) -> None:
        chosen = list(self.chosen())
        self._region_used = self.region()
        self.guard()
        self.client("ec2", self._region_used).terminate_instances(InstanceIds=chosen)

    def verify_injected(self) -> bool:
        return all(s in ("shutting-down", "terminated") for s in self._states().values())

    def revert(self) -> None:
        """Nothing to undo: a terminated instance cannot come back (a group or step replaces it)."""


class _AsgFault(AwsFault):
    def group_name(self) -> str:
        return str(self.tparam("group") or self.require("id"))

    def group(self) -> dict[str, Any]:
        groups = self.client("autoscaling").describe_auto_scaling_groups(
            AutoScalingGroupNames=[self.group_name()]
        )["AutoScalingGroups"]
        if not groups:
            raise self.fail(f"no Auto Scaling group named {self.group_name()} in {self.region()}")
        group: dict[str, Any] = groups[0]
        return group

    def check_group_opt_in(self, group: Mapping[str, Any]) -> None:
        self.check_opt_in(f"Auto Scaling group {self.group_name()}", tag_dict(group.get("Tags")))

    def resolve(self) -> Selection:
        group = self.group()
        self.check_group_opt_in(group)
        return Selection(chosen=(self.group_name(),), candidates=1)


DEFAULT_PROCESSES = ("Launch", "HealthCheck", "ReplaceUnhealthy", "AZRebalance")


class AsgSuspend(_AsgFault):
    """Suspend scaling processes (default: those that heal the group); revert resumes them."""

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self._suspended: list[str] = []

    def processes(self) -> list[str]:
        return [str(p) for p in (self.ctx.param("processes") or DEFAULT_PROCESSES)]

    def plan(self) -> str:
        return f"suspend {', '.join(self.processes())} on {self.group_name()} in {self.region()}"

    def inject(self) -> None:
        self.guard()
        group = self.group()
        self.check_group_opt_in(group)
        already = {p["ProcessName"] for p in group.get("SuspendedProcesses", [])}
        # Only what we suspend is ours to resume: an operator's earlier suspension stays.
        self._suspended = [p for p in self.processes() if p not in already]
        if self._suspended:
            self.client("autoscaling").suspend_processes(
                AutoScalingGroupName=self.group_name(), ScalingProcesses=self._suspended
            )

    def verify_injected(self) -> bool:
        now = {p["ProcessName"] for p in self.group().get("SuspendedProcesses", [])}
        return set(self.processes()) <= now

    def revert(self) -> None:
        if not self._suspended:
            return
        self.guard()
        self.client("autoscaling").resume_processes(
            AutoScalingGroupName=self.group_name(), ScalingProcesses=self._suspended
        )

    def verify_reverted(self) -> bool:
        now = {p["ProcessName"] for p in self.group().get("SuspendedProcesses", [])}
        return not (set(self._suspended) & now)

    def state(self) -> Mapping[str, Any]:
        return {"region": self.region(), "group": self.group_name(), "suspended": self._suspended}

    def load_state(self, state: Mapping[str, Any]) -> None:
        self._suspended = [str(p) for p in state.get("suspended", [])]


class AsgTerminateInstances(_AsgFault):
    """Terminate a share of a group's in-service instances (optionally in one ``az``).

    The group replacing them is the recovery under test."""

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self._chosen: tuple[str, ...] | None = None
        self._picked: Picked[str] | None = None

    def resolve(self) -> Selection:
        group = self.group()
        self.check_group_opt_in(group)
        az = self.ctx.param("az")
        candidates = [
            i["InstanceId"]
            for i in group.get("Instances", [])
            if i.get("LifecycleState") == "InService"
            and (not az or i.get("AvailabilityZone") == az)
        ]
        if self._picked is None:  # drawn once: the plan, the check and the inject agree
            self._picked = select(candidates, self.ctx.params)
        self._chosen = self._picked.chosen
        return Selection(self._chosen, self._picked.candidates, self._picked.seed)

    def plan(self) -> str:
        if self._chosen is None:
            self.resolve()
        ids = ", ".join(self._chosen or ()) or "nothing"
        return f"terminate {ids} in Auto Scaling group {self.group_name()} ({self.region()})"

    def inject(self) -> None:
        if self._chosen is None:
            self.resolve()
        if not self._chosen:
            raise SafetyError("no in-service instances matched: an empty selection is an error")
        self.guard()
        asg = self.client("autoscaling")
        for instance_id in self._chosen:
            asg.terminate_instance_in_auto_scaling_group(
                InstanceId=instance_id, ShouldDecrementDesiredCapacity=False
            )

    def verify_injected(self) -> bool:
        live = {
            i["InstanceId"]
            for i in self.group().get("Instances", [])
            if i.get("LifecycleState") in ("InService", "Pending")
        }
        return not (set(self._chosen or ()) & live)

    def revert(self) -> None:
        """Nothing to undo: the group launches replacements (that is the recovery under test)."""

    def state(self) -> Mapping[str, Any]:
        return {
            "region": self.region(),
            "group": self.group_name(),
            "instance_ids": list(self._chosen or ()),
        }

    def load_state(self, state: Mapping[str, Any]) -> None:
        self._chosen = tuple(str(i) for i in state.get("instance_ids", []))


class AsgResume(AwsStep):
    """Recovery step: resume a group's suspended processes (all, or ``processes``)."""

    def run(self) -> str:
        self.guard()
        name = str(self.tparam("group") or self.require("id"))
        asg = self.client("autoscaling")
        processes = self.ctx.param("processes")
        kwargs: dict[str, Any] = {"AutoScalingGroupName": name}
        if processes:
            kwargs["ScalingProcesses"] = [str(p) for p in processes]
        asg.resume_processes(**kwargs)
        return f"resumed {', '.join(processes) if processes else 'all processes'} on {name}"

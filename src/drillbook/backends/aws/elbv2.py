"""ELBv2: take targets out of a target group (the load balancer stops sending them traffic);
revert registers exactly those targets again, with their ports."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drillbook.backends.base import Context, Selection
from drillbook.backends.selection import select

from .common import AwsFault

__all__ = ["Elbv2DeregisterTargets"]


class Elbv2DeregisterTargets(AwsFault):
    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self._targets: list[dict[str, Any]] | None = None
        self._arn: str | None = None

    def group_arn(self) -> str:
        if self._arn:
            return self._arn
        arn = self.tparam("arn")
        if not arn:
            name = str(self.require("name"))
            groups = self.client("elbv2").describe_target_groups(Names=[name])["TargetGroups"]
            arn = groups[0]["TargetGroupArn"]
        self._arn = str(arn)
        return self._arn

    def registered(self) -> list[dict[str, Any]]:
        health = self.client("elbv2").describe_target_health(TargetGroupArn=self.group_arn())
        return [
            {k: v for k, v in d["Target"].items() if k in ("Id", "Port", "AvailabilityZone")}
            for d in health["TargetHealthDescriptions"]
            if d.get("TargetHealth", {}).get("State") not in ("draining", "unused")
        ]

    def resolve(self) -> Selection:
        tags_resp = self.client("elbv2").describe_tags(ResourceArns=[self.group_arn()])
        tags = {
            t["Key"]: t["Value"] for d in tags_resp["TagDescriptions"] for t in d.get("Tags", [])
        }
        self.check_opt_in(f"target group {self.group_arn()}", tags)
        current = self.registered()
        wanted = self.ctx.param("ids")
        if wanted:
            current = [t for t in current if t["Id"] in {str(w) for w in wanted}]
        keys = {f"{t['Id']}:{t.get('Port', '')}": t for t in current}
        picked = select(list(keys), self.ctx.params)
        self._targets = [keys[k] for k in picked.chosen]
        return Selection(picked.chosen, picked.candidates, picked.seed)

    def plan(self) -> str:
        if self._targets is None:
            self.resolve()
        ids = ", ".join(t["Id"] for t in self._targets or [])
        return f"deregister {ids} from {self.group_arn()}"

    def inject(self) -> None:
        if self._targets is None:
            self.resolve()
        if not self._targets:
            raise self.fail("no registered targets matched: an empty selection is an error")
        self.guard()
        self.client("elbv2").deregister_targets(
            TargetGroupArn=self.group_arn(), Targets=self._targets
        )

    def _present(self) -> set[str]:
        return {t["Id"] for t in self.registered()}

    def verify_injected(self) -> bool:
        return not ({t["Id"] for t in self._targets or []} & self._present())

    def revert(self) -> None:
        if not self._targets:
            return
        self.guard()
        # RegisterTargets is idempotent for targets already registered.
        self.client("elbv2").register_targets(
            TargetGroupArn=self.group_arn(), Targets=self._targets
        )

    def verify_reverted(self) -> bool:
        return {t["Id"] for t in self._targets or []} <= self._present()

    def state(self) -> Mapping[str, Any]:
        return {"region": self.region(), "arn": self._arn, "targets": self._targets or []}

    def load_state(self, state: Mapping[str, Any]) -> None:
        self._arn = state.get("arn") or None
        self._targets = [dict(t) for t in state.get("targets", [])]

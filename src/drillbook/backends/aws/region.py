"""``aws.region_loss``: one fault that takes a region's share of a service away.

It stops the region's tagged instances, stops its primary database (optional: real RDS refuses to
stop an instance that has read replicas, so on a real account use an FIS network-disruption
template for the database instead), and inverts the region's Route 53 health check. Each part is
an ordinary fault; the composite keeps their states side by side so ``drillbook rollback`` can
revert every part from the intent ledger alone, in reverse order.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from drillbook.backends.base import Context, Selection
from drillbook.errors import ConfigError

from .common import AwsFault
from .ec2 import Ec2Stop
from .rds import RdsStop
from .route53 import Route53FailHealthCheck

__all__ = ["RegionLoss"]


class RegionLoss(AwsFault):
    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        region = str(self.require("region"))
        self.parts: dict[str, AwsFault] = {}
        base = {"region": region}
        tags = self.ctx.param("instance_tags")
        if tags:
            sub = {**base, "tags": dict(tags)}
            for key in ("count", "percent", "seed"):
                if self.ctx.param(key) is not None:
                    sub[key] = self.ctx.param(key)
            self.parts["ec2"] = Ec2Stop(replace(ctx, params=sub, targets=()))
        if self.ctx.param("db_instance"):
            self.parts["rds"] = RdsStop(
                replace(ctx, params={**base, "id": str(self.ctx.param("db_instance"))}, targets=())
            )
        check = {
            k: str(self.ctx.param(k))
            for k in ("health_check_id", "health_check_name")
            if self.ctx.param(k)
        }
        if check:
            self.parts["health_check"] = Route53FailHealthCheck(
                replace(ctx, params=check, targets=())
            )
        if not self.parts:
            raise ConfigError(
                "aws.region_loss needs instance_tags, db_instance or health_check_id/_name",
                field="params",
            )

    def region(self) -> str:
        return str(self.require("region"))

    def regions(self) -> set[str]:
        out: set[str] = set()
        for part in self.parts.values():
            out |= part.regions()
        return out

    def resolve(self) -> Selection:
        chosen: list[str] = []
        candidates = 0
        seed: int | None = None
        for part in self.parts.values():
            sel = part.resolve()  # every part checks its own opt-in
            if not part.read_only:  # every part that changes a target counts
                chosen.extend(sel.chosen)
                candidates += sel.candidates
            seed = sel.seed if sel.seed is not None else seed  # only the instances are drawn
        return Selection(chosen=tuple(chosen), candidates=candidates, seed=seed)

    def plan(self) -> str:
        return f"lose region {self.region()}: " + "; ".join(p.plan() for p in self.parts.values())

    def inject(self) -> None:
        self.guard()
        for part in self.parts.values():
            part.inject()

    def verify_injected(self) -> bool:
        return all(part.verify_injected() for part in self.parts.values())

    def revert(self) -> None:
        errors: list[str] = []
        for name, part in reversed(list(self.parts.items())):
            try:
                part.revert()
            except Exception as exc:
                errors.append(f"{name}: {exc}")
        if errors:
            raise self.fail("; ".join(errors))

    def verify_reverted(self) -> bool:
        return all(part.verify_reverted() for part in self.parts.values())

    def state(self) -> Mapping[str, Any]:
        return {name: dict(part.state()) for name, part in self.parts.items()}

    def load_state(self, state: Mapping[str, Any]) -> None:
        for name, part in self.parts.items():
            if name in state:
                part.load_state(state[name])

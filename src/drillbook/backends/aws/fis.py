"""AWS FIS: start an experiment template, wait until it runs, stop it on revert.

Teams already on FIS keep their templates (and FIS's own stop conditions and duration, which act
as a platform-side TTL); drillbook adds timing, objectives and evidence around them. moto models
FIS templates but not StartExperiment/GetExperiment/StopExperiment, so tests drive those calls
through botocore's Stubber (docs/aws.md says so).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from drillbook.backends.base import Context, Selection

from .common import AwsFault
from .poll import PollTimeout, poll_until

__all__ = ["ACTIVE", "FisStartExperiment"]

ACTIVE = ("pending", "initiating", "running")
ENDED = ("completed", "stopped", "failed", "cancelled")


class FisStartExperiment(AwsFault):
    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self._experiment_id: str | None = None
        self._fis: Any = None

    def template_id(self) -> str:
        return str(self.tparam("template_id") or self.require("id"))

    def fis(self) -> Any:
        if self._fis is None:
            self._fis = self.client("fis")
        return self._fis

    def resolve(self) -> Selection:
        tpl = self.fis().get_experiment_template(id=self.template_id())["experimentTemplate"]
        self.check_opt_in(f"FIS template {self.template_id()}", dict(tpl.get("tags", {})))
        return Selection(chosen=(self.template_id(),), candidates=1)

    def plan(self) -> str:
        return f"start FIS experiment template {self.template_id()} in {self.region()}"

    def status(self) -> str:
        assert self._experiment_id
        exp = self.fis().get_experiment(id=self._experiment_id)["experiment"]
        return str(exp.get("state", {}).get("status", "unknown"))

    def inject(self) -> None:
        self.guard()
        resp = self.fis().start_experiment(
            experimentTemplateId=self.template_id(),
            clientToken=str(uuid.uuid4()),
            tags={"drillbook": "drill"},
        )
        self._experiment_id = str(resp["experiment"]["id"])

    def verify_injected(self) -> bool:
        """True once the experiment runs (polls while it is pending/initiating)."""

        def started() -> str | None:
            status = self.status()
            return None if status in ("pending", "initiating") else status

        try:
            status = poll_until(
                self.ctx, started, what="the FIS experiment to start", timeout_s=120
            )
        except PollTimeout:
            return False
        return status in ("running", "completed")

    def revert(self) -> None:
        if not self._experiment_id:
            return
        self.guard()
        if self.status() in ACTIVE:
            self.fis().stop_experiment(id=self._experiment_id)

        def ended() -> str | None:
            status = self.status()
            return status if status in ENDED else None

        try:
            poll_until(self.ctx, ended, what="the FIS experiment to stop", timeout_s=300)
        except PollTimeout as exc:
            raise self.fail(str(exc)) from exc

    def verify_reverted(self) -> bool:
        return not self._experiment_id or self.status() in ENDED

    def state(self) -> Mapping[str, Any]:
        return {"region": self.region(), "experiment_id": self._experiment_id}

    def load_state(self, state: Mapping[str, Any]) -> None:
        self._experiment_id = state.get("experiment_id")

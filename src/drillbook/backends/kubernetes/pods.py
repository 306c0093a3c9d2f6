"""``k8s.delete_pods``: lose some pods of a workload and let its controller replace them.

Pods are chosen with :func:`drillbook.backends.selection.select` (``count``/``percent``, every
match by default, seeded so a drill can be replayed) among the running, not-terminating
pods the selector matches, then deleted with a UID precondition so a replacement that happens to
reuse the name (StatefulSet) is never deleted by mistake. Nothing to revert: the controller
recreates the pods; that is the recovery being timed.
"""

from __future__ import annotations

from typing import Any

from drillbook.backends.base import Selection
from drillbook.backends.selection import select
from drillbook.errors import FaultError

from .client import describe
from .common import KubeFault, T, int_param

__all__ = ["DeletePods", "running_pods"]


def running_pods(fault: KubeFault) -> list[Any]:
    pods = fault.kube.core.list_namespaced_pod(
        fault.ns,
        label_selector=fault.selector() or None,
        field_selector=fault.target.field_selector or None,
        _request_timeout=T,
    ).items
    return [
        p
        for p in pods
        if p.metadata.deletion_timestamp is None and (p.status.phase in ("Running", "Pending"))
    ]


class DeletePods(KubeFault):
    """Delete the selected pods (``count``, ``percent`` or every one) of the target's selector."""

    def resolve(self) -> Selection:
        self.check_static()
        pods = running_pods(self)
        if not pods:
            raise FaultError(
                f"selector {self.selector()!r} matched no running pods in namespace {self.ns!r}"
            )
        picked = select([p.metadata.name for p in pods], self.ctx.params)
        uids = {p.metadata.name: p.metadata.uid for p in pods}
        self._state["pods"] = [{"name": name, "uid": uids[name]} for name in picked.chosen]
        return Selection(
            chosen=tuple(f"pod/{self.ns}/{n}" for n in picked.chosen),
            candidates=picked.candidates,
            seed=picked.seed,
        )

    def plan(self) -> str:
        pods = self._state.get("pods") or []
        names = ", ".join(p["name"] for p in pods) or f"pods matching {self.selector()!r}"
        grace = self.ctx.param("grace_period_s")
        g = f" (grace {grace}s)" if grace is not None else ""
        return f"delete {names} in {self.target.name} ({self.ns}){g}"

    def inject(self) -> None:
        self.guard_inject()
        if not self._state.get("pods"):
            self.resolve()
        grace = int_param(self.ctx.params, "grace_period_s", None)
        for pod in self._state["pods"]:
            body: dict[str, Any] = {"preconditions": {"uid": pod["uid"]}}
            if grace is not None:
                body["gracePeriodSeconds"] = grace
            try:
                self.kube.core.delete_namespaced_pod(
                    pod["name"], self.ns, body=body, grace_period_seconds=grace, _request_timeout=T
                )
            except Exception as exc:
                if getattr(exc, "status", None) not in (404, 409):
                    raise FaultError(f"deleting pod {pod['name']}: {describe(exc)}") from exc

    def verify_injected(self) -> bool:
        for pod in self._state.get("pods") or []:
            live = self.get(self.kube.core.read_namespaced_pod, pod["name"], self.ns)
            if (
                live is not None
                and live.metadata.uid == pod["uid"]
                and live.metadata.deletion_timestamp is None
            ):
                return False
        return True

    def revert(self) -> None:
        """Nothing to undo: deleted pods are replaced by their controller (the recovery)."""

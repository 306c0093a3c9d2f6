"""Workload faults: ``k8s.scale`` and ``k8s.bad_rollout``.

Both write what they changed into ``state()`` *and* onto the workload as an annotation
(``drillbook.io/changed-by`` plus the previous value), so a reaper can revert from either.
Reverts only undo drillbook's own change: if someone already restored the workload (a recovery
step, an operator), revert leaves it alone.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from drillbook.backends.base import Selection
from drillbook.errors import ConfigError, FaultError

from .common import MARK_ANNOTATION, KubeFault, T, int_param

__all__ = ["BAD_IMAGE", "BadRollout", "Scale", "read_scale", "workload_ref", "write_scale"]

#: An image no registry serves (``.invalid`` is reserved, RFC 2606): pulls fail, pods never ready.
BAD_IMAGE = "drillbook.invalid/never-ready:1"
PREVIOUS_ANNOTATION = "drillbook.io/previous"


def workload_ref(target: Any, params: Mapping[str, Any]) -> tuple[str, str]:
    """(kind, name) of the workload a fault or step acts on: params first, then the target."""
    kind = str(
        params.get("kind")
        or ("StatefulSet" if target.statefulset and not target.deployment else "Deployment")
    )
    if kind not in ("Deployment", "StatefulSet"):
        raise ConfigError(f"expected Deployment or StatefulSet, got {kind!r}", field="kind")
    name = params.get("name") or (target.deployment if kind == "Deployment" else target.statefulset)
    if not name:
        raise ConfigError(
            f"no {kind} named: set `name:` or the target's `{kind.lower()}:`", field="name"
        )
    return kind, str(name)


def read_scale(kube: Any, kind: str, name: str, ns: str) -> int:
    fn = (
        kube.apps.read_namespaced_deployment_scale
        if kind == "Deployment"
        else kube.apps.read_namespaced_stateful_set_scale
    )
    return int(fn(name, ns, _request_timeout=T).spec.replicas or 0)


def write_scale(
    kube: Any, kind: str, name: str, ns: str, replicas: int, notes: dict[str, Any] | None
) -> None:
    patch_scale = (
        kube.apps.patch_namespaced_deployment_scale
        if kind == "Deployment"
        else kube.apps.patch_namespaced_stateful_set_scale
    )
    patch_obj = (
        kube.apps.patch_namespaced_deployment
        if kind == "Deployment"
        else kube.apps.patch_namespaced_stateful_set
    )
    if notes is not None:
        patch_obj(name, ns, {"metadata": {"annotations": notes}}, _request_timeout=T)
    patch_scale(name, ns, {"spec": {"replicas": replicas}}, _request_timeout=T)


class _WorkloadFault(KubeFault):
    def has_selector(self) -> bool:
        return True  # the workload's name is the selector

    def resolve(self) -> Selection:
        self.check_static()
        kind, name = workload_ref(self.target, self.ctx.params)
        self._state.update(kind=kind, name=name)
        return Selection(chosen=(f"{kind.lower()}/{self.ns}/{name}",), candidates=1)

    def ref(self) -> tuple[str, str]:
        if "kind" not in self._state:
            self.resolve()
        return str(self._state["kind"]), str(self._state["name"])

    def read(self) -> Any:
        kind, name = self.ref()
        fn = (
            self.kube.apps.read_namespaced_deployment
            if kind == "Deployment"
            else self.kube.apps.read_namespaced_stateful_set
        )
        return self.get(fn, name, self.ns)


class Scale(_WorkloadFault):
    """Scale a Deployment/StatefulSet to ``replicas``; revert restores the previous count."""

    def plan(self) -> str:
        kind, name = workload_ref(self.target, self.ctx.params)
        return f"scale {kind} {self.ns}/{name} to {self.ctx.param('replicas')}"

    def inject(self) -> None:
        self.guard_inject()
        kind, name = self.ref()
        replicas = int_param(self.ctx.params, "replicas", None)
        if replicas is None:
            raise ConfigError("k8s.scale needs replicas", field="replicas")
        if "previous" not in self._state:
            self._state["previous"] = read_scale(self.kube, kind, name, self.ns)
        self._state["replicas"] = replicas
        notes = {MARK_ANNOTATION: self.token(), PREVIOUS_ANNOTATION: str(self._state["previous"])}
        write_scale(self.kube, kind, name, self.ns, replicas, notes)

    def verify_injected(self) -> bool:
        kind, name = self.ref()
        return read_scale(self.kube, kind, name, self.ns) == self._state.get("replicas")

    def revert(self) -> None:
        obj = self.read()
        if obj is None:
            return
        kind, name = self.ref()
        notes = obj.metadata.annotations or {}
        previous = self._state.get("previous")
        if previous is None and MARK_ANNOTATION in notes:  # crashed before state was saved
            previous = int(notes.get(PREVIOUS_ANNOTATION, "1"))
        if previous is None:
            return
        self._state["previous"] = previous
        clear = {MARK_ANNOTATION: None, PREVIOUS_ANNOTATION: None}
        if read_scale(self.kube, kind, name, self.ns) != previous or MARK_ANNOTATION in notes:
            write_scale(self.kube, kind, name, self.ns, int(previous), clear)

    def verify_reverted(self) -> bool:
        kind, name = self.ref()
        previous = self._state.get("previous")
        return previous is None or read_scale(self.kube, kind, name, self.ns) == previous


class BadRollout(_WorkloadFault):
    """Roll a Deployment to an image that never becomes ready (a failed deployment).

    Revert puts the previous images back if the bad one is still there; after a successful
    ``k8s.rollout_undo`` there is nothing left to revert.
    """

    def _bad(self) -> str:
        return str(self.ctx.param("image") or BAD_IMAGE)

    def plan(self) -> str:
        _, name = workload_ref(self.target, self.ctx.params)
        return f"roll deployment {self.ns}/{name} to unpullable image {self._bad()}"

    def resolve(self) -> Selection:
        sel = super().resolve()
        if self._state["kind"] != "Deployment":
            raise ConfigError("k8s.bad_rollout acts on a Deployment", field="kind")
        return sel

    def inject(self) -> None:
        self.guard_inject()
        _, name = self.ref()
        dep = self.read()
        if dep is None:
            raise FaultError(f"deployment {self.ns}/{name} not found")
        containers = dep.spec.template.spec.containers
        wanted = self.ctx.param("container")
        chosen = [c for c in containers if wanted in (None, c.name)]
        if not chosen:
            raise FaultError(f"deployment {name} has no container {wanted!r}")
        if "previous_images" not in self._state:
            self._state["previous_images"] = {c.name: c.image for c in chosen}
        prev = self._state["previous_images"]
        self._state["image"] = self._bad()
        patch = {
            "metadata": {
                "annotations": {
                    MARK_ANNOTATION: self.token(),
                    PREVIOUS_ANNOTATION: json.dumps(prev),
                }
            },
            "spec": {
                "template": {
                    "spec": {"containers": [{"name": n, "image": self._bad()} for n in prev]}
                }
            },
        }
        self.kube.apps.patch_namespaced_deployment(name, self.ns, patch, _request_timeout=T)

    def _bad_containers(self, dep: Any) -> list[str]:
        bad = self._state.get("image") or self._bad()
        return [c.name for c in dep.spec.template.spec.containers if c.image == bad]

    def verify_injected(self) -> bool:
        dep = self.read()
        return dep is not None and bool(self._bad_containers(dep))

    def revert(self) -> None:
        dep = self.read()
        if dep is None:
            return
        _, name = self.ref()
        notes = dep.metadata.annotations or {}
        prev = self._state.get("previous_images")
        if not prev and PREVIOUS_ANNOTATION in notes:
            prev = json.loads(notes[PREVIOUS_ANNOTATION])
        clear = {MARK_ANNOTATION: None, PREVIOUS_ANNOTATION: None}
        bad = [n for n in self._bad_containers(dep) if prev and n in prev]
        patch: dict[str, Any] = {"metadata": {"annotations": clear}}
        if bad and prev:
            patch["spec"] = {
                "template": {"spec": {"containers": [{"name": n, "image": prev[n]} for n in bad]}}
            }
        if bad or MARK_ANNOTATION in notes:
            self.kube.apps.patch_namespaced_deployment(name, self.ns, patch, _request_timeout=T)

    def verify_reverted(self) -> bool:
        dep = self.read()
        return dep is None or not self._bad_containers(dep)

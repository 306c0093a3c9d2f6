"""Scripted recovery steps: ``k8s.rollout_undo``, ``k8s.uncordon``, ``k8s.scale``.

These are the runbook's commands (``kubectl rollout undo``, ``kubectl uncordon``, ``kubectl
scale``) run and timed by the engine. With ``wait: true`` a step also waits for its effect
(rollout complete, replicas available), bounded by ``timeout`` and the drill's deadline.
"""

from __future__ import annotations

from collections.abc import Mapping

from drillbook.durations import parse_duration
from drillbook.errors import RecoveryError

from .common import MARK_ANNOTATION, KubeStep, T, wait_until
from .rollout import complete, undo
from .selectors import matches
from .workloads import read_scale, workload_ref, write_scale

__all__ = ["RolloutUndo", "ScaleStep", "Uncordon"]


class _Waiting(KubeStep):
    def _timeout(self) -> float:
        return parse_duration(self.ctx.param("timeout", "5m"))


class RolloutUndo(_Waiting):
    """``kubectl rollout undo deployment/NAME [--to-revision=N]`` (see rollout.py)."""

    def run(self) -> str:
        self.check()
        name = self.ctx.param("deployment") or self.target.deployment
        if not name:
            raise RecoveryError("no deployment: set `deployment:` on the step or the target")
        detail = undo(self.kube, self.ns, str(name), int(self.ctx.param("to_revision", 0)))
        if self.ctx.param("wait"):

            def done() -> bool:
                dep = self.kube.apps.read_namespaced_deployment(name, self.ns, _request_timeout=T)
                return complete(dep)[0]

            wait_until(self.ctx, f"rollout of {name}", done, self._timeout(), error=RecoveryError)
            detail += "; rollout complete"
        return detail


class Uncordon(KubeStep):
    """``kubectl uncordon``: the named node, nodes matching ``node_selector``, or (default) every
    node drillbook cordoned for this target."""

    def run(self) -> str:
        self.check()
        nodes = self.kube.core.list_node(_request_timeout=T).items
        node = self.ctx.param("node")
        sel = self.ctx.param("node_selector")
        if isinstance(sel, Mapping):
            sel = ",".join(f"{k}={v}" for k, v in sel.items())
        if node:
            chosen = [n for n in nodes if n.metadata.name == node]
        elif sel:
            chosen = [n for n in nodes if matches(str(sel), n.metadata.labels)]
        else:
            prefix = f"{self.target.name}/"
            chosen = [
                n
                for n in nodes
                if str((n.metadata.annotations or {}).get(MARK_ANNOTATION, "")).startswith(prefix)
            ]
        changed = []
        for n in chosen:
            if n.spec.unschedulable:
                self.kube.core.patch_node(
                    n.metadata.name,
                    {
                        "spec": {"unschedulable": None},
                        "metadata": {"annotations": {MARK_ANNOTATION: None}},
                    },
                    _request_timeout=T,
                )
                changed.append(n.metadata.name)
        if not chosen:
            raise RecoveryError("no node to uncordon matched")
        return f"uncordoned {', '.join(changed)}" if changed else "nodes were already schedulable"


class ScaleStep(_Waiting):
    """``kubectl scale --replicas=N``; with ``wait: true`` waits for N available replicas."""

    def run(self) -> str:
        self.check()
        kind, name = workload_ref(self.target, self.ctx.params)
        replicas = int(self.ctx.param("replicas"))
        before = read_scale(self.kube, kind, name, self.ns)
        write_scale(self.kube, kind, name, self.ns, replicas, None)
        detail = f"scaled {kind} {name} from {before} to {replicas}"
        if self.ctx.param("wait"):
            reader = (
                self.kube.apps.read_namespaced_deployment
                if kind == "Deployment"
                else self.kube.apps.read_namespaced_stateful_set
            )

            def ready() -> bool:
                obj = reader(name, self.ns, _request_timeout=T)
                have = getattr(obj.status, "available_replicas", None)
                if have is None:
                    have = getattr(obj.status, "ready_replicas", 0)
                return int(have or 0) >= replicas

            wait_until(
                self.ctx,
                f"{replicas} replicas of {name}",
                ready,
                self._timeout(),
                error=RecoveryError,
            )
            detail += "; replicas available"
        return detail

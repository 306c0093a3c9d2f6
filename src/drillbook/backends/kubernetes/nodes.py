"""Node faults: ``k8s.cordon_node``, ``k8s.drain_node``, ``k8s.node_not_ready``.

Which node: ``node`` (a name), ``node_selector`` (labels), or by default the node running most of
the target's pods (that is the node whose loss the drill is about). Every node drillbook changes
gets the annotation ``drillbook.io/changed-by: <target>/<token>``, and ``state()`` records which
nodes were changed and how they were before, so a reaper in a new process can undo exactly that;
if the harness died before ``state()`` was saved, revert falls back to the annotation.

Draining evicts through the Eviction API, so PodDisruptionBudgets are honoured: a 429 is retried
until ``eviction_timeout`` (as ``kubectl drain`` does). By default only pods in the target's
namespace are evicted (``scope: namespace``); ``scope: node`` evicts every pod on the node and
is refused unless every namespace with pods there is allowlisted.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from drillbook.backends.base import Selection
from drillbook.backends.selection import select
from drillbook.durations import parse_duration
from drillbook.errors import ConfigError, FaultError, SafetyError

from .client import describe
from .common import MARK_ANNOTATION, KubeFault, T, int_param, wait_until
from .selectors import matches
from .targets import opt_in_holds

__all__ = [
    "NOT_READY_ANNOTATION",
    "CordonNode",
    "DrainNode",
    "NodeFault",
    "NodeNotReady",
    "evictable_pods",
    "uncordon",
]

#: The kubelet stand-in stops heartbeating a node carrying this annotation.
NOT_READY_ANNOTATION = "drillbook.io/not-ready"


def evictable_pods(fault: KubeFault, node: str, all_namespaces: bool) -> list[Any]:
    """Pods a drain moves: not DaemonSet-owned, not mirror pods, not already gone."""
    field = f"spec.nodeName={node}"
    if all_namespaces:
        pods = fault.kube.core.list_pod_for_all_namespaces(field_selector=field, _request_timeout=T)
    else:
        pods = fault.kube.core.list_namespaced_pod(
            fault.ns, field_selector=field, _request_timeout=T
        )
    out = []
    for p in pods.items:
        owners = p.metadata.owner_references or []
        if any(o.kind == "DaemonSet" for o in owners):
            continue
        if "kubernetes.io/config.mirror" in (p.metadata.annotations or {}):
            continue
        if p.status.phase in ("Succeeded", "Failed"):
            continue
        out.append(p)
    return out


def uncordon(fault: KubeFault, name: str, mark: str | None) -> bool:
    """Make a node schedulable again if we cordoned it. True if it changed something."""
    node = fault.get(fault.kube.core.read_node, name)
    if node is None:
        return False
    notes = node.metadata.annotations or {}
    if mark is not None and notes.get(MARK_ANNOTATION) != mark:
        return False  # not our cordon (any more): someone else's change; leave it
    if mark is None and MARK_ANNOTATION not in notes:
        return False
    fault.kube.core.patch_node(
        name,
        {"spec": {"unschedulable": None}, "metadata": {"annotations": {MARK_ANNOTATION: None}}},
        _request_timeout=T,
    )
    return True


class NodeFault(KubeFault):
    """Chooses nodes; node faults act on cluster-scoped objects, so the opt-in is on the node."""

    def has_selector(self) -> bool:
        return bool(self.ctx.param("node") or self.ctx.param("node_selector") or self.selector())

    def _nodes_all(self) -> list[Any]:
        return list(self.kube.core.list_node(_request_timeout=T).items)

    def resolve(self) -> Selection:
        self.check_static()
        nodes = self._nodes_all()
        explicit = self.ctx.param("node")
        seed: int | None = None
        node_sel = self.ctx.param("node_selector")
        if isinstance(node_sel, Mapping):
            node_sel = ",".join(f"{k}={v}" for k, v in node_sel.items())
        if explicit:
            chosen = [n.metadata.name for n in nodes if n.metadata.name == explicit]
        elif node_sel:
            picked = select(
                [n.metadata.name for n in nodes if matches(node_sel, n.metadata.labels)],
                self.ctx.params,
            )
            chosen, seed = list(picked.chosen), picked.seed
        else:
            # A ranking, not a subset: the busiest node(s) for the target's pods (`count`, 1).
            count = int_param(self.ctx.params, "count", 1, minimum=1) or 1
            pods = self.kube.core.list_namespaced_pod(
                self.ns, label_selector=self.selector() or None, _request_timeout=T
            ).items
            load = Counter(p.spec.node_name for p in pods if p.spec.node_name)
            chosen = [name for name, _ in sorted(load.items(), key=lambda kv: (-kv[1], kv[0]))]
            chosen = chosen[:count]
        if not chosen:
            raise FaultError(
                f"no node matched (node={explicit!r}, node_selector={node_sel!r},"
                f" pods of {self.selector()!r} in {self.ns!r})"
            )
        self._state["nodes"] = [{"name": n} for n in chosen]
        return Selection(
            chosen=tuple(f"node/{n}" for n in chosen), candidates=len(nodes), seed=seed
        )

    def node_names(self) -> list[str]:
        return [n["name"] for n in self._state.get("nodes") or []]

    def preflight(self) -> None:
        super().preflight()
        if not self.node_names():
            self.resolve()
        for name in self.node_names():
            node = self.get(self.kube.core.read_node, name)
            if node is None:
                raise SafetyError(f"node {name!r} does not exist")
            if self.scope.opt_in_configured and not opt_in_holds(
                node.metadata, self.scope.settings
            ):
                raise SafetyError(f"node {name!r} lacks the opt-in label/annotation")

    def plan(self) -> str:
        nodes = ", ".join(self.node_names()) or "the node running most of the target's pods"
        return f"{self.verb} {nodes} (target {self.target.name}, namespace {self.ns})"

    verb = "act on"

    def cordon(self) -> None:
        mark = self.token()
        self._state["mark"] = mark
        for entry in self._state["nodes"]:
            node = self.kube.core.read_node(entry["name"], _request_timeout=T)
            if "was_unschedulable" not in entry:
                entry["was_unschedulable"] = bool(node.spec.unschedulable)
            if entry["was_unschedulable"]:
                continue
            self.kube.core.patch_node(
                entry["name"],
                {
                    "spec": {"unschedulable": True},
                    "metadata": {"annotations": {MARK_ANNOTATION: mark}},
                },
                _request_timeout=T,
            )

    def cordoned(self) -> bool:
        for name in self.node_names():
            node = self.get(self.kube.core.read_node, name)
            if node is None or not node.spec.unschedulable:
                return False
        return True

    def uncordon_ours(self) -> None:
        mark = self._state.get("mark")
        entries = self._state.get("nodes") or []
        if not entries:  # crashed before state was saved: find our marks
            prefix = f"{self.target.name}/"
            for node in self._nodes_all():
                if str((node.metadata.annotations or {}).get(MARK_ANNOTATION, "")).startswith(
                    prefix
                ):
                    uncordon(self, node.metadata.name, None)
            return
        for entry in entries:
            if entry.get("was_unschedulable"):
                continue
            uncordon(self, entry["name"], mark)

    def schedulable_again(self) -> bool:
        for entry in self._state.get("nodes") or []:
            if entry.get("was_unschedulable"):
                continue
            node = self.get(self.kube.core.read_node, entry["name"])
            ours = (node.metadata.annotations or {}).get(MARK_ANNOTATION) if node else None
            if node is not None and node.spec.unschedulable and ours == self._state.get("mark"):
                return False  # still cordoned by us (a later cordon by someone else is theirs)
        return True


class CordonNode(NodeFault):
    """Mark nodes unschedulable; running pods stay. Revert uncordons what we cordoned."""

    verb = "cordon"

    def inject(self) -> None:
        self.guard_inject()
        if not self.node_names():
            self.resolve()
        self.cordon()

    def verify_injected(self) -> bool:
        return self.cordoned()

    def revert(self) -> None:
        self.uncordon_ours()

    def verify_reverted(self) -> bool:
        return self.schedulable_again()


class DrainNode(CordonNode):
    """Cordon, then evict (PDB-aware) until every pod on the node is evicted (terminating or
    gone)."""

    verb = "drain"

    def _scope_all(self) -> bool:
        scope = self.ctx.param("scope", "namespace")
        if scope not in ("namespace", "node"):
            raise ConfigError(f"expected namespace or node, got {scope!r}", field="scope")
        return bool(scope == "node")

    def preflight(self) -> None:
        super().preflight()
        if self._scope_all():
            for name in self.node_names():
                for pod in evictable_pods(self, name, True):
                    if pod.metadata.namespace not in self.scope.namespaces:
                        raise SafetyError(
                            f"scope: node would evict {pod.metadata.namespace}/{pod.metadata.name}"
                            f" on {name}, outside allowed_namespaces; nothing was touched"
                        )

    def _timeout(self) -> float:
        return parse_duration(self.ctx.param("eviction_timeout", "120s"))

    def _eviction_body(self, pod: Any) -> dict[str, Any]:
        version = self.kube.first_served("policy", ("v1", "v1beta1"), "poddisruptionbudgets")
        body: dict[str, Any] = {
            "apiVersion": f"policy/{version or 'v1beta1'}",
            "kind": "Eviction",
            "metadata": {"name": pod.metadata.name, "namespace": pod.metadata.namespace},
        }
        grace = int_param(self.ctx.params, "grace_period_s", None)
        if grace is not None:
            body["deleteOptions"] = {"gracePeriodSeconds": grace}
        return body

    def inject(self) -> None:
        super().inject()  # cordon first, so evicted pods cannot land back here
        all_ns = self._scope_all()
        blocked: dict[str, str] = {}

        def evict_all() -> bool:
            blocked.clear()
            pending = False
            for name in self.node_names():
                for pod in evictable_pods(self, name, all_ns):
                    if pod.metadata.deletion_timestamp is not None:
                        # Evicted: its kubelet finishes the shutdown. Waiting for that (as
                        # `kubectl drain` does) would move t_inject late by the termination
                        # time, and on real kubelets the replacements are often available
                        # before the old pods are gone: an outage no probe could see after
                        # injection, and an RTA shorter than the outage.
                        continue
                    try:
                        self.kube.core.create_namespaced_pod_eviction(
                            pod.metadata.name,
                            pod.metadata.namespace,
                            self._eviction_body(pod),
                            _request_timeout=T,
                        )
                        pending = True
                    except Exception as exc:
                        status = getattr(exc, "status", None)
                        if status == 404:
                            continue
                        if status == 429:  # a PodDisruptionBudget says not now
                            blocked[pod.metadata.name] = "disruption budget"
                            pending = True
                            continue
                        raise FaultError(f"evicting {pod.metadata.name}: {describe(exc)}") from exc
            return not pending

        try:
            wait_until(self.ctx, "the node to drain", evict_all, self._timeout(), 0.5)
        except FaultError as exc:
            detail = f"; blocked by PodDisruptionBudget: {', '.join(blocked)}" if blocked else ""
            raise FaultError(f"{exc}{detail} (the node stays cordoned until revert)") from exc

    def verify_injected(self) -> bool:
        all_ns = self._scope_all()
        return self.cordoned() and not any(
            p.metadata.deletion_timestamp is None
            for n in self.node_names()
            for p in evictable_pods(self, n, all_ns)
        )


class NodeNotReady(NodeFault):
    """Report a node NotReady: the ``Ready`` condition is set False and the node is annotated
    ``drillbook.io/not-ready`` (the test kubelet stand-in then stops heartbeating it). A real
    kubelet overwrites the condition at its next status update, so on a real cluster this fault
    lasts seconds; stop the kubelet for a lasting outage. Revert sets Ready back and removes the
    annotation."""

    verb = "mark NotReady"

    def _ready(self, name: str, ready: bool, note: str | None) -> None:
        stamp = self.ctx.clock.wall().strftime("%Y-%m-%dT%H:%M:%SZ")
        cond = {
            "type": "Ready",
            "status": "True" if ready else "False",
            "reason": "DrillbookReverted" if ready else "DrillbookNotReady",
            "message": "set by drillbook",
            "lastHeartbeatTime": stamp,
            "lastTransitionTime": stamp,
        }
        # Injecting: annotate first (the stand-in stops heartbeating), then the condition.
        # Reverting: condition first, then drop the annotation, so a half-done revert is redone.
        steps = [
            lambda: self.kube.core.patch_node(
                name,
                {"metadata": {"annotations": {NOT_READY_ANNOTATION: note}}},
                _request_timeout=T,
            ),
            lambda: self.kube.core.patch_node_status(
                name, {"status": {"conditions": [cond]}}, _request_timeout=T
            ),
        ]
        for step in reversed(steps) if ready else steps:
            step()

    def inject(self) -> None:
        self.guard_inject()
        if not self.node_names():
            self.resolve()
        mark = self.token()
        self._state["mark"] = mark
        for name in self.node_names():
            self._ready(name, False, mark)

    def _is_ready(self, name: str) -> bool | None:
        node = self.get(self.kube.core.read_node, name)
        if node is None:
            return None
        return any(c.type == "Ready" and c.status == "True" for c in node.status.conditions or [])

    def verify_injected(self) -> bool:
        return all(self._is_ready(n) is False for n in self.node_names())

    def revert(self) -> None:
        names = self.node_names()
        if not names:
            prefix = f"{self.target.name}/"
            names = [
                n.metadata.name
                for n in self._nodes_all()
                if str((n.metadata.annotations or {}).get(NOT_READY_ANNOTATION, "")).startswith(
                    prefix
                )
            ]
        for name in names:
            node = self.get(self.kube.core.read_node, name)
            if node is None:
                continue
            if NOT_READY_ANNOTATION in (node.metadata.annotations or {}):
                self._ready(name, True, None)

    def verify_reverted(self) -> bool:
        return all(self._is_ready(n) is not False for n in self.node_names())

"""Network isolation: ``k8s.isolate`` (fault), ``k8s.traffic_allowed`` (probe),
``k8s.delete_network_policy`` (recovery step).

The fault creates a deny-all NetworkPolicy (no ingress, no egress rules) for the selected pods;
the CNI enforces it. The probe answers "do the NetworkPolicies in force let a client with these
labels in this namespace reach the target's pods on this port?" by evaluating the policies the
way the NetworkPolicy API defines them (ingress side; ipBlock peers are not evaluated). It reads
policy, not packets: it detects an isolation drill on any cluster, with or without a CNI, but it
does not prove packets flow; pair it with an HTTP probe through the Service where one is reachable.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drillbook.backends.base import Selection
from drillbook.clock import get_clock
from drillbook.errors import RecoveryError
from drillbook.model import ProbeResult

from .client import describe
from .common import (
    MANAGED_BY,
    KubeFault,
    KubeProbe,
    KubeStep,
    T,
    is_not_found,
    managed_labels,
    short_hash,
)
from .selectors import matches, matches_label_selector, to_label_selector

__all__ = ["DeleteNetworkPolicy", "Isolate", "TrafficAllowed", "ingress_allowed"]


def _types(policy: Any) -> list[str]:
    types = list(policy.spec.policy_types or [])
    if not types:
        types = ["Ingress"] + (["Egress"] if policy.spec.egress else [])
    return types


def _port_ok(rule: Any, port: int | str | None, protocol: str) -> bool:
    ports = rule.ports or []
    if not ports or port is None:
        return not ports or port is None
    for p in ports:
        if (p.protocol or "TCP") != protocol:
            continue
        if p.port is None or str(p.port) == str(port):
            return True
        end = getattr(p, "end_port", None)
        if end and isinstance(p.port, int) and isinstance(port, int) and p.port <= port <= end:
            return True
    return False


def ingress_allowed(
    policies: list[Any],
    pod_labels: Mapping[str, str],
    policy_ns: str,
    src_ns: str,
    src_ns_labels: Mapping[str, str],
    src_labels: Mapping[str, str],
    port: int | str | None = None,
    protocol: str = "TCP",
) -> tuple[bool, str]:
    """Whether ingress to a pod is allowed, per NetworkPolicy semantics; (allowed, why)."""
    applicable = [
        p
        for p in policies
        if "Ingress" in _types(p) and matches_label_selector(p.spec.pod_selector, pod_labels)
    ]
    if not applicable:
        return True, "no NetworkPolicy selects the pod"
    for pol in applicable:
        for rule in pol.spec.ingress or []:
            if not _port_ok(rule, port, protocol):
                continue
            peers = rule._from or []
            if not peers:
                return True, f"{pol.metadata.name} allows all sources"
            for peer in peers:
                if peer.ip_block is not None:
                    continue
                if peer.namespace_selector is not None:
                    ns_ok = matches_label_selector(peer.namespace_selector, src_ns_labels)
                else:
                    ns_ok = src_ns == policy_ns
                pod_ok = peer.pod_selector is None or matches_label_selector(
                    peer.pod_selector, src_labels
                )
                if ns_ok and pod_ok:
                    return True, f"{pol.metadata.name} allows the source"
    names = ", ".join(p.metadata.name for p in applicable)
    return False, f"denied by {names}"


class Isolate(KubeFault):
    """Create a deny-all NetworkPolicy for the target's pods (``whole_namespace: true``: all)."""

    def has_selector(self) -> bool:
        return bool(self.selector()) or bool(self.ctx.param("whole_namespace"))

    def _pod_selector(self) -> dict[str, Any]:
        return {} if self.ctx.param("whole_namespace") else to_label_selector(self.selector())

    def _name(self) -> str:
        return str(
            self._state.get("name") or f"drillbook-isolate-{short_hash(self.ns, self.selector())}"
        )

    def resolve(self) -> Selection:
        self.check_static()
        return Selection(chosen=(f"networkpolicy/{self.ns}/{self._name()}",), candidates=1)

    def plan(self) -> str:
        what = "every pod" if self.ctx.param("whole_namespace") else f"pods {self.selector()!r}"
        return f"isolate {what} in {self.ns} with deny-all NetworkPolicy {self._name()}"

    def inject(self) -> None:
        self.guard_inject()
        name = self._name()
        self._state["name"] = name
        types = self.ctx.param("policy_types") or ["Ingress", "Egress"]
        notes = {"drillbook.io/changed-by": self.token()}
        body = {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {
                "name": name,
                "namespace": self.ns,
                "labels": {**managed_labels(self.target.name), "drillbook.io/fault": "isolate"},
                "annotations": notes,
            },
            "spec": {"podSelector": self._pod_selector(), "policyTypes": list(types)},
        }
        try:
            self.kube.networking.create_namespaced_network_policy(self.ns, body, _request_timeout=T)
        except Exception as exc:
            if getattr(exc, "status", None) != 409:
                raise

    def _exists(self) -> bool:
        return (
            self.get(self.kube.networking.read_namespaced_network_policy, self._name(), self.ns)
            is not None
        )

    def verify_injected(self) -> bool:
        return self._exists()

    def revert(self) -> None:
        try:
            self.kube.networking.delete_namespaced_network_policy(
                self._name(), self.ns, _request_timeout=T
            )
        except Exception as exc:
            if not is_not_found(exc):
                raise

    def verify_reverted(self) -> bool:
        return not self._exists()


class TrafficAllowed(KubeProbe):
    """Ok when NetworkPolicies let the client reach at least ``min_pods`` of the target's pods."""

    def check(self) -> ProbeResult:
        start = get_clock().monotonic()
        p = self.ctx.params
        src_ns = str(p.get("from_namespace") or self.ns)
        src_labels = {str(k): str(v) for k, v in (p.get("from_labels") or {}).items()}
        port = p.get("port")
        min_pods = int(p.get("min_pods", 1))
        sel = p.get("selector") or self.target.selector
        if isinstance(sel, Mapping):
            sel = ",".join(f"{k}={v}" for k, v in sel.items())
        pods = [
            x
            for x in self.kube.core.list_namespaced_pod(
                self.ns, label_selector=sel or None, _request_timeout=T
            ).items
            if x.metadata.deletion_timestamp is None
        ]
        policies = self.kube.networking.list_namespaced_network_policy(
            self.ns, _request_timeout=T
        ).items
        src = self.get(self.kube.core.read_namespace, src_ns)
        src_ns_labels = (src.metadata.labels or {}) if src is not None else {}
        reachable, why = 0, "no pods match"
        for pod in pods:
            ok, why = ingress_allowed(
                policies,
                pod.metadata.labels or {},
                self.ns,
                src_ns,
                src_ns_labels,
                src_labels,
                port,
                str(p.get("protocol", "TCP")),
            )
            reachable += int(ok)
        ok = reachable >= min_pods
        detail = f"{reachable}/{len(pods)} pods reachable from {src_ns}"
        if not ok:
            detail += f": {why}"
        return ProbeResult(ok, get_clock().monotonic() - start, detail, reachable)


class DeleteNetworkPolicy(KubeStep):
    """Remove the NetworkPolicy that cut the service off: by ``name``, or every drillbook-made
    isolation policy for the target (the runbook step "find and delete the offending policy")."""

    def run(self) -> str:
        self.check()
        name = self.ctx.param("name")
        if name:
            names = [str(name)]
        else:
            sel = ",".join(f"{k}={v}" for k, v in MANAGED_BY.items())
            sel += ",drillbook.io/fault=isolate"
            names = [
                p.metadata.name
                for p in self.kube.networking.list_namespaced_network_policy(
                    self.ns, label_selector=sel, _request_timeout=T
                ).items
                if matches(f"drillbook.io/target={self.target.name}", p.metadata.labels)
            ]
        if not names:
            raise RecoveryError(f"no isolating NetworkPolicy found in {self.ns}")
        for n in names:
            try:
                self.kube.networking.delete_namespaced_network_policy(
                    n, self.ns, _request_timeout=T
                )
            except Exception as exc:
                if not is_not_found(exc):
                    raise RecoveryError(f"deleting NetworkPolicy {n}: {describe(exc)}") from exc
        return f"deleted NetworkPolicy {', '.join(names)} in {self.ns}"

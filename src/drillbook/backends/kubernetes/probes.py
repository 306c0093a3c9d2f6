"""Kubernetes probes: what the control plane says about a service's health.

They read status the controllers maintain (available replicas, Ready conditions, Endpoints), so
they detect what a Kubernetes-aware monitor would. They never raise for an unhealthy target;
API errors become a not-ok result through ``Probe.safe_check``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drillbook.clock import get_clock
from drillbook.model import ProbeResult

from .common import KubeProbe, T
from .rollout import complete

__all__ = ["DeploymentAvailable", "Endpoints", "PodsReady", "RolloutComplete"]


def _ready(pod: Any) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in (pod.status.conditions or []))


class _DeploymentProbe(KubeProbe):
    def _name(self) -> str:
        name = self.ctx.param("deployment") or self.target.deployment
        if not name:
            raise ValueError("no deployment: set `deployment:` on the probe or the target")
        return str(name)

    def _read(self) -> Any:
        return self.kube.apps.read_namespaced_deployment(self._name(), self.ns, _request_timeout=T)


class DeploymentAvailable(_DeploymentProbe):
    """Ok when available replicas >= ``min_available`` (default: the desired replica count)."""

    def check(self) -> ProbeResult:
        start = get_clock().monotonic()
        dep = self._read()
        want = self.ctx.param("min_available")
        if want is None:
            want = dep.spec.replicas if dep.spec.replicas is not None else 1
        have = dep.status.available_replicas or 0
        return ProbeResult(
            have >= want,
            get_clock().monotonic() - start,
            f"{self._name()}: {have} available, want >= {want}",
            have,
        )


class RolloutComplete(_DeploymentProbe):
    """Ok when the Deployment's latest rollout is complete (``kubectl rollout status``)."""

    def check(self) -> ProbeResult:
        start = get_clock().monotonic()
        ok, why = complete(self._read())
        return ProbeResult(ok, get_clock().monotonic() - start, f"{self._name()}: {why}")


class PodsReady(KubeProbe):
    """Ok when at least ``min_ready`` (default 1) pods are Ready; ``all: true`` also needs every
    matching, non-terminating pod Ready."""

    def check(self) -> ProbeResult:
        start = get_clock().monotonic()
        sel = self.ctx.param("selector") or self.target.selector
        if isinstance(sel, Mapping):
            sel = ",".join(f"{k}={v}" for k, v in sel.items())
        pods = [
            p
            for p in self.kube.core.list_namespaced_pod(
                self.ns, label_selector=sel or None, _request_timeout=T
            ).items
            if p.metadata.deletion_timestamp is None
        ]
        ready = sum(1 for p in pods if _ready(p))
        want = int(self.ctx.param("min_ready", 1))
        ok = ready >= want and (not self.ctx.param("all") or ready == len(pods))
        return ProbeResult(
            ok, get_clock().monotonic() - start, f"{ready}/{len(pods)} pods ready ({sel})", ready
        )


class Endpoints(KubeProbe):
    """Ok when the Service has at least ``min_ready`` ready endpoint addresses."""

    def check(self) -> ProbeResult:
        start = get_clock().monotonic()
        name = self.ctx.param("service") or self.target.service
        if not name:
            raise ValueError("no service: set `service:` on the probe or the target")
        ep = self.get_endpoints(str(name))
        ready = sum(len(s.addresses or []) for s in (ep.subsets or [])) if ep else 0
        not_ready = sum(len(s.not_ready_addresses or []) for s in (ep.subsets or [])) if ep else 0
        want = int(self.ctx.param("min_ready", 1))
        return ProbeResult(
            ready >= want,
            get_clock().monotonic() - start,
            f"service {name}: {ready} ready, {not_ready} not ready endpoints",
            ready,
        )

    def get_endpoints(self, name: str) -> Any:
        try:
            return self.kube.core.read_namespaced_endpoints(name, self.ns, _request_timeout=T)
        except Exception as exc:
            if getattr(exc, "status", None) == 404:
                return None
            raise

"""The Kubernetes backend: node, pod, rollout and isolation drills through the official client.

``register`` only records names, lazy factories and the schemas of :mod:`.schemas`; the fault,
probe and step modules, and the ``kubernetes`` package, are imported when one is first built (or
``available`` is asked), so ``import drillbook`` and a drill on another backend stay fast and
work without it. See docs/kubernetes.md for targets, settings and each fault's revert.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drillbook.backends.base import Registry, lazy

from . import schemas

__all__ = ["available", "register"]

BACKEND = "kubernetes"


def available(settings: Mapping[str, Any]) -> str | None:
    """None when a kubeconfig (or in-cluster config) reaches an apiserver; else why not."""
    try:
        import kubernetes  # noqa: F401
    except ImportError:
        return "the kubernetes Python client is not installed (pip install kubernetes)"
    from drillbook.errors import BackendUnavailable

    from .client import connect

    kubeconfig = settings.get("kubeconfig")
    context = settings.get("context")
    try:
        kube = connect(str(kubeconfig) if kubeconfig else None, str(context) if context else None)
        kube.version.get_code(_request_timeout=(2.0, 4.0))
    except BackendUnavailable as exc:
        return str(exc)
    except Exception as exc:
        reason = getattr(exc, "reason", None) or exc
        return f"apiserver not reachable: {type(exc).__name__}: {str(reason).splitlines()[0][:160]}"
    return None


def register(registry: Registry) -> None:
    """Name every fault, probe and step; the modules behind them load when a drill builds one."""
    registry.add_backend(
        BACKEND,
        available,
        "Kubernetes through a kubeconfig context or in-cluster config",
        prepare=lazy("drillbook.backends.kubernetes.prepare:prepare"),
    )
    add_f = registry.add_fault
    add_f(
        "k8s.delete_pods",
        BACKEND,
        lazy("drillbook.backends.kubernetes.pods:DeletePods"),
        help="delete N or P% of the selected pods",
        params_schema=schemas.DELETE_PODS,
    )
    add_f(
        "k8s.drain_node",
        BACKEND,
        lazy("drillbook.backends.kubernetes.nodes:DrainNode"),
        params_schema=schemas.DRAIN,
        help="cordon a node and evict its pods through the Eviction API (PDBs honoured)",
    )
    add_f(
        "k8s.cordon_node",
        BACKEND,
        lazy("drillbook.backends.kubernetes.nodes:CordonNode"),
        params_schema=schemas.NODE,
        help="mark a node unschedulable",
    )
    add_f(
        "k8s.node_not_ready",
        BACKEND,
        lazy("drillbook.backends.kubernetes.nodes:NodeNotReady"),
        params_schema=schemas.NODE,
        help="report a node NotReady (lasts until the kubelet's next status update)",
    )
    add_f(
        "k8s.scale",
        BACKEND,
        lazy("drillbook.backends.kubernetes.workloads:Scale"),
        params_schema=schemas.SCALE_FAULT,
        help="scale a Deployment/StatefulSet to N replicas; revert restores",
    )
    add_f(
        "k8s.bad_rollout",
        BACKEND,
        lazy("drillbook.backends.kubernetes.workloads:BadRollout"),
        params_schema=schemas.BAD_ROLLOUT,
        help="roll a Deployment to an image that never becomes ready",
    )
    add_f(
        "k8s.isolate",
        BACKEND,
        lazy("drillbook.backends.kubernetes.network:Isolate"),
        params_schema=schemas.ISOLATE,
        help="deny-all NetworkPolicy for the selected pods; revert deletes it",
    )
    add_f(
        "k8s.chaos_resource",
        BACKEND,
        lazy("drillbook.backends.kubernetes.chaos:ChaosResource"),
        params_schema=schemas.CHAOS_RESOURCE,
        help="create a Chaos Mesh / Litmus custom resource; revert deletes it",
    )

    add_p = registry.add_probe
    add_p(
        "k8s.deployment_available",
        BACKEND,
        lazy("drillbook.backends.kubernetes.probes:DeploymentAvailable"),
        params_schema=schemas.DEPLOYMENT_AVAILABLE,
        help="available replicas >= N",
    )
    add_p(
        "k8s.pods_ready",
        BACKEND,
        lazy("drillbook.backends.kubernetes.probes:PodsReady"),
        params_schema=schemas.PODS_READY,
        help="selected pods are Ready",
    )
    add_p(
        "k8s.endpoints",
        BACKEND,
        lazy("drillbook.backends.kubernetes.probes:Endpoints"),
        params_schema=schemas.ENDPOINTS,
        help="a Service has ready endpoints",
    )
    add_p(
        "k8s.rollout_complete",
        BACKEND,
        lazy("drillbook.backends.kubernetes.probes:RolloutComplete"),
        params_schema=schemas.ROLLOUT_COMPLETE,
        help="the Deployment's rollout is complete",
    )
    add_p(
        "k8s.traffic_allowed",
        BACKEND,
        lazy("drillbook.backends.kubernetes.network:TrafficAllowed"),
        params_schema=schemas.TRAFFIC_ALLOWED,
        help="NetworkPolicies let a client reach the selected pods (policy evaluation)",
    )

    add_r = registry.add_recovery
    add_r(
        "k8s.rollout_undo",
        BACKEND,
        lazy("drillbook.backends.kubernetes.recovery:RolloutUndo"),
        params_schema=schemas.ROLLOUT_UNDO,
        help="kubectl rollout undo: patch the previous ReplicaSet's template back",
    )
    add_r(
        "k8s.uncordon",
        BACKEND,
        lazy("drillbook.backends.kubernetes.recovery:Uncordon"),
        params_schema=schemas.UNCORDON,
        help="make cordoned nodes schedulable",
    )
    add_r(
        "k8s.scale",
        BACKEND,
        lazy("drillbook.backends.kubernetes.recovery:ScaleStep"),
        params_schema=schemas.SCALE_STEP,
        help="scale a workload to N replicas",
    )
    add_r(
        "k8s.delete_network_policy",
        BACKEND,
        lazy("drillbook.backends.kubernetes.network:DeleteNetworkPolicy"),
        help="delete the NetworkPolicy that isolated the service",
    )

"""The Kubernetes backend: node, pod, rollout and isolation drills through the official client.

``register`` only records names and factories; the ``kubernetes`` package is imported when a
fault, probe or step is first built (or ``available`` is asked), so ``import drillbook`` stays
fast and works without it. See docs/kubernetes.md for targets, settings and each fault's revert.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drillbook.backends.base import Registry

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
    from . import chaos, network, nodes, pods, probes, recovery, workloads
    from .prepare import prepare

    registry.add_backend(
        BACKEND,
        available,
        "Kubernetes through a kubeconfig context or in-cluster config",
        prepare=prepare,
    )
    add_f = registry.add_fault
    add_f(
        "k8s.delete_pods",
        BACKEND,
        pods.DeletePods,
        help="delete N or P% of the selected pods",
        params_schema=pods.SCHEMA,
    )
    add_f(
        "k8s.drain_node",
        BACKEND,
        nodes.DrainNode,
        params_schema=nodes.DRAIN_SCHEMA,
        help="cordon a node and evict its pods through the Eviction API (PDBs honoured)",
    )
    add_f(
        "k8s.cordon_node",
        BACKEND,
        nodes.CordonNode,
        params_schema=nodes.NODE_SCHEMA,
        help="mark a node unschedulable",
    )
    add_f(
        "k8s.node_not_ready",
        BACKEND,
        nodes.NodeNotReady,
        params_schema=nodes.NODE_SCHEMA,
        help="report a node NotReady (lasts until the kubelet's next status update)",
    )
    add_f(
        "k8s.scale",
        BACKEND,
        workloads.Scale,
        params_schema=workloads.SCALE_SCHEMA,
        help="scale a Deployment/StatefulSet to N replicas; revert restores",
    )
    add_f(
        "k8s.bad_rollout",
        BACKEND,
        workloads.BadRollout,
        params_schema=workloads.ROLLOUT_SCHEMA,
        help="roll a Deployment to an image that never becomes ready",
    )
    add_f(
        "k8s.isolate",
        BACKEND,
        network.Isolate,
        params_schema=network.ISOLATE_SCHEMA,
        help="deny-all NetworkPolicy for the selected pods; revert deletes it",
    )
    add_f(
        "k8s.chaos_resource",
        BACKEND,
        chaos.ChaosResource,
        params_schema=chaos.SCHEMA,
        help="create a Chaos Mesh / Litmus custom resource; revert deletes it",
    )

    add_p = registry.add_probe
    add_p(
        "k8s.deployment_available",
        BACKEND,
        probes.DeploymentAvailable,
        params_schema=probes.DEPLOYMENT_SCHEMA,
        help="available replicas >= N",
    )
    add_p(
        "k8s.pods_ready",
        BACKEND,
        probes.PodsReady,
        params_schema=probes.PODS_SCHEMA,
        help="selected pods are Ready",
    )
    add_p(
        "k8s.endpoints",
        BACKEND,
        probes.Endpoints,
        params_schema=probes.ENDPOINTS_SCHEMA,
        help="a Service has ready endpoints",
    )
    add_p(
        "k8s.rollout_complete",
        BACKEND,
        probes.RolloutComplete,
        params_schema=probes.ROLLOUT_SCHEMA,
        help="the Deployment's rollout is complete",
    )
    add_p(
        "k8s.traffic_allowed",
        BACKEND,
        network.TrafficAllowed,
        params_schema=network.TRAFFIC_SCHEMA,
        help="NetworkPolicies let a client reach the selected pods (policy evaluation)",
    )

    add_r = registry.add_recovery
    add_r(
        "k8s.rollout_undo",
        BACKEND,
        recovery.RolloutUndo,
        params_schema=recovery.UNDO_SCHEMA,
        help="kubectl rollout undo: patch the previous ReplicaSet's template back",
    )
    add_r(
        "k8s.uncordon",
        BACKEND,
        recovery.Uncordon,
        params_schema=recovery.UNCORDON_SCHEMA,
        help="make cordoned nodes schedulable",
    )
    add_r(
        "k8s.scale",
        BACKEND,
        recovery.ScaleStep,
        params_schema=recovery.SCALE_SCHEMA,
        help="scale a workload to N replicas",
    )
    add_r(
        "k8s.delete_network_policy",
        BACKEND,
        network.DeleteNetworkPolicy,
        help="delete the NetworkPolicy that isolated the service",
    )

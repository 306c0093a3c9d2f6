"""The Kubernetes backend: node, pod, rollout and isolation drills through the official client.

``register`` only records names, lazy factories and parameter schemas; the fault, probe and step
modules, and the ``kubernetes`` package, are imported when one is first built (or
``available`` is asked), so ``import drillbook`` and a drill on another backend stay fast and
work without it. See docs/kubernetes.md for targets, settings and each fault's revert.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drillbook.backends.base import DURATION, Registry, lazy, params
from drillbook.backends.selection import SELECTION_PARAMS

__all__ = ["available", "register"]

_NAME = {"type": "string", "minLength": 1}
#: A label selector: ``app=web,tier!=db`` or ``{app: web}``.
_SELECTOR = {"type": ["string", "object"]}
_WORKLOAD = {"kind": {"enum": ["Deployment", "StatefulSet"]}, "name": _NAME}
#: Node faults: ``node`` or ``node_selector`` (a subset, as every fault's), else the busiest
#: node(s) running the target's pods (``count``, default 1).
_NODE = {"node": _NAME, "node_selector": _SELECTOR, "selector": _SELECTOR, **SELECTION_PARAMS}


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
        "kubernetes",
        available,
        "Kubernetes through a kubeconfig context or in-cluster config",
        prepare=lazy("drillbook.backends.kubernetes.prepare:prepare"),
    )
    registry.add_fault(
        "k8s.delete_pods",
        "kubernetes",
        lazy("drillbook.backends.kubernetes.pods:DeletePods"),
        help="delete the selected pods (count, percent or every one)",
        params_schema=params(
            {
                "grace_period_s": {"type": "integer", "minimum": 0},
                "selector": _SELECTOR,
                **SELECTION_PARAMS,
            }
        ),
    )
    registry.add_fault(
        "k8s.drain_node",
        "kubernetes",
        lazy("drillbook.backends.kubernetes.nodes:DrainNode"),
        help="cordon a node and evict its pods through the Eviction API (PDBs honoured)",
        params_schema=params(
            {
                **_NODE,
                "scope": {"enum": ["namespace", "node"]},
                "eviction_timeout": DURATION,
                "grace_period_s": {"type": "integer", "minimum": 0},
            }
        ),
    )
    registry.add_fault(
        "k8s.cordon_node",
        "kubernetes",
        lazy("drillbook.backends.kubernetes.nodes:CordonNode"),
        help="mark a node unschedulable",
        params_schema=params(_NODE),
    )
    registry.add_fault(
        "k8s.node_not_ready",
        "kubernetes",
        lazy("drillbook.backends.kubernetes.nodes:NodeNotReady"),
        help="report a node NotReady (lasts until the kubelet's next status update)",
        params_schema=params(_NODE),
    )
    registry.add_fault(
        "k8s.scale",
        "kubernetes",
        lazy("drillbook.backends.kubernetes.workloads:Scale"),
        help="scale a Deployment/StatefulSet to N replicas; revert restores",
        params_schema=params(
            {"replicas": {"type": "integer", "minimum": 0}, **_WORKLOAD}, required=["replicas"]
        ),
    )
    registry.add_fault(
        "k8s.bad_rollout",
        "kubernetes",
        lazy("drillbook.backends.kubernetes.workloads:BadRollout"),
        help="roll a Deployment to an image that never becomes ready",
        params_schema=params({"image": _NAME, "container": _NAME, "name": _NAME}),
    )
    registry.add_fault(
        "k8s.isolate",
        "kubernetes",
        lazy("drillbook.backends.kubernetes.network:Isolate"),
        help="deny-all NetworkPolicy for the selected pods; revert deletes it",
        params_schema=params(
            {
                "selector": _SELECTOR,
                "whole_namespace": {"type": "boolean"},
                "policy_types": {
                    "type": "array",
                    "items": {"enum": ["Ingress", "Egress"]},
                    "minItems": 1,
                },
            }
        ),
    )
    registry.add_fault(
        "k8s.chaos_resource",
        "kubernetes",
        lazy("drillbook.backends.kubernetes.chaos:ChaosResource"),
        help="create a Chaos Mesh / Litmus custom resource; revert deletes it",
        params_schema=params(
            {"api_version": _NAME, "kind": _NAME, "spec": {"type": "object"}, "name": _NAME},
            required=["api_version", "kind", "spec"],
        ),
    )

    registry.add_probe(
        "k8s.deployment_available",
        "kubernetes",
        lazy("drillbook.backends.kubernetes.probes:DeploymentAvailable"),
        help="available replicas >= N",
        params_schema=params(
            {"deployment": _NAME, "min_available": {"type": "integer", "minimum": 0}}
        ),
    )
    registry.add_probe(
        "k8s.pods_ready",
        "kubernetes",
        lazy("drillbook.backends.kubernetes.probes:PodsReady"),
        help="selected pods are Ready",
        params_schema=params(
            {
                "selector": _SELECTOR,
                "min_ready": {"type": "integer", "minimum": 0},
                "all": {"type": "boolean"},
            }
        ),
    )
    registry.add_probe(
        "k8s.endpoints",
        "kubernetes",
        lazy("drillbook.backends.kubernetes.probes:Endpoints"),
        help="a Service has ready endpoints",
        params_schema=params({"service": _NAME, "min_ready": {"type": "integer", "minimum": 1}}),
    )
    registry.add_probe(
        "k8s.rollout_complete",
        "kubernetes",
        lazy("drillbook.backends.kubernetes.probes:RolloutComplete"),
        help="the Deployment's rollout is complete",
        params_schema=params({"deployment": _NAME}),
    )
    registry.add_probe(
        "k8s.traffic_allowed",
        "kubernetes",
        lazy("drillbook.backends.kubernetes.network:TrafficAllowed"),
        help="NetworkPolicies let a client reach the selected pods (policy evaluation)",
        params_schema=params(
            {
                "from_namespace": _NAME,
                "from_labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "port": {"oneOf": [{"type": "integer", "minimum": 1, "maximum": 65535}, _NAME]},
                "protocol": {"enum": ["TCP", "UDP", "SCTP"]},
                "min_pods": {"type": "integer", "minimum": 1},
                "selector": _SELECTOR,
            }
        ),
    )

    registry.add_recovery(
        "k8s.rollout_undo",
        "kubernetes",
        lazy("drillbook.backends.kubernetes.recovery:RolloutUndo"),
        help="kubectl rollout undo: patch the previous ReplicaSet's template back",
        params_schema=params(
            {
                "deployment": _NAME,
                "to_revision": {"type": "integer", "minimum": 0},
                "wait": {"type": "boolean"},
                "timeout": DURATION,
            }
        ),
    )
    registry.add_recovery(
        "k8s.uncordon",
        "kubernetes",
        lazy("drillbook.backends.kubernetes.recovery:Uncordon"),
        help="make cordoned nodes schedulable",
        params_schema=params({"node": _NAME, "node_selector": _SELECTOR}),
    )
    registry.add_recovery(
        "k8s.scale",
        "kubernetes",
        lazy("drillbook.backends.kubernetes.recovery:ScaleStep"),
        help="scale a workload to N replicas",
        params_schema=params(
            {
                "replicas": {"type": "integer", "minimum": 0},
                **_WORKLOAD,
                "wait": {"type": "boolean"},
                "timeout": DURATION,
            },
            required=["replicas"],
        ),
    )
    registry.add_recovery(
        "k8s.delete_network_policy",
        "kubernetes",
        lazy("drillbook.backends.kubernetes.network:DeleteNetworkPolicy"),
        help="delete the NetworkPolicy that isolated the service",
        params_schema=params({"name": _NAME}),
    )

"""The ``params`` JSON Schemas of the kubernetes faults, probes and recovery steps.

Why a module of their own: ``register`` needs them to name every fault, and ``drillbook validate``
checks scenarios against them, but neither should import the code that talks to an apiserver. So
this module imports nothing from the backend; the fault, probe and step modules do not need them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "BAD_ROLLOUT",
    "CHAOS_RESOURCE",
    "DELETE_PODS",
    "DEPLOYMENT_AVAILABLE",
    "DRAIN",
    "ENDPOINTS",
    "ISOLATE",
    "NODE",
    "PODS_READY",
    "ROLLOUT_COMPLETE",
    "ROLLOUT_UNDO",
    "SCALE_FAULT",
    "SCALE_STEP",
    "TRAFFIC_ALLOWED",
    "UNCORDON",
]

#: ``k8s.delete_pods``
DELETE_PODS: Mapping[str, Any] = {
    "type": "object",
    "properties": {
        "count": {"type": "integer", "minimum": 1},
        "percent": {"type": "number", "exclusiveMinimum": 0, "maximum": 100},
        "grace_period_s": {"type": "integer", "minimum": 0},
        "seed": {"type": "integer"},
        "selector": {"type": ["string", "object"]},
    },
    "additionalProperties": False,
}

#: ``k8s.cordon_node`` and ``k8s.node_not_ready``
NODE: Mapping[str, Any] = {
    "type": "object",
    "properties": {
        "node": {"type": "string"},
        "node_selector": {"type": ["string", "object"]},
        "count": {"type": "integer", "minimum": 1},
        "selector": {"type": ["string", "object"]},
    },
}

#: ``k8s.drain_node``
DRAIN: Mapping[str, Any] = {
    "type": "object",
    "properties": {
        **NODE["properties"],
        "scope": {"enum": ["namespace", "node"]},
        "eviction_timeout": {"type": ["string", "number"]},
        "grace_period_s": {"type": "integer", "minimum": 0},
    },
    "additionalProperties": False,
}

#: the ``k8s.scale`` fault
SCALE_FAULT: Mapping[str, Any] = {
    "type": "object",
    "properties": {
        "replicas": {"type": "integer", "minimum": 0},
        "kind": {"enum": ["Deployment", "StatefulSet"]},
        "name": {"type": "string"},
    },
    "required": ["replicas"],
    "additionalProperties": False,
}

#: ``k8s.bad_rollout``
BAD_ROLLOUT: Mapping[str, Any] = {
    "type": "object",
    "properties": {
        "image": {"type": "string"},
        "container": {"type": "string"},
        "name": {"type": "string"},
    },
    "additionalProperties": False,
}

#: ``k8s.isolate``
ISOLATE: Mapping[str, Any] = {
    "type": "object",
    "properties": {
        "selector": {"type": ["string", "object"]},
        "whole_namespace": {"type": "boolean"},
        "policy_types": {"type": "array", "items": {"enum": ["Ingress", "Egress"]}},
    },
    "additionalProperties": False,
}

#: ``k8s.chaos_resource``
CHAOS_RESOURCE: Mapping[str, Any] = {
    "type": "object",
    "properties": {
        "api_version": {"type": "string"},
        "kind": {"type": "string"},
        "spec": {"type": "object"},
        "name": {"type": "string"},
    },
    "required": ["api_version", "kind", "spec"],
    "additionalProperties": False,
}

#: ``k8s.deployment_available``
DEPLOYMENT_AVAILABLE: Mapping[str, Any] = {
    "type": "object",
    "properties": {
        "deployment": {"type": "string"},
        "min_available": {"type": "integer", "minimum": 0},
    },
    "additionalProperties": False,
}

#: ``k8s.pods_ready``
PODS_READY: Mapping[str, Any] = {
    "type": "object",
    "properties": {
        "selector": {"type": ["string", "object"]},
        "min_ready": {"type": "integer", "minimum": 0},
        "all": {"type": "boolean"},
    },
    "additionalProperties": False,
}

#: ``k8s.endpoints``
ENDPOINTS: Mapping[str, Any] = {
    "type": "object",
    "properties": {"service": {"type": "string"}, "min_ready": {"type": "integer", "minimum": 1}},
    "additionalProperties": False,
}

#: ``k8s.rollout_complete``
ROLLOUT_COMPLETE: Mapping[str, Any] = {
    "type": "object",
    "properties": {"deployment": {"type": "string"}},
    "additionalProperties": False,
}

#: ``k8s.traffic_allowed``
TRAFFIC_ALLOWED: Mapping[str, Any] = {
    "type": "object",
    "properties": {
        "from_namespace": {"type": "string"},
        "from_labels": {"type": "object"},
        "port": {"type": ["integer", "string"]},
        "protocol": {"enum": ["TCP", "UDP", "SCTP"]},
        "min_pods": {"type": "integer", "minimum": 1},
        "selector": {"type": ["string", "object"]},
    },
    "additionalProperties": False,
}

#: ``k8s.rollout_undo``
ROLLOUT_UNDO: Mapping[str, Any] = {
    "type": "object",
    "properties": {
        "deployment": {"type": "string"},
        "to_revision": {"type": "integer", "minimum": 0},
        "wait": {"type": "boolean"},
        "timeout": {"type": ["string", "number"]},
    },
    "additionalProperties": False,
}

#: ``k8s.uncordon``
UNCORDON: Mapping[str, Any] = {
    "type": "object",
    "properties": {"node": {"type": "string"}, "node_selector": {"type": ["string", "object"]}},
    "additionalProperties": False,
}

#: the ``k8s.scale`` recovery step
SCALE_STEP: Mapping[str, Any] = {
    "type": "object",
    "properties": {
        "replicas": {"type": "integer", "minimum": 0},
        "kind": {"enum": ["Deployment", "StatefulSet"]},
        "name": {"type": "string"},
        "wait": {"type": "boolean"},
        "timeout": {"type": ["string", "number"]},
    },
    "required": ["replicas"],
    "additionalProperties": False,
}

"""Rollout history and ``rollout undo`` for Deployments, done the way kubectl does it.

The Python client has no rollout undo (it is client-side logic in kubectl). kubectl's algorithm,
reproduced here: list the ReplicaSets the Deployment controls, read each one's
``deployment.kubernetes.io/revision``, pick the previous revision (the second highest) or the one
asked for, copy its pod template (minus the ``pod-template-hash`` label) and its annotations
(minus the revision bookkeeping ones) onto the Deployment with a JSON patch. The Deployment
controller then rolls back like any other rollout.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from drillbook.errors import RecoveryError

from .client import Kube
from .common import T

__all__ = ["Revision", "complete", "history", "undo"]

REVISION = "deployment.kubernetes.io/revision"
_SKIP_ANNOTATIONS = {
    REVISION,
    "deployment.kubernetes.io/revision-history",
    "deployment.kubernetes.io/desired-replicas",
    "deployment.kubernetes.io/max-replicas",
    "kubectl.kubernetes.io/last-applied-configuration",
}


@dataclass(frozen=True)
class Revision:
    number: int
    replicaset: str
    template: dict[str, Any]  # the pod template, plain JSON, pod-template-hash removed
    annotations: dict[str, str]


def _plain(kube: Kube, obj: Any) -> Any:
    return kube.api_client.sanitize_for_serialization(obj)


def _strip_hash(template: dict[str, Any]) -> dict[str, Any]:
    t = copy.deepcopy(template)
    labels = (t.get("metadata") or {}).get("labels") or {}
    labels.pop("pod-template-hash", None)
    return t


def history(kube: Kube, namespace: str, deployment: Any) -> list[Revision]:
    """The Deployment's revisions, oldest first (ReplicaSets it controls, by revision number)."""
    uid = deployment.metadata.uid
    sel = deployment.spec.selector.match_labels or {}
    label_selector = ",".join(f"{k}={v}" for k, v in sel.items()) or None
    rss = kube.apps.list_namespaced_replica_set(
        namespace, label_selector=label_selector, _request_timeout=T
    ).items
    out = []
    for rs in rss:
        if not any(o.uid == uid and o.controller for o in rs.metadata.owner_references or []):
            continue
        notes = rs.metadata.annotations or {}
        try:
            number = int(notes.get(REVISION, ""))
        except ValueError:
            continue
        out.append(
            Revision(
                number=number,
                replicaset=rs.metadata.name,
                template=_strip_hash(_plain(kube, rs.spec.template)),
                annotations={k: v for k, v in notes.items() if k not in _SKIP_ANNOTATIONS},
            )
        )
    return sorted(out, key=lambda r: r.number)


def undo(kube: Kube, namespace: str, name: str, to_revision: int = 0) -> str:
    """Roll the Deployment back to ``to_revision`` (0: the previous one); returns a detail line."""
    dep = kube.apps.read_namespaced_deployment(name, namespace, _request_timeout=T)
    if dep.spec.paused:
        raise RecoveryError(f"deployment {name} is paused; resume it before rolling back")
    revs = history(kube, namespace, dep)
    if not revs:
        raise RecoveryError(f"deployment {name} has no rollout history")
    if to_revision == 0:
        if len(revs) < 2:
            raise RecoveryError(f"deployment {name} has no previous revision to roll back to")
        target = revs[-2]
    else:
        found = [r for r in revs if r.number == to_revision]
        if not found:
            raise RecoveryError(f"deployment {name} has no revision {to_revision}")
        target = found[0]
    current = _strip_hash(_plain(kube, dep.spec.template))
    if current == target.template:
        return f"skipped rollback of {name}: template already matches revision {target.number}"
    notes = dict(dep.metadata.annotations or {})
    notes.update(target.annotations)
    patch = [
        {"op": "replace", "path": "/spec/template", "value": target.template},
        {"op": "replace", "path": "/metadata/annotations", "value": notes},
    ]
    kube.apps.patch_namespaced_deployment(name, namespace, patch, _request_timeout=T)
    return f"rolled back deployment {name} to revision {target.number} ({target.replicaset})"


def complete(dep: Any) -> tuple[bool, str]:
    """``kubectl rollout status`` for a Deployment: (done, why not)."""
    spec, status = dep.spec, dep.status
    want = spec.replicas if spec.replicas is not None else 1
    if (status.observed_generation or 0) < (dep.metadata.generation or 0):
        return False, "waiting for the controller to observe the new generation"
    for c in status.conditions or []:
        if c.type == "Progressing" and c.reason == "ProgressDeadlineExceeded":
            return False, f"progress deadline exceeded: {c.message}"
    updated = status.updated_replicas or 0
    total = status.replicas or 0
    available = status.available_replicas or 0
    if updated < want:
        return False, f"{updated} of {want} updated replicas"
    if total > updated:
        return False, f"{total - updated} old replicas pending termination"
    if available < updated:
        return False, f"{available} of {updated} updated replicas available"
    return True, f"{available}/{want} available, rollout complete"

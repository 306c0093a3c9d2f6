"""Create-or-update manifests through discovery, picking the API version the cluster serves.

Why: CronJob moved to ``batch/v1`` in 1.21 and PodDisruptionBudget to ``policy/v1`` in 1.21;
``batch/v1beta1`` and ``policy/v1beta1`` were removed in 1.25. drillbook ships manifests in the
current versions and this module downgrades them for older clusters (the test apiserver is 1.20),
so one set of files serves both. The two versions have the same shape for the fields we use.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .client import REQUEST_TIMEOUT, Kube

__all__ = ["FALLBACKS", "apply_manifests", "served_api_version"]

#: kind -> (group, versions newest first, resource plural)
FALLBACKS: Mapping[str, tuple[str, tuple[str, ...], str]] = {
    "CronJob": ("batch", ("v1", "v1beta1"), "cronjobs"),
    "PodDisruptionBudget": ("policy", ("v1", "v1beta1"), "poddisruptionbudgets"),
}


def served_api_version(kube: Kube, kind: str, api_version: str) -> str:
    """The apiVersion to use for ``kind``: as written if served, else the newest served fallback."""
    if kind not in FALLBACKS:
        return api_version
    group, versions, plural = FALLBACKS[kind]
    wanted = api_version.partition("/")[2]
    order = (wanted, *[v for v in versions if v != wanted])
    chosen = kube.first_served(group, order, plural)
    return f"{group}/{chosen}" if chosen else api_version


def apply_manifests(
    kube: Kube, docs: Iterable[Mapping[str, Any]], namespace: str | None = None
) -> list[str]:
    """Create each object, or merge-patch it when it exists; returns ``kind/ns/name (apiVersion)``."""
    import importlib

    dynamic: Any = importlib.import_module("kubernetes.dynamic")
    conflict: Any = importlib.import_module("kubernetes.dynamic.exceptions").ConflictError

    dyn = dynamic.DynamicClient(kube.api_client)
    done = []
    for raw in docs:
        if not raw:
            continue
        doc = dict(raw)
        kind = str(doc["kind"])
        doc["apiVersion"] = served_api_version(kube, kind, str(doc["apiVersion"]))
        resource = dyn.resources.get(api_version=doc["apiVersion"], kind=kind)
        meta = dict(doc.get("metadata") or {})
        ns = meta.get("namespace") or (namespace if resource.namespaced else None)
        if resource.namespaced and ns:
            meta["namespace"] = ns
            doc["metadata"] = meta
        try:
            resource.create(body=doc, namespace=ns, _request_timeout=REQUEST_TIMEOUT)
        except conflict:
            resource.patch(
                body=doc,
                name=meta["name"],
                namespace=ns,
                content_type="application/merge-patch+json",
                _request_timeout=REQUEST_TIMEOUT,
            )
        done.append(f"{kind}/{ns or '-'}/{meta['name']} ({doc['apiVersion']})")
    return done

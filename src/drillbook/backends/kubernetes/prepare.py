"""Session set-up for sandbox targets: the demo workload the Kubernetes drills act on.

For each target with ``sandbox: true`` (and only when the environment is ``sandbox`` and the
namespace is allowlisted) it creates, if absent, the namespace (with the opt-in label when one is
configured), a Deployment, a Service and a PodDisruptionBudget (minAvailable = replicas − 1, so a
drain must respect it), waits until the Deployment is available, and on exit deletes exactly what
it created. Objects that already existed are left alone. The Deployment has ``minReadySeconds: 10``,
a warm-up as real services have: a replacement pod counts as available 10 s after it is Ready.
Without it a drain of pause containers on a real kubelet recovers before the drain itself returns
(the eviction of the last pod waits for the earlier ones' replacements, the PodDisruptionBudget),
and the engine, which times from the end of the injection, sees nothing to detect. The pod template also carries
``drillbook.io/fake-ready-delay: "2"`` for the kubelet stand-in; real kubelets ignore it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from drillbook.backends.base import Context
from drillbook.errors import BackendUnavailable, ConfigError

from .common import T, is_not_found, managed_labels, wait_until
from .manifests import apply_manifests
from .selectors import parse
from .targets import KubeTarget, Scope, opt_in_rule

__all__ = ["demo_manifests", "prepare"]

log = logging.getLogger("drillbook.kubernetes")

#: The sandbox Deployment's minReadySeconds (see the module docstring).
WARM_UP_S = 10


def _labels(target: KubeTarget) -> dict[str, str]:
    labels = {}
    for r in parse(target.selector):
        if r.op != "In" or len(r.values) != 1:
            raise ConfigError(
                "a sandbox target needs an equality selector (app=name)",
                field=f"targets.{target.name}.selector",
            )
        labels[r.key] = r.values[0]
    return labels or {"app": target.deployment or target.name}


def demo_manifests(target: KubeTarget) -> list[dict[str, Any]]:
    """Deployment, Service and PodDisruptionBudget for a sandbox target."""
    labels = _labels(target)
    name = target.deployment or target.name
    meta = {
        "name": name,
        "namespace": target.namespace,
        "labels": {**labels, **managed_labels(target.name)},
    }
    docs: list[dict[str, Any]] = [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": meta,
            "spec": {
                "replicas": target.replicas,
                "selector": {"matchLabels": labels},
                "revisionHistoryLimit": 10,
                "minReadySeconds": WARM_UP_S,
                "progressDeadlineSeconds": 600,
                # Keep serving during a bad rollout: surge one new pod, never take an old one down.
                "strategy": {
                    "type": "RollingUpdate",
                    "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
                },
                "template": {
                    "metadata": {
                        "labels": labels,
                        "annotations": {"drillbook.io/fake-ready-delay": "2"},
                    },
                    "spec": {
                        "automountServiceAccountToken": False,
                        "terminationGracePeriodSeconds": 5,
                        "containers": [
                            {
                                "name": "app",
                                "image": target.image,
                                "ports": [{"name": "http", "containerPort": 8080}],
                            }
                        ],
                    },
                },
            },
        }
    ]
    if target.service:
        docs.append(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {**meta, "name": target.service},
                "spec": {
                    "selector": labels,
                    "ports": [{"name": "http", "port": 80, "targetPort": "http"}],
                },
            }
        )
    if target.replicas > 1:
        docs.append(
            {
                "apiVersion": "policy/v1",
                "kind": "PodDisruptionBudget",
                "metadata": meta,
                "spec": {"minAvailable": target.replicas - 1, "selector": {"matchLabels": labels}},
            }
        )
    return docs


def _opt_in(scope: Scope) -> dict[str, str]:
    raw, _ = opt_in_rule(scope.settings)
    if not raw:
        return {}
    key, _, value = str(raw).partition("=")
    return {key: value or "true"}


@contextmanager
def prepare(ctx: Context) -> Iterator[None]:
    scope = Scope.from_settings(ctx.settings)
    created: list[tuple[KubeTarget, str, str]] = []  # (target, kind, name)
    try:
        for spec in ctx.targets:
            target = KubeTarget.from_spec(spec)
            if not target.sandbox:
                continue
            if ctx.environment != "sandbox":
                log.warning(
                    "target %s: sandbox: true ignored outside a sandbox environment", target.name
                )
                continue
            scope.check_static(target, ctx.workdir)
            created += _ensure(ctx, target, scope)
        yield
    finally:
        _teardown(ctx, created)


def _ensure(ctx: Context, target: KubeTarget, scope: Scope) -> list[tuple[KubeTarget, str, str]]:
    kube = target.kube(ctx.workdir)
    made: list[tuple[KubeTarget, str, str]] = []

    def ns_gone() -> bool:
        try:
            ns = kube.core.read_namespace(target.namespace, _request_timeout=T)
        except Exception as exc:
            if is_not_found(exc):
                return True
            raise
        return not (ns.status and ns.status.phase == "Terminating")

    wait_until(ctx, f"namespace {target.namespace} to finish terminating", ns_gone, 120, 0.5)
    try:
        kube.core.read_namespace(target.namespace, _request_timeout=T)
    except Exception as exc:
        if not is_not_found(exc):
            raise
        body = {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": target.namespace,
                "labels": {**managed_labels(target.name), **_opt_in(scope)},
            },
        }
        kube.core.create_namespace(body, _request_timeout=T)
        made.append((target, "Namespace", target.namespace))

    def has_sa() -> bool:  # pods are refused until the namespace's default ServiceAccount exists
        try:
            kube.core.read_namespaced_service_account(
                "default", target.namespace, _request_timeout=T
            )
            return True
        except Exception as exc:
            if is_not_found(exc):
                return False
            raise

    wait_until(ctx, f"the default ServiceAccount in {target.namespace}", has_sa, 60)
    ns_created = bool(made)
    for doc in demo_manifests(target):
        kind, name = doc["kind"], doc["metadata"]["name"]
        if not ns_created and _exists(kube, kind, name, target.namespace):
            continue
        apply_manifests(kube, [doc])
        if not ns_created:
            made.append((target, kind, name))

    def available() -> bool:
        dep = kube.apps.read_namespaced_deployment(
            target.deployment or target.name, target.namespace, _request_timeout=T
        )
        return (dep.status.available_replicas or 0) >= target.replicas

    try:
        wait_until(
            ctx,
            f"sandbox deployment in {target.namespace} to become available",
            available,
            120,
            0.5,
        )
    except Exception as exc:
        raise BackendUnavailable(f"{exc} (are nodes registered and a kubelet running?)") from exc
    log.info("kubernetes sandbox ready: %s", ", ".join(f"{k}/{n}" for _, k, n in made) or "reused")
    return made


def _exists(kube: Any, kind: str, name: str, ns: str) -> bool:
    from .manifests import served_api_version

    try:
        if kind == "Deployment":
            kube.apps.read_namespaced_deployment(name, ns, _request_timeout=T)
        elif kind == "Service":
            kube.core.read_namespaced_service(name, ns, _request_timeout=T)
        else:
            group, _, version = served_api_version(kube, kind, "policy/v1").partition("/")
            kube.custom.get_namespaced_custom_object(
                group, version, ns, "poddisruptionbudgets", name, _request_timeout=T
            )
        return True
    except Exception as exc:
        if is_not_found(exc):
            return False
        raise


def _teardown(ctx: Context, created: list[tuple[KubeTarget, str, str]]) -> None:
    for target, kind, name in reversed(created):
        kube = target.kube(ctx.workdir)
        try:
            if kind == "Namespace":
                kube.core.delete_namespace(name, _request_timeout=T)
            elif kind == "Deployment":
                kube.apps.delete_namespaced_deployment(name, target.namespace, _request_timeout=T)
            elif kind == "Service":
                kube.core.delete_namespaced_service(name, target.namespace, _request_timeout=T)
            else:
                from .manifests import served_api_version

                group, _, version = served_api_version(kube, kind, "policy/v1").partition("/")
                kube.custom.delete_namespaced_custom_object(
                    group,
                    version,
                    target.namespace,
                    "poddisruptionbudgets",
                    name,
                    _request_timeout=T,
                )
        except Exception as exc:
            if not is_not_found(exc):
                log.warning("kubernetes sandbox teardown: %s %s: %s", kind, name, exc)

"""Helpers for the Kubernetes backend tests (fixtures live in conftest.py).

Safety for the tests themselves: they run only when ``$KUBECONFIG`` is set explicitly and its
current context is the test environment's (``drillbook-local``, or ``DRILLBOOK_K8S_TEST_CONTEXT``),
so a developer's own cluster in ``~/.kube/config`` is never touched. Each test gets its own
namespace, deleted afterwards.
"""

from __future__ import annotations

import copy
import os
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from drillbook.backends.base import Context
from drillbook.model import TargetSpec

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes"

TEST_CONTEXT = os.environ.get("DRILLBOOK_K8S_TEST_CONTEXT", "drillbook-local")
OPT_IN = {"drillbook.io/drills": "allowed"}
T = (3.05, 15.0)


@dataclass
class KubeEnv:
    kubeconfig: str
    context: str
    server: str
    kube: Any


def unavailable_reason() -> str | None:
    if not os.environ.get("KUBECONFIG"):
        return 'KUBECONFIG is not set (run: eval "$(scripts/testenv up k8s)")'
    from drillbook.backends.kubernetes import available
    from drillbook.backends.kubernetes.client import read_identity
    from drillbook.errors import BackendUnavailable

    try:
        ident = read_identity(None, None)
    except BackendUnavailable as exc:
        return str(exc)
    if ident.context != TEST_CONTEXT:
        return f"current context is {ident.context!r}, not the test cluster {TEST_CONTEXT!r}"
    return available({})


def wait_for(what: str, cond: Callable[[], bool], timeout: float = 60.0) -> None:
    """Poll (bounded); the bound is a safety net, not a timed assertion."""
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def make_namespace(kube: Any, labels: Mapping[str, str] | None = None) -> str:
    name = f"dbk-t-{secrets.token_hex(3)}"
    kube.core.create_namespace(
        {"metadata": {"name": name, "labels": dict(labels or {})}}, _request_timeout=T
    )

    def has_sa() -> bool:
        try:
            kube.core.read_namespaced_service_account("default", name, _request_timeout=T)
            return True
        except Exception:
            return False

    wait_for(f"default ServiceAccount in {name}", has_sa)
    return name


def target_params(namespace: str, **extra: Any) -> dict[str, Any]:
    params: dict[str, Any] = {
        "namespace": namespace,
        "selector": "app=demo",
        "deployment": "demo",
        "service": "demo",
        "replicas": 3,
    }
    params.update(extra)
    return params


def settings_for(env: KubeEnv, namespaces: list[str], **extra: Any) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "allowed_contexts": [env.context],
        "allowed_namespaces": namespaces,
        "opt_in_label": "drillbook.io/drills=allowed",
    }
    settings.update(extra)
    return settings


def make_ctx(
    env: KubeEnv,
    namespace: str,
    params: Mapping[str, Any] | None = None,
    *,
    allowed: list[str] | None = None,
    target: Mapping[str, Any] | None = None,
    settings: Mapping[str, Any] | None = None,
    deadline_s: float = 120.0,
) -> Context:
    tp = dict(target) if target is not None else target_params(namespace)
    st = dict(settings) if settings is not None else settings_for(env, allowed or [namespace])
    return Context(
        params=dict(params or {}),
        targets=(TargetSpec("demo", "kubernetes", tp),),
        settings=st,
        deadline=time.monotonic() + deadline_s,
    )


def deploy_demo(env: KubeEnv, namespace: str, replicas: int = 3, ready_delay: str = "0.3") -> None:
    """The sandbox demo Deployment/Service/PDB, with a short stand-in ready delay."""
    from drillbook.backends.kubernetes.manifests import apply_manifests
    from drillbook.backends.kubernetes.prepare import demo_manifests
    from drillbook.backends.kubernetes.targets import KubeTarget

    target = KubeTarget.from_spec(
        TargetSpec("demo", "kubernetes", target_params(namespace, replicas=replicas))
    )
    docs = demo_manifests(target)
    docs[0]["spec"]["minReadySeconds"] = 0  # the drills' warm-up; these tests need none
    docs[0]["spec"]["template"]["metadata"]["annotations"]["drillbook.io/fake-ready-delay"] = (
        ready_delay
    )
    apply_manifests(env.kube, docs)
    wait_for("demo deployment available", lambda: available_replicas(env, namespace) >= replicas)


def node_names(env: KubeEnv) -> list[str]:
    """The test cluster's nodes, sorted (real kubelets drill-node-1/2, or the stand-in's a/b/c)."""
    return sorted(n.metadata.name for n in env.kube.core.list_node(_request_timeout=T).items)


def available_replicas(env: KubeEnv, namespace: str, name: str = "demo") -> int:
    dep = env.kube.apps.read_namespaced_deployment(name, namespace, _request_timeout=T)
    return int(dep.status.available_replicas or 0)


def deploy_docs(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((DEPLOY / name).read_text()) if d]


def kustomized() -> list[dict[str, Any]]:
    kust = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())
    return [d for f in kust["resources"] for d in deploy_docs(f)]


def rewrite_for_test(
    docs: list[dict[str, Any]], runner: str, allowed: str, suffix: str
) -> list[dict[str, Any]]:
    """Point the shipped manifests at this test's namespaces (and unique cluster-scoped names)."""
    out = []
    for raw in docs:
        d = copy.deepcopy(raw)
        meta = d["metadata"]
        if d["kind"] == "Namespace":
            continue  # the test made its own
        if meta.get("namespace") == "drillbook":
            meta["namespace"] = runner
        elif meta.get("namespace") == "drillbook-demo":
            meta["namespace"] = allowed
        if d["kind"] in ("ClusterRole", "ClusterRoleBinding"):
            meta["name"] += suffix
        if d["kind"] == "ClusterRoleBinding":
            d["roleRef"]["name"] += suffix
        for subject in d.get("subjects") or []:
            subject["namespace"] = runner
        for rule in d.get("rules") or []:
            if rule.get("resourceNames") == ["drillbook-demo"]:
                rule["resourceNames"] = [allowed]
        out.append(d)
    return out

"""deploy/kubernetes: the manifests apply to a real apiserver, and the ServiceAccount they create
can act only in the allowed namespaces (checked with SubjectAccessReview, as the apiserver's
own RBAC authorizer decides it)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from k8s_kit import (
    OPT_IN,
    KubeEnv,
    T,
    deploy_demo,
    deploy_docs,
    kustomized,
    make_namespace,
    rewrite_for_test,
    target_params,
    wait_for,
)

from drillbook.backends.kubernetes.targets import KubeTarget, Scope
from drillbook.config import Overrides, load_config


def test_legacy_cronjob_is_the_same_job() -> None:
    (new,) = deploy_docs("cronjob.yaml")
    (old,) = deploy_docs("legacy/cronjob-batch-v1beta1.yaml")
    assert new["apiVersion"] == "batch/v1" and old["apiVersion"] == "batch/v1beta1"
    assert {**old, "apiVersion": "batch/v1"} == new


def test_configmap_carries_a_valid_fail_closed_config(tmp_path: Path) -> None:
    (cm,) = deploy_docs("configmap.yaml")
    path = tmp_path / "drillbook.yaml"
    path.write_text(cm["data"]["drillbook.yaml"])
    cfg = load_config(Overrides(config_path=path), workdir=tmp_path)
    settings = cfg.backend_settings("kubernetes")
    scope = Scope.from_settings(settings)
    assert scope.contexts == ("in-cluster",)
    target = KubeTarget.from_spec(cfg.target("k8s-demo"))
    scope.check_namespace(target.namespace)  # the target is inside its own allowlist
    assert scope.opt_in_configured
    # Every namespace the Roles grant is allowlisted, and vice versa.
    roles = [d for d in deploy_docs("rbac.yaml") if d["kind"] == "Role"]
    leases = [d for d in roles if d["metadata"]["name"] == "drillbook-target-locks"]
    granted = {d["metadata"]["namespace"] for d in roles if d not in leases}
    assert granted == set(scope.namespaces)
    # The target locks' Role grants Leases only, in the namespace safety.lock names.
    assert cfg.safety.lock is not None
    assert [d["metadata"]["namespace"] for d in leases] == [cfg.safety.lock.namespace]
    assert [r["resources"] for r in leases[0]["rules"]] == [["leases"]]


@pytest.fixture
def applied(kube_env: KubeEnv) -> Iterator[tuple[str, str, str, list[str]]]:
    kube = kube_env.kube
    runner = make_namespace(kube)
    allowed = make_namespace(kube, OPT_IN)
    other = make_namespace(kube, OPT_IN)
    suffix = f"-{secrets.token_hex(3)}"
    from drillbook.backends.kubernetes.manifests import apply_manifests

    docs = rewrite_for_test(kustomized(), runner, allowed, suffix)
    done = apply_manifests(kube, docs)
    yield runner, allowed, other, done
    for ns in (runner, allowed, other):
        kube.core.delete_namespace(ns, _request_timeout=T)
    from kubernetes import client

    rbac = client.RbacAuthorizationV1Api(kube.api_client)
    rbac.delete_cluster_role_binding(f"drillbook-read-allowed-namespaces{suffix}")
    rbac.delete_cluster_role(f"drillbook-read-allowed-namespaces{suffix}")


def _allowed(
    kube: Any,
    user: str,
    verb: str,
    resource: str,
    namespace: str | None = None,
    name: str | None = None,
    subresource: str | None = None,
    group: str = "",
) -> bool:
    attrs: dict[str, Any] = {"verb": verb, "resource": resource, "group": group}
    if namespace:
        attrs["namespace"] = namespace
    if name:
        attrs["name"] = name
    if subresource:
        attrs["subresource"] = subresource
    body = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": user,
            "groups": ["system:serviceaccounts", "system:authenticated"],
            "resourceAttributes": attrs,
        },
    }
    res = kube.authz.create_subject_access_review(body, _request_timeout=T)
    return bool(res.status.allowed)


def test_manifests_apply_and_rbac_is_namespace_scoped(
    kube_env: KubeEnv, applied: tuple[str, str, str, list[str]]
) -> None:
    runner, allowed, other, done = applied
    kube = kube_env.kube
    # The CronJob went in through the served version: batch/v1beta1 on this 1.20 apiserver.
    cron = [d for d in done if d.startswith("CronJob/")]
    served = kube.first_served("batch", ("v1", "v1beta1"), "cronjobs")
    assert cron == [f"CronJob/{runner}/drillbook-drills (batch/{served})"]
    job = kube.custom.get_namespaced_custom_object(
        "batch", served, runner, "cronjobs", "drillbook-drills", _request_timeout=T
    )
    assert (
        job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["serviceAccountName"] == "drillbook"
    )
    kube.core.read_namespaced_service_account("drillbook", runner, _request_timeout=T)

    sa = f"system:serviceaccount:{runner}:drillbook"
    can = lambda *a, **k: _allowed(kube, sa, *a, **k)  # noqa: E731
    # What drills need, in the allowed namespace only.
    assert can("delete", "pods", allowed)
    assert can("create", "pods", allowed, subresource="eviction")
    assert can("patch", "deployments", allowed, group="apps")
    assert can("create", "networkpolicies", allowed, group="networking.k8s.io")
    assert can("get", "namespaces", name=allowed)
    # Nowhere else.
    assert not can("delete", "pods", other)
    assert not can("delete", "pods", runner)
    assert not can("delete", "pods", "kube-system")
    assert not can("patch", "deployments", other, group="apps")
    assert not can("get", "namespaces", name=other)
    assert not can("get", "secrets", allowed)
    # Node drills are a separate, optional grant (rbac-nodes.yaml), not applied here.
    assert not can("patch", "nodes")
    assert not can("delete", "deployments", allowed, group="apps")


def _sa_kubeconfig(env: KubeEnv, runner: str, path: Path) -> str:
    """A kubeconfig holding the ServiceAccount's own token: what the CronJob's pod would use."""
    import base64

    kube = env.kube

    def token_secret() -> str | None:
        sa = kube.core.read_namespaced_service_account("drillbook", runner, _request_timeout=T)
        return sa.secrets[0].name if sa.secrets else None

    wait_for("the ServiceAccount token", lambda: token_secret() is not None)
    secret = kube.core.read_namespaced_secret(token_secret(), runner, _request_timeout=T)
    token = base64.b64decode(secret.data["token"]).decode()
    admin = yaml.safe_load(Path(env.kubeconfig).read_text())
    cluster = admin["clusters"][0]["cluster"]
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": cluster}],
                "users": [{"name": "sa", "user": {"token": token}}],
                "contexts": [{"name": "drillbook-sa", "context": {"cluster": "c", "user": "sa"}}],
                "current-context": "drillbook-sa",
            }
        )
    )
    path.chmod(0o600)
    return str(path)


def test_the_service_account_can_run_namespace_drills_and_nothing_more(
    kube_env: KubeEnv, applied: tuple[str, str, str, list[str]], tmp_path: Path
) -> None:
    """The RBAC is not only narrow but sufficient: drills run with the SA's own token."""
    from drillbook.backends.base import Context, get_registry
    from drillbook.model import TargetSpec

    runner, allowed, other, _ = applied
    deploy_demo(kube_env, allowed)
    deploy_demo(kube_env, other)
    kubeconfig = _sa_kubeconfig(kube_env, runner, tmp_path / "sa.kubeconfig")
    reg = get_registry()

    def ctx(ns: str, params: dict[str, Any] | None = None) -> Context:
        target = {**target_params(ns), "kubeconfig": kubeconfig, "context": "drillbook-sa"}
        return Context(
            params=params or {},
            targets=(TargetSpec("demo", "kubernetes", target),),
            # A misconfigured allowlist that includes `other`: RBAC is the second wall.
            settings={
                "allowed_contexts": ["drillbook-sa"],
                "allowed_namespaces": [allowed, other],
                "opt_in_label": "drillbook.io/drills=allowed",
            },
        )

    kill = reg.fault("k8s.delete_pods").factory(ctx(allowed, {"count": 1, "grace_period_s": 0}))
    kill.resolve()
    kill.preflight()
    kill.inject()
    wait_for("pod deleted", kill.verify_injected)
    bad = reg.fault("k8s.bad_rollout").factory(ctx(allowed))
    bad.resolve()
    bad.preflight()
    bad.inject()
    assert "rolled back" in reg.recovery("k8s.rollout_undo").factory(ctx(allowed)).run()
    iso = reg.fault("k8s.isolate").factory(ctx(allowed))
    iso.resolve()
    iso.preflight()
    iso.inject()
    assert not reg.probe("k8s.traffic_allowed").factory(ctx(allowed)).safe_check().ok
    iso.revert()
    assert iso.verify_reverted()
    probe = reg.probe("k8s.deployment_available").factory(ctx(allowed))
    wait_for("demo available again", lambda: probe.safe_check().ok)

    # In the other namespace the apiserver itself refuses (403), before anything changes.
    before = sorted(p.metadata.uid for p in kube_env.kube.core.list_namespaced_pod(other).items)
    outside = reg.fault("k8s.delete_pods").factory(ctx(other, {"count": 1}))
    with pytest.raises(Exception) as refused:
        outside.resolve()
        outside.preflight()
        outside.inject()
    assert getattr(refused.value, "status", None) == 403
    after = sorted(p.metadata.uid for p in kube_env.kube.core.list_namespaced_pod(other).items)
    assert after == before
    res = reg.probe("k8s.deployment_available").factory(ctx(other)).safe_check()
    assert not res.ok and res.detail.startswith("HTTP 403")

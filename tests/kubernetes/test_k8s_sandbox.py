"""The backend's session ``prepare``: creates what a sandbox target lacks, deletes only that."""

from __future__ import annotations

import secrets

import pytest
from k8s_kit import OPT_IN, KubeEnv, T, available_replicas, make_namespace, settings_for, wait_for

from drillbook.backends.base import Context, get_registry
from drillbook.errors import SafetyError
from drillbook.model import TargetSpec


def _ctx(env: KubeEnv, ns: str, allowed: list[str], environment: str = "sandbox") -> Context:
    params = {
        "namespace": ns,
        "selector": "app=sbx",
        "deployment": "sbx",
        "service": "sbx",
        "replicas": 2,
        "sandbox": True,
    }
    return Context(
        params={},
        targets=(TargetSpec("sbx", "kubernetes", params),),
        environment=environment,
        settings=settings_for(env, allowed),
    )


def _exists(fn: object, *args: str) -> bool:
    try:
        fn(*args, _request_timeout=T)  # type: ignore[operator]
        return True
    except Exception as exc:
        if getattr(exc, "status", None) == 404:
            return False
        raise


def _ns_gone_or_terminating(env: KubeEnv, ns: str) -> bool:
    try:
        obj = env.kube.core.read_namespace(ns, _request_timeout=T)
    except Exception as exc:
        return getattr(exc, "status", None) == 404
    return obj.status.phase == "Terminating"


def test_prepare_creates_the_demo_and_deletes_what_it_made(kube_env: KubeEnv) -> None:
    prepare = get_registry().backends["kubernetes"].prepare
    assert prepare is not None
    ns = f"dbk-sbx-{secrets.token_hex(3)}"
    kube = kube_env.kube
    with prepare(_ctx(kube_env, ns, [ns])):
        labels = kube.core.read_namespace(ns, _request_timeout=T).metadata.labels
        assert labels["drillbook.io/drills"] == "allowed"  # the configured opt-in
        assert available_replicas(kube_env, ns, "sbx") == 2
        assert _exists(kube.core.read_namespaced_service, "sbx", ns)
        version = kube.first_served("policy", ("v1", "v1beta1"), "poddisruptionbudgets")
        pdb = kube.custom.get_namespaced_custom_object(
            "policy", version, ns, "poddisruptionbudgets", "sbx", _request_timeout=T
        )
        assert pdb["spec"]["minAvailable"] == 1
    wait_for("the sandbox namespace to go", lambda: _ns_gone_or_terminating(kube_env, ns))


def test_prepare_leaves_existing_objects_alone(kube_env: KubeEnv) -> None:
    prepare = get_registry().backends["kubernetes"].prepare
    assert prepare is not None
    kube = kube_env.kube
    ns = make_namespace(kube, OPT_IN)
    try:
        kube.core.create_namespaced_service(
            ns,
            {"metadata": {"name": "sbx"}, "spec": {"ports": [{"port": 80}]}},
            _request_timeout=T,
        )
        with prepare(_ctx(kube_env, ns, [ns])):
            assert available_replicas(kube_env, ns, "sbx") == 2
        # Its own Deployment is gone; the Service and namespace it found are still there.
        wait_for(
            "the sandbox deployment to go",
            lambda: not _exists(kube.apps.read_namespaced_deployment, "sbx", ns),
        )
        assert _exists(kube.core.read_namespaced_service, "sbx", ns)
        assert kube.core.read_namespace(ns, _request_timeout=T).status.phase == "Active"
    finally:
        kube.core.delete_namespace(ns, _request_timeout=T)


def test_prepare_refuses_a_namespace_outside_the_allowlist(kube_env: KubeEnv) -> None:
    prepare = get_registry().backends["kubernetes"].prepare
    assert prepare is not None
    ns = f"dbk-sbx-{secrets.token_hex(3)}"
    with pytest.raises(SafetyError), prepare(_ctx(kube_env, ns, ["somewhere-else"])):
        pass
    assert not _exists(kube_env.kube.core.read_namespace, ns)
    # Outside a sandbox environment, sandbox: true creates nothing.
    with prepare(_ctx(kube_env, ns, [ns], environment="staging")):
        assert not _exists(kube_env.kube.core.read_namespace, ns)

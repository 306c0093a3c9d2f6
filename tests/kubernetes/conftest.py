"""Fixtures for the Kubernetes backend tests: a real control plane from ``scripts/testenv up k8s``
(see k8s_kit.py for the rule that keeps these tests off any other cluster)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from k8s_kit import OPT_IN, KubeEnv, T, deploy_demo, make_namespace, unavailable_reason

from drillbook.plugin import needs_backend


@pytest.fixture(scope="session")
def kube_env() -> KubeEnv:
    needs_backend("kubernetes", unavailable_reason())
    from drillbook.backends.kubernetes.client import connect

    kube = connect(None, None)
    return KubeEnv(os.environ["KUBECONFIG"], kube.identity.context, kube.identity.server, kube)


@pytest.fixture
def namespace(kube_env: KubeEnv) -> Iterator[str]:
    name = make_namespace(kube_env.kube, OPT_IN)
    yield name
    kube_env.kube.core.delete_namespace(name, _request_timeout=T)


@pytest.fixture
def other_namespace(kube_env: KubeEnv) -> Iterator[str]:
    """A namespace that is NOT in the allowlist (but opted in, so only the allowlist refuses)."""
    name = make_namespace(kube_env.kube, OPT_IN)
    yield name
    kube_env.kube.core.delete_namespace(name, _request_timeout=T)


@pytest.fixture
def demo(kube_env: KubeEnv, namespace: str) -> str:
    deploy_demo(kube_env, namespace)
    return namespace

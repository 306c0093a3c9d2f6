"""The test cluster's nodes are real kubelets on real Docker engines (scripts/k8s/nodes.sh).

Pods run as containers in the node's engine, readiness probes are real HTTP requests from the
kubelet, a killed container is restarted by the kubelet, a drain moves pods to the other node and
an image that cannot be pulled is reported as such. Node engines come from
``DRILLBOOK_K8S_NODE_ENGINES`` (printed by ``scripts/testenv up k8s``); the stand-in kubelet
(``DRILLBOOK_K8S_KUBELET=fake``) prints none, and these tests then skip (or fail under
``DRILLBOOK_REQUIRE_BACKENDS``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from k8s_kit import KubeEnv, T, wait_for

from drillbook.plugin import needs_backend

WEB_IMAGE = "drillbook/web:1"


def _engines() -> dict[str, str]:
    raw = os.environ.get("DRILLBOOK_K8S_NODE_ENGINES", "")
    return dict(kv.split("=", 1) for kv in raw.split(",") if "=" in kv)


@pytest.fixture(scope="module")
def engines(kube_env: KubeEnv) -> dict[str, str]:
    found = _engines()
    needs_backend(
        "kubernetes",
        None
        if len(found) >= 2
        else "DRILLBOOK_K8S_NODE_ENGINES is not set: the cluster runs the stand-in kubelet",
    )
    return found


@pytest.fixture
def docker_of(engines: dict[str, str]) -> Iterator[Any]:
    import docker

    clients = {node: docker.DockerClient(base_url=url, timeout=15) for node, url in engines.items()}
    yield clients
    for c in clients.values():
        c.close()


def _pod(node: str | None = None, **extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "terminationGracePeriodSeconds": 1,
        "automountServiceAccountToken": False,
        "containers": [
            {
                "name": "web",
                "image": WEB_IMAGE,
                "readinessProbe": {
                    "httpGet": {"path": "/health", "port": 8080},
                    "periodSeconds": 1,
                },
            }
        ],
    }
    if node:
        spec["nodeName"] = node
    spec.update(extra)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"}, "spec": spec}


def _read(env: KubeEnv, ns: str, name: str = "web") -> Any:
    return env.kube.core.read_namespaced_pod(name, ns, _request_timeout=T)


def _ready(pod: Any) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])


def _containers(client: Any, uid: str, name: str) -> list[Any]:
    return list(
        client.containers.list(
            filters={
                "label": [f"io.kubernetes.pod.uid={uid}", f"io.kubernetes.container.name={name}"]
            }
        )
    )


def test_pods_run_as_containers_pass_probes_and_restart(
    kube_env: KubeEnv, namespace: str, engines: dict[str, str], docker_of: dict[str, Any]
) -> None:
    node = sorted(engines)[0]
    kube_env.kube.core.create_namespaced_pod(namespace, _pod(node), _request_timeout=T)
    wait_for(
        "the pod Ready (its HTTP readiness probe passed)",
        lambda: _ready(_read(kube_env, namespace)),
        120,
    )
    pod = _read(kube_env, namespace)
    assert pod.status.pod_ip and pod.status.container_statuses[0].restart_count == 0
    # The pod is a real container in its node's engine: the app and the pause sandbox.
    (app,) = _containers(docker_of[node], pod.metadata.uid, "web")
    assert app.status == "running"
    assert _containers(docker_of[node], pod.metadata.uid, "POD")
    # Kill the app's container behind the kubelet's back: the kubelet restarts it.
    app.kill()

    def restarted() -> bool:
        p = _read(kube_env, namespace)
        return p.status.container_statuses[0].restart_count >= 1 and _ready(p)

    wait_for("the kubelet to restart the killed container", restarted, 120)
    (again,) = _containers(docker_of[node], pod.metadata.uid, "web")
    assert again.id != app.id


def test_a_failing_readiness_probe_keeps_the_pod_unready(
    kube_env: KubeEnv, namespace: str, engines: dict[str, str]
) -> None:
    body = _pod(sorted(engines)[-1])
    body["spec"]["containers"][0]["readinessProbe"]["httpGet"]["path"] = "/no-such-page"
    kube_env.kube.core.create_namespaced_pod(namespace, body, _request_timeout=T)

    def running_unready() -> bool:
        p = _read(kube_env, namespace)
        statuses = p.status.container_statuses or []
        return bool(statuses) and statuses[0].state.running is not None and not _ready(p)

    wait_for("the container running", running_unready, 120)

    def probe_failed() -> bool:
        events = kube_env.kube.core.list_namespaced_event(namespace, _request_timeout=T).items
        return any(
            e.reason == "Unhealthy" and "Readiness probe failed" in (e.message or "")
            for e in events
        )

    # The kubelet's probe really got its 404, and the pod stays out of Ready.
    wait_for("a readiness probe failure event", probe_failed, 60)
    assert not _ready(_read(kube_env, namespace))


def test_an_unpullable_image_is_reported(
    kube_env: KubeEnv, namespace: str, engines: dict[str, str]
) -> None:
    body = _pod(sorted(engines)[0])
    body["spec"]["containers"][0]["image"] = "drillbook.invalid/never-ready:1"
    kube_env.kube.core.create_namespaced_pod(namespace, body, _request_timeout=T)

    def pull_failed() -> bool:
        statuses = _read(kube_env, namespace).status.container_statuses or []
        waiting = statuses[0].state.waiting if statuses else None
        return bool(waiting and waiting.reason in ("ErrImagePull", "ImagePullBackOff"))

    wait_for("ErrImagePull / ImagePullBackOff", pull_failed, 120)


def test_a_drain_moves_pods_to_the_other_node(
    kube_env: KubeEnv, namespace: str, engines: dict[str, str], docker_of: dict[str, Any]
) -> None:
    from drillbook.backends.kubernetes.manifests import apply_manifests

    first, second = sorted(engines)[:2]
    apply_manifests(
        kube_env.kube,
        [
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "web", "namespace": namespace},
                "spec": {
                    "replicas": 2,
                    "selector": {"matchLabels": {"app": "web"}},
                    "template": {
                        "metadata": {"labels": {"app": "web"}},
                        "spec": _pod()["spec"],
                    },
                },
            }
        ],
    )
    core = kube_env.kube.core

    def pods() -> list[Any]:
        items = core.list_namespaced_pod(namespace, label_selector="app=web", _request_timeout=T)
        return [p for p in items.items if p.metadata.deletion_timestamp is None]

    wait_for("2 pods Ready", lambda: sum(_ready(p) for p in pods()) == 2, 120)
    core.patch_node(first, {"spec": {"unschedulable": True}}, _request_timeout=T)
    try:
        for p in pods():
            if p.spec.node_name == first:
                core.create_namespaced_pod_eviction(
                    p.metadata.name,
                    namespace,
                    {
                        "apiVersion": "policy/v1beta1",
                        "kind": "Eviction",
                        "metadata": {"name": p.metadata.name, "namespace": namespace},
                    },
                    _request_timeout=T,
                )

        def all_on_second() -> bool:
            now = pods()
            return len(now) == 2 and all(p.spec.node_name == second and _ready(p) for p in now)

        wait_for(f"both pods Ready on {second}", all_on_second, 180)
        # ...as containers in the second node's engine.
        for p in pods():
            assert _containers(docker_of[second], p.metadata.uid, "web")
    finally:
        core.patch_node(first, {"spec": {"unschedulable": False}}, _request_timeout=T)

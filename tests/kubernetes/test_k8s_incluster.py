"""The shipped CronJob runs a drill from inside the cluster, for real.

scripts/k8s/image.sh builds the drillbook image with no registry (a debootstrapped Debian root
filesystem with drillbook's wheel installed, imported into the engine, deploy/kubernetes/Dockerfile
on top). The test applies deploy/kubernetes (its ServiceAccount, least-privilege RBAC, ConfigMap
and PVC, bound here to a hostPath PersistentVolume), creates a Job from the CronJob as
``kubectl create job --from=cronjob/...`` does, and reads the run's journal and report from the
volume: the pod deleted one of the demo Deployment's pods with only its namespace-scoped Role, and
the ReplicaSet brought it back.

Two adjustments to the Job are the test cluster's, not the product's: it has no kube-proxy, so the
pod uses the host network and is pointed at the apiserver on 127.0.0.1 (KUBERNETES_SERVICE_HOST/
PORT); and it is pinned to the node whose engine holds the image.
"""

from __future__ import annotations

import copy
import json
import os
import secrets
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from k8s_kit import (
    OPT_IN,
    KubeEnv,
    T,
    deploy_docs,
    kustomized,
    make_namespace,
    rewrite_for_test,
    wait_for,
)

from drillbook.plugin import needs_backend

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
IMAGE = "drillbook:0.1.0"


def _engines() -> dict[str, str]:
    raw = os.environ.get("DRILLBOOK_K8S_NODE_ENGINES", "")
    return dict(kv.split("=", 1) for kv in raw.split(",") if "=" in kv)


@pytest.fixture(scope="module")
def image(kube_env: KubeEnv) -> tuple[str, str]:
    """(node, image): the image built on the first node's engine."""
    engines = _engines()
    needs_backend(
        "kubernetes",
        None
        if engines
        else "DRILLBOOK_K8S_NODE_ENGINES is not set: no real kubelet to run the Job",
    )
    node = sorted(engines)[0]
    env = {**os.environ, "DOCKER_HOST": engines[node]}
    out = subprocess.run(
        ["bash", str(ROOT / "scripts" / "k8s" / "image.sh"), IMAGE],
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return node, IMAGE


def _demo(ns: str) -> list[dict[str, Any]]:
    """The Deployment the ConfigMap's k8s-demo target names (drill-demo, app=drill-demo)."""
    labels = {"app": "drill-demo"}
    return [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "drill-demo", "namespace": ns, "labels": labels},
            "spec": {
                "replicas": 3,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "terminationGracePeriodSeconds": 1,
                        "automountServiceAccountToken": False,
                        "containers": [{"name": "app", "image": "registry.k8s.io/pause:3.2"}],
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "drill-demo", "namespace": ns, "labels": labels},
            "spec": {"selector": labels, "ports": [{"port": 80, "targetPort": 8080}]},
        },
    ]


@pytest.fixture
def installed(kube_env: KubeEnv) -> Iterator[tuple[str, str, Path]]:
    """deploy/kubernetes applied to fresh namespaces, the PVC bound to a hostPath volume."""
    from drillbook.backends.kubernetes.manifests import apply_manifests
    from kubernetes import client

    kube = kube_env.kube
    runner = make_namespace(kube)
    allowed = make_namespace(kube, OPT_IN)
    suffix = f"-{secrets.token_hex(3)}"
    volume = Path(tempfile.mkdtemp(prefix="drillbook-reports-"))
    volume.chmod(0o777)  # the pod runs as uid 10001; fsGroup does not apply to hostPath
    pv = f"drillbook-reports{suffix}"
    docs = rewrite_for_test(kustomized(), runner, allowed, suffix)
    for d in docs:
        if d["kind"] == "ConfigMap":
            # The targets' namespace, then the target locks' (safety.lock: the runner's own).
            text = d["data"]["drillbook.yaml"].replace("drillbook-demo", allowed)
            d["data"]["drillbook.yaml"] = text.replace(
                "namespace: drillbook\n", f"namespace: {runner}\n"
            )
        if d["kind"] == "PersistentVolumeClaim":
            d["spec"]["storageClassName"] = ""
            d["spec"]["volumeName"] = pv
    kube.core.create_persistent_volume(
        {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": pv},
            "spec": {
                "capacity": {"storage": "1Gi"},
                "accessModes": ["ReadWriteOnce"],
                "persistentVolumeReclaimPolicy": "Retain",
                "storageClassName": "",
                "hostPath": {"path": str(volume), "type": "Directory"},
                "claimRef": {"namespace": runner, "name": "drillbook-reports"},
            },
        },
        _request_timeout=T,
    )
    apply_manifests(kube, docs + _demo(allowed))
    yield runner, allowed, volume
    for ns in (runner, allowed):
        kube.core.delete_namespace(ns, _request_timeout=T)
    kube.core.delete_persistent_volume(pv, _request_timeout=T)
    rbac = client.RbacAuthorizationV1Api(kube.api_client)
    rbac.delete_cluster_role_binding(f"drillbook-read-allowed-namespaces{suffix}")
    rbac.delete_cluster_role(f"drillbook-read-allowed-namespaces{suffix}")
    subprocess.run(["rm", "-rf", str(volume)], check=False)


def _job_from_cronjob(kube_env: KubeEnv, runner: str, node: str) -> dict[str, Any]:
    """What `kubectl create job --from=cronjob/drillbook-drills` makes, plus the test cluster's
    two adjustments (host network to reach the apiserver; the node holding the image)."""
    kube = kube_env.kube
    served = kube.first_served("batch", ("v1", "v1beta1"), "cronjobs")
    cron = kube.custom.get_namespaced_custom_object(
        "batch", served, runner, "cronjobs", "drillbook-drills", _request_timeout=T
    )
    spec = copy.deepcopy(cron["spec"]["jobTemplate"]["spec"])
    pod = spec["template"]["spec"]
    api = urlparse(kube_env.server)
    pod["hostNetwork"] = True
    pod["nodeSelector"] = {"kubernetes.io/hostname": node}
    container = pod["containers"][0]
    container["env"] = [e for e in container["env"] if e["name"] != "DRILLS"] + [
        {"name": "DRILLS", "value": "pod_kill"},
        {"name": "KUBERNETES_SERVICE_HOST", "value": api.hostname},
        {"name": "KUBERNETES_SERVICE_PORT", "value": str(api.port)},
    ]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": f"drillbook-drills-manual-{secrets.token_hex(2)}",
            "namespace": runner,
            "annotations": {"cronjob.kubernetes.io/instantiate": "manual"},
            "ownerReferences": [
                {
                    "apiVersion": f"batch/{served}",
                    "kind": "CronJob",
                    "name": "drillbook-drills",
                    "uid": cron["metadata"]["uid"],
                }
            ],
        },
        "spec": spec,
    }


def _pod_log(kube_env: KubeEnv, runner: str, job: str) -> str:
    """The Job pod's output, from its container in the engine (the apiserver cannot reach
    the kubelet's log endpoint in this cluster)."""
    import docker

    pods = kube_env.kube.core.list_namespaced_pod(
        runner, label_selector=f"job-name={job}", _request_timeout=T
    ).items
    out = []
    engines = _engines()
    for p in pods:
        engine = docker.DockerClient(base_url=engines[p.spec.node_name], timeout=15)
        try:
            for c in engine.containers.list(
                all=True, filters={"label": f"io.kubernetes.pod.uid={p.metadata.uid}"}
            ):
                out.append(c.logs(tail=80).decode(errors="replace"))
        finally:
            engine.close()
    return "\n".join(out)


def test_the_cronjob_runs_a_drill_in_a_pod_and_leaves_its_journal(
    kube_env: KubeEnv, image: tuple[str, str], installed: tuple[str, str, Path]
) -> None:
    node, _ = image
    runner, allowed, volume = installed
    (cm,) = deploy_docs("configmap.yaml")
    assert "drillbook-demo" in cm["data"]["drillbook.yaml"]  # the rewrite above had work to do
    from kubernetes import client

    batch = client.BatchV1Api(kube_env.kube.api_client)
    job = _job_from_cronjob(kube_env, runner, node)
    batch.create_namespaced_job(runner, job, _request_timeout=T)
    name = job["metadata"]["name"]

    def finished() -> bool:
        st = batch.read_namespaced_job_status(name, runner, _request_timeout=T).status
        return bool(st.succeeded or st.failed)

    wait_for("the Job to finish", finished, 900)
    status = batch.read_namespaced_job_status(name, runner, _request_timeout=T).status
    assert status.succeeded == 1, _pod_log(kube_env, runner, name)
    # The journal is on the volume: the drill ran in the pod, against this cluster.
    # `latest` links to the run folder by its path inside the pod (/reports/...).
    assert (volume / "latest").is_symlink(), (
        sorted(str(p.relative_to(volume)) for p in volume.rglob("*")),
        _pod_log(kube_env, runner, name),
    )
    run = volume / Path(os.readlink(volume / "latest")).name
    journal = json.loads((run / "journal.json").read_text())
    (drill,) = journal["drills"]
    assert drill["id"] == "pod_kill" or drill.get("scenario") == "pod_kill", drill
    assert drill["verdict"] == "passed", drill
    reports = {p.name for p in run.iterdir()}
    assert any(r.endswith((".md", ".html")) for r in reports), reports
    # ...on the allowed namespace's pods, as the Job's pod: the namespace-scoped ServiceAccount
    # (test_k8s_deploy.py checks what that account may and may not do).
    assert f"({allowed})" in drill["fault"]["plan"], drill["fault"]
    (pod,) = kube_env.kube.core.list_namespaced_pod(
        runner, label_selector=f"job-name={name}", _request_timeout=T
    ).items
    assert pod.spec.service_account_name == "drillbook"
    assert pod.spec.security_context.run_as_user == 10001

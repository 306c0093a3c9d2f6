#!/usr/bin/env python3
"""The kubelet stand-in for drillbook's test control plane (kwok-style: no containers ever run).

Why it exists: the test cluster is a real kube-apiserver, controller-manager and scheduler, but
there is no kubelet on these machines. Without one, pods are scheduled and then stay Pending
forever, so Deployments never become available and no drill could recover. This process plays
the part of a kubelet *only at the API level*, as kwok does:

* registers the Node objects named by ``--nodes`` (if absent) and keeps them Ready: it renews
  each node's Lease in ``kube-node-lease`` and refreshes the Ready condition's heartbeat, unless
  the node carries the annotation ``drillbook.io/not-ready`` (set by the ``k8s.node_not_ready``
  fault). Then it stops heartbeating that node and leaves its pods alone, so the node lifecycle
  controller sees a node that went silent, exactly as with a dead kubelet;
* marks each pod bound to one of its nodes Running/Ready after ``--ready-delay`` seconds (or the
  pod's ``drillbook.io/fake-ready-delay`` annotation), with a made-up pod IP so the endpoints
  controller publishes it, via ``patch_namespaced_pod_status``;
* treats images whose name contains ``never-ready`` or whose registry host ends in ``.invalid``
  as unpullable: the pod stays Pending with ``ImagePullBackOff`` (what ``k8s.bad_rollout`` uses);
* finishes graceful deletions (a pod with ``deletionTimestamp`` is deleted with grace 0), which a
  real kubelet does once the containers have stopped.

What it does not do: run containers, enforce NetworkPolicy, run readiness/liveness probes,
report resource usage or evict pods under pressure.

``--check`` exits 0 when every node is Ready and the default ServiceAccount has its token (the
cluster can run Deployments), 1 otherwise; ``scripts/testenv.d/k8s.sh`` polls it.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from datetime import UTC, datetime
from typing import Any

NOT_READY_ANNOTATION = "drillbook.io/not-ready"
DELAY_ANNOTATION = "drillbook.io/fake-ready-delay"
MANAGED_LABEL = "drillbook.io/fake-kubelet"
TIMEOUT = 10


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def bad_image(image: str) -> bool:
    host = image.split("/", 1)[0] if "/" in image else ""
    return "never-ready" in image or host.split(":", 1)[0].endswith(".invalid")


def pod_ready(pod: Any) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in (pod.status.conditions or []))


class FakeKubelet:
    def __init__(
        self, kubeconfig: str, nodes: list[str], ready_delay: float, labels: dict[str, str]
    ) -> None:
        from kubernetes import client, config

        self.api_client = config.new_client_from_config(config_file=kubeconfig)
        self.core = client.CoreV1Api(self.api_client)
        self.coord = client.CoordinationV1Api(self.api_client)
        self.client = client
        self.nodes = nodes
        self.ready_delay = ready_delay
        self.labels = labels
        self.first_seen: dict[str, float] = {}
        self.done: set[str] = set()
        self.ip_counter: dict[str, int] = {}
        self.stopping = False

    # -- nodes -------------------------------------------------------------------------------
    def node_conditions(self, ready: bool) -> list[dict[str, Any]]:
        stamp = now_iso()
        conds = []
        for ctype, status, reason in (
            ("MemoryPressure", "False", "KubeletHasSufficientMemory"),
            ("DiskPressure", "False", "KubeletHasNoDiskPressure"),
            ("PIDPressure", "False", "KubeletHasSufficientPID"),
            ("Ready", "True" if ready else "False", "KubeletReady"),
        ):
            conds.append(
                {
                    "type": ctype,
                    "status": status,
                    "reason": reason,
                    "message": "drillbook fake kubelet",
                    "lastHeartbeatTime": stamp,
                    "lastTransitionTime": stamp,
                }
            )
        return conds

    def ensure_nodes(self) -> None:
        from kubernetes.client.rest import ApiException

        for index, name in enumerate(self.nodes):
            try:
                self.core.read_node(name, _request_timeout=TIMEOUT)
                continue
            except ApiException as exc:
                if exc.status != 404:
                    raise
            body = {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {
                    "name": name,
                    "labels": {
                        "kubernetes.io/hostname": name,
                        "kubernetes.io/os": "linux",
                        "kubernetes.io/arch": "amd64",
                        MANAGED_LABEL: "true",
                        **self.labels,
                    },
                },
                "spec": {},
            }
            try:
                self.core.create_node(body, _request_timeout=TIMEOUT)
                print(f"registered node {name}", flush=True)
            except ApiException as exc:
                if exc.status != 409:
                    raise
            self.heartbeat_node(name, index, first=True)

    def heartbeat_node(self, name: str, index: int, first: bool = False) -> None:
        from kubernetes.client.rest import ApiException

        status: dict[str, Any] = {"conditions": self.node_conditions(True)}
        if first:
            status.update(
                {
                    "capacity": {"cpu": "8", "memory": "16Gi", "pods": "110"},
                    "allocatable": {"cpu": "8", "memory": "16Gi", "pods": "110"},
                    "addresses": [
                        {"type": "InternalIP", "address": f"10.0.0.{index + 10}"},
                        {"type": "Hostname", "address": name},
                    ],
                    "nodeInfo": {
                        "kubeletVersion": "v1.20.2-drillbook-fake",
                        "kubeProxyVersion": "v1.20.2-drillbook-fake",
                        "operatingSystem": "linux",
                        "architecture": "amd64",
                        "containerRuntimeVersion": "fake://0",
                        "osImage": "drillbook fake kubelet",
                        "kernelVersion": "",
                        "machineID": "",
                        "systemUUID": "",
                        "bootID": "",
                    },
                }
            )
        self.core.patch_node_status(name, {"status": status}, _request_timeout=TIMEOUT)
        lease = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": name, "namespace": "kube-node-lease"},
            "spec": {
                "holderIdentity": name,
                "leaseDurationSeconds": 40,
                "renewTime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            },
        }
        try:
            self.coord.patch_namespaced_lease(
                name, "kube-node-lease", {"spec": lease["spec"]}, _request_timeout=TIMEOUT
            )
        except ApiException as exc:
            if exc.status != 404:
                raise
            self.coord.create_namespaced_lease("kube-node-lease", lease, _request_timeout=TIMEOUT)

    def silenced(self) -> set[str]:
        out = set()
        for node in self.core.list_node(_request_timeout=TIMEOUT).items:
            if (node.metadata.annotations or {}).get(NOT_READY_ANNOTATION):
                out.add(node.metadata.name)
        return out

    def heartbeat_all(self) -> set[str]:
        silent = self.silenced()
        for index, name in enumerate(self.nodes):
            if name not in silent:
                self.heartbeat_node(name, index)
        return silent

    # -- pods --------------------------------------------------------------------------------
    def pod_ip(self, node: str) -> str:
        index = self.nodes.index(node)
        n = self.ip_counter.get(node, 1) % 250 + 1
        self.ip_counter[node] = n
        return f"10.244.{index}.{n + 1}"

    def pod_delay(self, pod: Any) -> float:
        raw = (pod.metadata.annotations or {}).get(DELAY_ANNOTATION)
        try:
            return float(raw) if raw is not None else self.ready_delay
        except ValueError:
            return self.ready_delay

    def sync_pods(self, silent: set[str]) -> None:
        from kubernetes.client.rest import ApiException

        pods = self.core.list_pod_for_all_namespaces(_request_timeout=TIMEOUT).items
        seen: set[str] = set()
        now = time.monotonic()
        for pod in pods:
            uid = pod.metadata.uid
            node = pod.spec.node_name
            if not node or node not in self.nodes:
                continue
            seen.add(uid)
            ns, name = pod.metadata.namespace, pod.metadata.name
            try:
                if pod.metadata.deletion_timestamp is not None:
                    if node not in silent:
                        self.core.delete_namespaced_pod(
                            name, ns, grace_period_seconds=0, _request_timeout=TIMEOUT
                        )
                    continue
                if node in silent:
                    continue
                # A node that comes back re-reports its pods Ready, as a kubelet does after the
                # node lifecycle controller marked them NotReady.
                if uid in self.done and (
                    pod_ready(pod) or any(bad_image(c.image or "") for c in pod.spec.containers)
                ):
                    continue
                first = self.first_seen.setdefault(uid, now)
                if now - first < self.pod_delay(pod):
                    continue
                self.core.patch_namespaced_pod_status(
                    name, ns, {"status": self.pod_status(pod)}, _request_timeout=TIMEOUT
                )
                self.done.add(uid)
            except ApiException as exc:
                if exc.status not in (404, 409):
                    print(f"pod {ns}/{name}: {exc.status} {exc.reason}", flush=True)
        for uid in list(self.first_seen):
            if uid not in seen:
                self.first_seen.pop(uid, None)
                self.done.discard(uid)

    def pod_status(self, pod: Any) -> dict[str, Any]:
        stamp = now_iso()
        containers = pod.spec.containers or []
        broken = [c.name for c in containers if bad_image(c.image or "")]
        statuses = []
        for c in containers:
            if c.name in broken:
                state = {
                    "waiting": {
                        "reason": "ImagePullBackOff",
                        "message": f'Back-off pulling image "{c.image}" (drillbook fake kubelet)',
                    }
                }
            else:
                state = {"running": {"startedAt": stamp}}
            statuses.append(
                {
                    "name": c.name,
                    "image": c.image,
                    "imageID": "" if c.name in broken else f"fake://{c.image}",
                    "ready": c.name not in broken,
                    "started": c.name not in broken,
                    "restartCount": 0,
                    "state": state,
                }
            )
        ready = "False" if broken else "True"

        def cond(ctype: str, status: str) -> dict[str, Any]:
            return {"type": ctype, "status": status, "lastTransitionTime": stamp}

        return {
            "phase": "Pending" if broken else "Running",
            "hostIP": f"10.0.0.{self.nodes.index(pod.spec.node_name) + 10}",
            "podIP": self.pod_ip(pod.spec.node_name),
            "startTime": stamp,
            "conditions": [
                cond("Initialized", "True"),
                cond("PodScheduled", "True"),
                cond("ContainersReady", ready),
                cond("Ready", ready),
            ],
            "containerStatuses": statuses,
        }

    # -- main loop ---------------------------------------------------------------------------
    def run(self, heartbeat_s: float, poll_s: float) -> None:
        self.ensure_nodes()
        next_beat = 0.0
        silent: set[str] = set()
        while not self.stopping:
            try:
                if time.monotonic() >= next_beat:
                    self.ensure_nodes()
                    silent = self.heartbeat_all()
                    next_beat = time.monotonic() + heartbeat_s
                else:
                    silent = self.silenced()
                self.sync_pods(silent)
            except Exception as exc:
                print(f"sync failed: {type(exc).__name__}: {exc}", flush=True)
                time.sleep(1.0)
            time.sleep(poll_s)

    def check(self) -> bool:
        for name in self.nodes:
            node = self.core.read_node(name, _request_timeout=TIMEOUT)
            conds = {c.type: c.status for c in (node.status.conditions or [])}
            if conds.get("Ready") != "True":
                return False
        sa = self.core.read_namespaced_service_account(
            "default", "default", _request_timeout=TIMEOUT
        )
        return bool(sa.secrets)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--nodes", default="drill-node-a,drill-node-b,drill-node-c")
    parser.add_argument("--ready-delay", type=float, default=0.5)
    parser.add_argument("--heartbeat", type=float, default=10.0)
    parser.add_argument("--poll", type=float, default=0.1)
    parser.add_argument(
        "--node-labels",
        default="drillbook.io/drills=allowed",
        help="extra labels for registered nodes (k=v,k=v); default carries drillbook's opt-in",
    )
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    labels = dict(kv.split("=", 1) for kv in args.node_labels.split(",") if "=" in kv)
    nodes = [n for n in args.nodes.split(",") if n]
    kubelet = FakeKubelet(args.kubeconfig, nodes, args.ready_delay, labels)
    if args.check:
        try:
            return 0 if kubelet.check() else 1
        except Exception:
            return 1

    def stop(_sig: int, _frame: object) -> None:
        kubelet.stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    kubelet.run(args.heartbeat, args.poll)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Refusals: outside the allowlist, without opt-in, without a selector, on another context.

"Nothing is touched" is checked on the cluster itself: pod UIDs, the Deployment's generation,
replicas and annotations, NetworkPolicies and every node's schedulability are the same after.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from k8s_kit import (
    OPT_IN,
    KubeEnv,
    T,
    deploy_demo,
    make_ctx,
    make_namespace,
    settings_for,
    target_params,
)

from drillbook.backends.base import get_registry
from drillbook.config import Overrides, load_config
from drillbook.engine import Drill
from drillbook.errors import SafetyError
from drillbook.intents import IntentLedger
from drillbook.model import Verdict
from drillbook.scenario import load_scenario

FAULTS: dict[str, dict[str, Any]] = {
    "k8s.delete_pods": {"count": 1},
    "k8s.drain_node": {},
    "k8s.cordon_node": {},
    "k8s.node_not_ready": {},
    "k8s.scale": {"replicas": 0},
    "k8s.bad_rollout": {},
    "k8s.isolate": {},
    "k8s.chaos_resource": {
        "api_version": "chaos-mesh.org/v1alpha1",
        "kind": "PodChaos",
        "spec": {"action": "pod-kill", "mode": "one"},
    },
}


def snapshot(env: KubeEnv, ns: str) -> dict[str, Any]:
    kube = env.kube
    dep = kube.apps.read_namespaced_deployment("demo", ns, _request_timeout=T)
    return {
        "pods": sorted(p.metadata.uid for p in kube.core.list_namespaced_pod(ns).items),
        "deployment": (
            dep.metadata.generation,
            dep.spec.replicas,
            dep.spec.template.spec.containers[0].image,
            sorted((dep.metadata.annotations or {}).items()),
        ),
        "policies": [
            p.metadata.name for p in kube.networking.list_namespaced_network_policy(ns).items
        ],
        "nodes": sorted(
            (n.metadata.name, bool(n.spec.unschedulable), sorted(n.metadata.annotations or {}))
            for n in kube.core.list_node().items
        ),
    }


@pytest.mark.parametrize("fault_type", sorted(FAULTS))
def test_every_fault_refuses_a_namespace_outside_the_allowlist(
    kube_env: KubeEnv, namespace: str, other_namespace: str, fault_type: str
) -> None:
    deploy_demo(kube_env, other_namespace)
    before = snapshot(kube_env, other_namespace)
    ctx = make_ctx(kube_env, other_namespace, FAULTS[fault_type], allowed=[namespace])
    fault = get_registry().fault(fault_type).factory(ctx)
    for step in (fault.resolve, fault.preflight, fault.inject):
        with pytest.raises(SafetyError, match="allowed_namespaces"):
            step()
    assert snapshot(kube_env, other_namespace) == before


def test_a_drill_outside_the_allowlist_is_refused_by_the_engine(
    kube_env: KubeEnv, namespace: str, other_namespace: str, tmp_path: Path
) -> None:
    deploy_demo(kube_env, other_namespace)
    before = snapshot(kube_env, other_namespace)
    config = {
        "environment": "sandbox",
        "state_dir": str(tmp_path / "state"),
        "targets": {
            "outside": {"backend": "kubernetes", **target_params(other_namespace)},
        },
        "backends": {"kubernetes": settings_for(kube_env, [namespace])},
    }
    (tmp_path / "drillbook.yaml").write_text(yaml.safe_dump(config))
    (tmp_path / "scenario.yaml").write_text(
        yaml.safe_dump(
            {
                "id": "outside_pod_kill",
                "objectives": {"rto": "1m"},
                "timeout": "1m",
                "fault": {"type": "k8s.delete_pods", "target": "outside", "count": 1},
                "probes": [
                    {"name": "available", "type": "k8s.deployment_available", "target": "outside"}
                ],
                "recovery": [{"kind": "automatic"}],
            }
        )
    )
    cfg = load_config(Overrides(config_path=tmp_path / "drillbook.yaml"), workdir=tmp_path)
    scenario = load_scenario(tmp_path / "scenario.yaml", config=cfg)
    result = Drill("outside_pod_kill", cfg, scenario=scenario).run_scenario()
    assert result.verdict is Verdict.ERROR
    assert any("allowed_namespaces" in r for r in result.reasons)
    assert IntentLedger(cfg.intent_ledger).all() == {}  # not even an intent was written
    assert snapshot(kube_env, other_namespace) == before


def test_opt_in_is_required_on_the_namespace_or_workload(kube_env: KubeEnv) -> None:
    ns = make_namespace(kube_env.kube)  # no opt-in label
    try:
        deploy_demo(kube_env, ns)
        before = snapshot(kube_env, ns)
        fault = get_registry().fault("k8s.delete_pods").factory(make_ctx(kube_env, ns))
        with pytest.raises(SafetyError, match="opt-in"):
            fault.preflight()
        assert snapshot(kube_env, ns) == before
        # Opting in the workload alone is enough.
        kube_env.kube.apps.patch_namespaced_deployment(
            "demo", ns, {"metadata": {"labels": OPT_IN}}, _request_timeout=T
        )
        get_registry().fault("k8s.delete_pods").factory(make_ctx(kube_env, ns)).preflight()
    finally:
        kube_env.kube.core.delete_namespace(ns, _request_timeout=T)


def test_destructive_faults_need_a_selector(kube_env: KubeEnv, demo: str) -> None:
    bare = target_params(demo)
    del bare["selector"]
    for fault_type in ("k8s.delete_pods", "k8s.isolate", "k8s.drain_node"):
        fault = get_registry().fault(fault_type).factory(make_ctx(kube_env, demo, target=bare))
        with pytest.raises(SafetyError, match="no selector"):
            fault.resolve()


def test_a_context_outside_the_allowlist_is_refused(kube_env: KubeEnv, demo: str) -> None:
    settings = settings_for(kube_env, [demo], allowed_contexts=["prod-cluster"])
    fault = (
        get_registry()
        .fault("k8s.delete_pods")
        .factory(make_ctx(kube_env, demo, {"count": 1}, settings=settings))
    )
    with pytest.raises(SafetyError, match="allowed_contexts"):
        fault.resolve()
    pinned = settings_for(kube_env, [demo], expected_server="https://127.0.0.1:1")
    fault = (
        get_registry()
        .fault("k8s.delete_pods")
        .factory(make_ctx(kube_env, demo, {"count": 1}, settings=pinned))
    )
    with pytest.raises(SafetyError, match="not the expected"):
        fault.preflight()

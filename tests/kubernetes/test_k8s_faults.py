"""Every Kubernetes fault, probe and recovery step on real objects in a real kube-apiserver.

Reverts are exercised the way the reaper runs them: a *new* fault object, given only the saved
``state()`` (or nothing, when the harness died before saving it), must undo the change.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from k8s_kit import KubeEnv, T, available_replicas, make_ctx, node_names, wait_for

from drillbook.backends.base import Context, Fault, get_registry
from drillbook.errors import FaultError, SafetyError


def fault(name: str, ctx: Context) -> Fault:
    return get_registry().fault(name).factory(ctx)


def pods(env: KubeEnv, ns: str) -> list[Any]:
    items = env.kube.core.list_namespaced_pod(ns, label_selector="app=demo", _request_timeout=T)
    return [p for p in items.items if p.metadata.deletion_timestamp is None]


def node(env: KubeEnv, name: str) -> Any:
    return env.kube.core.read_node(name, _request_timeout=T)


def inject(f: Fault) -> None:
    """What the engine does: resolve, preflight, inject, wait until observable."""
    f.resolve()
    f.preflight()
    f.inject()
    wait_for("the fault to be observable", f.verify_injected, 30)


def revert_in_new_process_style(name: str, ctx: Context, state: Any) -> Fault:
    again = fault(name, ctx)
    again.load_state(dict(state))
    again.revert()
    assert again.verify_reverted()
    again.revert()  # idempotent
    return again


def test_delete_pods_count_and_percent(kube_env: KubeEnv, demo: str) -> None:
    before = {p.metadata.uid for p in pods(kube_env, demo)}
    f = fault(
        "k8s.delete_pods", make_ctx(kube_env, demo, {"count": 1, "grace_period_s": 0, "seed": 7})
    )
    sel = f.resolve()
    assert sel.candidates == 3 and len(sel.chosen) == 1
    f.preflight()
    f.inject()
    wait_for("deletion observable", f.verify_injected, 30)
    deleted = {p["uid"] for p in f.state()["pods"]}
    assert deleted <= before and len(deleted) == 1
    # The ReplicaSet replaces it: three pods again, none of them the deleted one.
    wait_for(
        "replacement",
        lambda: available_replicas(kube_env, demo) == 3 and len(pods(kube_env, demo)) == 3,
    )
    assert not deleted & {p.metadata.uid for p in pods(kube_env, demo)}
    revert_in_new_process_style("k8s.delete_pods", make_ctx(kube_env, demo), f.state())
    half = fault("k8s.delete_pods", make_ctx(kube_env, demo, {"percent": 50}))
    assert len(half.resolve().chosen) == 2  # ceil(3 * 50%)


def test_delete_pods_with_no_match_is_an_error(kube_env: KubeEnv, demo: str) -> None:
    f = fault("k8s.delete_pods", make_ctx(kube_env, demo, {"selector": "app=nothing-here"}))
    with pytest.raises(FaultError, match="matched no running pods"):
        f.resolve()


@pytest.fixture
def uncordon_all(kube_env: KubeEnv) -> Iterator[None]:
    yield
    for n in kube_env.kube.core.list_node(_request_timeout=T).items:
        if n.spec.unschedulable:
            kube_env.kube.core.patch_node(n.metadata.name, {"spec": {"unschedulable": None}})


def test_drain_evicts_reschedules_and_revert_uncordons(
    kube_env: KubeEnv, demo: str, uncordon_all: None
) -> None:
    ctx = make_ctx(kube_env, demo, {"eviction_timeout": "60s"})
    f = fault("k8s.drain_node", ctx)
    inject(f)
    (drained,) = [n["name"] for n in f.state()["nodes"]]
    assert node(kube_env, drained).spec.unschedulable
    assert not [p for p in pods(kube_env, demo) if p.spec.node_name == drained]
    wait_for("pods rescheduled", lambda: available_replicas(kube_env, demo) == 3)
    assert all(p.spec.node_name != drained for p in pods(kube_env, demo))
    revert_in_new_process_style("k8s.drain_node", make_ctx(kube_env, demo), f.state())
    n = node(kube_env, drained)
    assert not n.spec.unschedulable
    assert "drillbook.io/changed-by" not in (n.metadata.annotations or {})


def test_drain_honours_the_disruption_budget(
    kube_env: KubeEnv, demo: str, uncordon_all: None
) -> None:
    kube = kube_env.kube
    version = kube.first_served("policy", ("v1", "v1beta1"), "poddisruptionbudgets")
    kube.custom.patch_namespaced_custom_object(
        "policy", version, demo, "poddisruptionbudgets", "demo", {"spec": {"minAvailable": 3}}
    )
    wait_for(
        "the budget to allow no disruption",
        lambda: (
            kube.custom.get_namespaced_custom_object(
                "policy", version, demo, "poddisruptionbudgets", "demo"
            )
            .get("status", {})
            .get("disruptionsAllowed")
            == 0
        ),
    )
    f = fault("k8s.drain_node", make_ctx(kube_env, demo, {"eviction_timeout": "3s"}))
    f.resolve()
    f.preflight()
    target_node = f.state()["nodes"][0]["name"]
    on_node = {p.metadata.uid for p in pods(kube_env, demo) if p.spec.node_name == target_node}
    with pytest.raises(FaultError, match="PodDisruptionBudget"):
        f.inject()
    # Nothing was evicted past the budget; the node stays cordoned until revert.
    assert on_node <= {p.metadata.uid for p in pods(kube_env, demo)}
    assert node(kube_env, target_node).spec.unschedulable
    f.revert()
    assert f.verify_reverted() and not node(kube_env, target_node).spec.unschedulable


def test_cordon_respects_a_node_someone_else_cordoned(
    kube_env: KubeEnv, demo: str, uncordon_all: None
) -> None:
    ctx = make_ctx(kube_env, demo)
    f = fault("k8s.cordon_node", ctx)
    f.resolve()
    name = f.state()["nodes"][0]["name"]
    kube_env.kube.core.patch_node(name, {"spec": {"unschedulable": True}})  # an operator did it
    f.preflight()
    f.inject()
    assert f.verify_injected()
    revert_in_new_process_style("k8s.cordon_node", ctx, f.state())
    assert node(kube_env, name).spec.unschedulable  # not ours to undo


def test_cordon_revert_without_saved_state_finds_its_mark(
    kube_env: KubeEnv, demo: str, uncordon_all: None
) -> None:
    name = node_names(kube_env)[1]
    ctx = make_ctx(kube_env, demo, {"node": name})
    f = fault("k8s.cordon_node", ctx)
    inject(f)
    assert node(kube_env, name).spec.unschedulable
    blank = fault("k8s.cordon_node", ctx)  # the harness died before state() was saved
    blank.revert()
    assert not node(kube_env, name).spec.unschedulable


def _ready(env: KubeEnv, name: str) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in node(env, name).status.conditions)


def test_node_not_ready_and_back(kube_env: KubeEnv, demo: str) -> None:
    name = node_names(kube_env)[-1]
    ctx = make_ctx(kube_env, demo, {"node": name})
    f = fault("k8s.node_not_ready", ctx)
    try:
        inject(f)
        notes = node(kube_env, name).metadata.annotations or {}
        assert "drillbook.io/not-ready" in notes
    finally:
        revert_in_new_process_style("k8s.node_not_ready", ctx, f.state())
    # A real kubelet reports Ready again by itself at its next status update; the revert makes
    # sure of it either way.
    wait_for("the node Ready again", lambda: _ready(kube_env, name))
    assert "drillbook.io/not-ready" not in (node(kube_env, name).metadata.annotations or {})


def test_scale_and_revert_from_state_or_annotation(kube_env: KubeEnv, demo: str) -> None:
    ctx = make_ctx(kube_env, demo, {"replicas": 1})
    f = fault("k8s.scale", ctx)
    inject(f)
    assert f.state()["previous"] == 3
    wait_for("scaled down", lambda: len(pods(kube_env, demo)) == 1)
    revert_in_new_process_style("k8s.scale", ctx, f.state())
    wait_for("scaled back", lambda: available_replicas(kube_env, demo) == 3)
    # Crash before the state was saved: the annotation on the Deployment is enough.
    g = fault("k8s.scale", ctx)
    inject(g)
    blank = fault("k8s.scale", ctx)
    blank.revert()
    dep = kube_env.kube.apps.read_namespaced_deployment("demo", demo, _request_timeout=T)
    assert dep.spec.replicas == 3
    assert "drillbook.io/changed-by" not in (dep.metadata.annotations or {})


def test_bad_rollout_detected_and_rolled_back_like_kubectl(kube_env: KubeEnv, demo: str) -> None:
    reg = get_registry()
    ctx = make_ctx(kube_env, demo)
    rollout = reg.probe("k8s.rollout_complete").factory(ctx)
    assert rollout.safe_check().ok
    f = fault("k8s.bad_rollout", ctx)
    inject(f)
    wait_for("the rollout to stall", lambda: not rollout.safe_check().ok)
    # maxUnavailable 0: the old pods keep serving while the new one cannot pull its image.
    assert reg.probe("k8s.deployment_available").factory(ctx).safe_check().ok
    wait_for(
        "ImagePullBackOff",
        lambda: any(
            (cs.state.waiting and cs.state.waiting.reason == "ImagePullBackOff")
            for p in pods(kube_env, demo)
            if p.spec.containers[0].image == f.state()["image"]
            for cs in (p.status.container_statuses or [])
        ),
    )
    # Listed after the wait: the rollout reads as stalled before the new pod exists.
    bad = [p for p in pods(kube_env, demo) if p.spec.containers[0].image == f.state()["image"]]
    assert bad
    detail = (
        reg.recovery("k8s.rollout_undo")
        .factory(make_ctx(kube_env, demo, {"wait": True, "timeout": "60s"}))
        .run()
    )
    assert "rolled back deployment demo to revision 1" in detail
    assert rollout.safe_check().ok
    dep = kube_env.kube.apps.read_namespaced_deployment("demo", demo, _request_timeout=T)
    assert dep.spec.template.spec.containers[0].image == "registry.k8s.io/pause:3.2"
    assert dep.metadata.annotations["deployment.kubernetes.io/revision"] == "3"
    revert_in_new_process_style("k8s.bad_rollout", ctx, f.state())
    # Undo again: now "previous" is the bad revision 2; to_revision pins the good one (a no-op).
    again = reg.recovery("k8s.rollout_undo").factory(make_ctx(kube_env, demo, {"to_revision": 3}))
    assert "skipped" in again.run()


def test_bad_rollout_revert_restores_the_image(kube_env: KubeEnv, demo: str) -> None:
    ctx = make_ctx(kube_env, demo, {"image": "drillbook.invalid/never-ready:2"})
    f = fault("k8s.bad_rollout", ctx)
    inject(f)
    revert_in_new_process_style("k8s.bad_rollout", ctx, f.state())
    probe = get_registry().probe("k8s.rollout_complete").factory(ctx)
    wait_for("rollout complete after revert", lambda: probe.safe_check().ok)


def test_isolate_denies_then_delete_policy_restores(kube_env: KubeEnv, demo: str) -> None:
    reg = get_registry()
    probe_ctx = make_ctx(kube_env, demo, {"from_labels": {"role": "client"}, "port": 8080})
    probe = reg.probe("k8s.traffic_allowed").factory(probe_ctx)
    assert probe.safe_check().value == 3
    f = fault("k8s.isolate", make_ctx(kube_env, demo))
    inject(f)
    pol = kube_env.kube.networking.read_namespaced_network_policy(f.state()["name"], demo)
    assert pol.spec.pod_selector.match_labels == {"app": "demo"}
    assert sorted(pol.spec.policy_types) == ["Egress", "Ingress"]
    assert not pol.spec.ingress and not pol.spec.egress
    result = probe.safe_check()
    assert not result.ok and "denied by" in result.detail
    step = reg.recovery("k8s.delete_network_policy").factory(make_ctx(kube_env, demo))
    assert f.state()["name"] in step.run()
    assert probe.safe_check().ok
    revert_in_new_process_style("k8s.isolate", make_ctx(kube_env, demo), f.state())


@pytest.fixture(scope="module")
def podchaos_crd(kube_env: KubeEnv) -> Iterator[None]:
    from kubernetes import client

    ext = client.ApiextensionsV1Api(kube_env.kube.api_client)
    name = "podchaos.chaos-mesh.org"
    body = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": name},
        "spec": {
            "group": "chaos-mesh.org",
            "scope": "Namespaced",
            "names": {"plural": "podchaos", "singular": "podchaos", "kind": "PodChaos"},
            "versions": [
                {
                    "name": "v1alpha1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "x-kubernetes-preserve-unknown-fields": True,
                        }
                    },
                }
            ],
        },
    }
    created = False
    try:
        ext.create_custom_resource_definition(body, _request_timeout=T)
        created = True
    except Exception as exc:
        if getattr(exc, "status", None) != 409:
            raise

    def served() -> bool:
        try:
            kube_env.kube.custom.get_api_resources("chaos-mesh.org", "v1alpha1", _request_timeout=T)
            return True
        except Exception:
            return False

    wait_for("the CRD to be served", served)
    yield
    if created:
        ext.delete_custom_resource_definition(name, _request_timeout=T)


def test_chaos_resource_created_and_deleted(
    kube_env: KubeEnv, demo: str, podchaos_crd: None
) -> None:
    spec = {
        "action": "pod-kill",
        "mode": "one",
        "selector": {"namespaces": [demo], "labelSelectors": {"app": "demo"}},
    }
    params = {"api_version": "chaos-mesh.org/v1alpha1", "kind": "PodChaos", "spec": spec}
    f = fault("k8s.chaos_resource", make_ctx(kube_env, demo, params))
    inject(f)
    obj = kube_env.kube.custom.get_namespaced_custom_object(
        "chaos-mesh.org", "v1alpha1", demo, "podchaos", f.state()["name"]
    )
    assert obj["spec"]["action"] == "pod-kill"
    assert obj["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "drillbook"
    revert_in_new_process_style("k8s.chaos_resource", make_ctx(kube_env, demo, params), f.state())
    # Not installed: refused before anything is created.
    missing = dict(params, kind="NetworkChaos")
    with pytest.raises(FaultError, match="not served"):
        fault("k8s.chaos_resource", make_ctx(kube_env, demo, missing)).preflight()
    # The engine's own selector may not reach outside the allowlist.
    wide = dict(params, spec={**spec, "selector": {"namespaces": ["kube-system"]}})
    with pytest.raises(SafetyError, match="kube-system"):
        fault("k8s.chaos_resource", make_ctx(kube_env, demo, wide)).resolve()


def test_probes_report_what_the_controllers_say(kube_env: KubeEnv, demo: str) -> None:
    reg = get_registry()
    ctx = make_ctx(kube_env, demo)
    endpoints = reg.probe("k8s.endpoints").factory(make_ctx(kube_env, demo, {"min_ready": 3}))
    wait_for("endpoints published", lambda: endpoints.safe_check().ok)
    assert endpoints.safe_check().value == 3
    ready = reg.probe("k8s.pods_ready").factory(
        make_ctx(kube_env, demo, {"all": True, "min_ready": 3})
    )
    assert ready.safe_check().ok
    avail = reg.probe("k8s.deployment_available").factory(ctx)
    assert avail.safe_check().value == 3
    # An impossible bar fails, with the numbers in the detail.
    four = reg.probe("k8s.deployment_available").factory(
        make_ctx(kube_env, demo, {"min_available": 4})
    )
    res = four.safe_check()
    assert not res.ok and "3 available" in res.detail
    # A probe never raises, even for a missing Deployment.
    gone = reg.probe("k8s.rollout_complete").factory(
        make_ctx(kube_env, demo, {"deployment": "nope"})
    )
    res = gone.safe_check()
    assert not res.ok and res.detail == 'HTTP 404 Not Found: deployments.apps "nope" not found'


def test_scale_and_uncordon_steps(kube_env: KubeEnv, demo: str, uncordon_all: None) -> None:
    reg = get_registry()
    detail = (
        reg.recovery("k8s.scale")
        .factory(make_ctx(kube_env, demo, {"replicas": 4, "wait": True, "timeout": "60s"}))
        .run()
    )
    assert detail.startswith("scaled Deployment demo from 3 to 4")
    assert available_replicas(kube_env, demo) >= 4
    first = node_names(kube_env)[0]
    cordon = fault("k8s.cordon_node", make_ctx(kube_env, demo, {"node": first}))
    inject(cordon)
    out = reg.recovery("k8s.uncordon").factory(make_ctx(kube_env, demo)).run()
    assert out == f"uncordoned {first}"
    assert not node(kube_env, first).spec.unschedulable
    assert cordon.verify_reverted()

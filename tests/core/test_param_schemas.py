"""Every registered fault, probe and recovery step declares strict parameters, and a mistyped
parameter is refused with file:line:field on every backend.

Why: a typo such as ``percnt: 10`` that is silently ignored makes a fault hit every target. The
walk is over the whole registry (built-in backends and any installed one), so a registration a
later change adds is held to the same rule, and the failure names it and what it lacks.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from drillbook.backends.base import BUILTIN_BACKENDS, Registration, get_registry
from drillbook.cli import main

ROOT = Path(__file__).resolve().parents[2]

#: Numeric parameters allowed without a bound, each with the reason a bound would be wrong.
UNBOUNDED: Mapping[tuple[str, str], str] = {
    ("prometheus", "value"): "a threshold compared with any sample; every real number is one",
    ("sql", "expected"): "the query's expected first value, whatever the query returns",
}
#: Keywords that constrain a property's value (a property with none of them accepts anything).
CONSTRAINING = ("type", "enum", "const", "oneOf", "anyOf", "allOf", "$ref", "not")


def _registrations() -> Iterator[tuple[str, Registration[Any]]]:
    registry = get_registry()
    for kind, table in (
        ("fault", registry.faults),
        ("probe", registry.probes),
        ("recovery step", registry.recoveries),
    ):
        for reg in table.values():
            yield kind, reg


def _numeric_without_bound(schema: Mapping[str, Any]) -> bool:
    """True when ``schema`` admits a number and sets no minimum/maximum on it (any branch)."""
    for branch_key in ("oneOf", "anyOf"):
        if branch_key in schema:
            return any(_numeric_without_bound(b) for b in schema[branch_key])
    types = schema.get("type")
    types = [types] if isinstance(types, str) else list(types or [])
    numeric = {"integer", "number"} & set(types)
    bounded = any(
        k in schema for k in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum")
    )
    return bool(numeric) and "enum" not in schema and not bounded


def _problems(kind: str, reg: Registration[Any]) -> list[str]:
    where = f"{kind} {reg.name!r} (backend {reg.backend})"
    schema = reg.params_schema
    if not schema:
        return [f"{where}: no params_schema (use params({{...}}) from drillbook.backends.base)"]
    out: list[str] = []
    try:
        Draft202012Validator.check_schema(schema)
    except Exception as exc:
        out.append(f"{where}: not a valid JSON Schema: {str(exc).splitlines()[0]}")
    if schema.get("type") != "object":
        out.append(f'{where}: lacks "type": "object"')
    if schema.get("additionalProperties") is not False:
        out.append(f'{where}: lacks "additionalProperties": false (a typo would be ignored)')
    props: Mapping[str, Any] = schema.get("properties") or {}
    for name in schema.get("required") or ():
        if name not in props:
            out.append(f"{where}: requires {name!r} but does not declare it in properties")
    for name, prop in props.items():
        if not isinstance(prop, Mapping) or not any(k in prop for k in CONSTRAINING):
            out.append(f"{where}: parameter {name!r} has no type (accepts anything)")
        elif _numeric_without_bound(prop) and (reg.name, name) not in UNBOUNDED:
            out.append(f"{where}: numeric parameter {name!r} has no minimum or maximum")
    if not out and not list(Draft202012Validator(schema).iter_errors({"percnt": 10})):
        out.append(f"{where}: accepts the unknown parameter 'percnt'")
    return out


def test_every_registration_has_a_strict_params_schema() -> None:
    registry = get_registry()
    assert not registry.broken, registry.broken
    found = list(_registrations())
    assert len(found) > 50  # the walk saw the registry, not an empty one
    assert {reg.backend for _, reg in found} >= set(BUILTIN_BACKENDS)
    problems = [p for kind, reg in found for p in _problems(kind, reg)]
    assert not problems, "\n".join(problems)


def test_the_walk_catches_a_loose_schema() -> None:
    """The checks above can fail: a schema of the old loose kinds is named with what it lacks."""
    from drillbook.backends.base import Registration, lazy

    loose = Registration(
        "acme.loose",
        "acme",
        lazy("acme:Loose"),
        params_schema={"properties": {"n": {"type": "integer"}, "x": {}}, "required": ["y"]},
    )
    found = "\n".join(_problems("fault", loose))
    assert '"additionalProperties": false' in found
    assert "parameter 'x' has no type" in found
    assert "numeric parameter 'n' has no minimum" in found
    assert "requires 'y'" in found
    assert "no params_schema" in "\n".join(
        _problems("probe", Registration("acme.none", "acme", lazy("acme:None")))
    )


def _scenario_for(backend: str) -> tuple[Path, str]:
    """A shipped scenario and the name of a registration of ``backend`` it uses."""
    registry = get_registry()
    names = {
        reg.name
        for _, reg in _registrations()
        if reg.backend == backend and reg.params_schema is not None
    }
    for path in sorted((ROOT / "scenarios").glob("*.yaml")):
        for line in path.read_text().splitlines():
            m = re.search(r"\btype: ([\w.]+)", line)
            if m and m.group(1) in names:
                return path, m.group(1)
    pytest.fail(
        f"no shipped scenario uses a fault, probe or step of backend {backend!r} "
        f"(registered: {', '.join(sorted(names)) or 'none'}; broken: {registry.broken})"
    )


def _with_typo(text: str, name: str) -> tuple[str, int]:
    """``text`` with ``percnt: 10`` added beside ``type: name``; and the line it is on."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        m = re.search(rf"\btype: {re.escape(name)}\b", line)
        if not m:
            continue
        brace = line.rfind("{", 0, m.start())
        if brace >= 0:  # a flow mapping: {type: x, ...}
            lines[i] = line[: brace + 1] + "percnt: 10, " + line[brace + 1 :]
            return "\n".join(lines) + "\n", i + 1
        lines.insert(i + 1, " " * m.start() + "percnt: 10")  # a sibling key of `type:`
        return "\n".join(lines) + "\n", i + 2
    raise AssertionError(f"type: {name} not found")


@pytest.mark.parametrize("backend", sorted(BUILTIN_BACKENDS))
def test_validate_rejects_a_mistyped_parameter(
    backend: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    source, name = _scenario_for(backend)
    shutil.copy(ROOT / "drillbook.yaml", tmp_path / "drillbook.yaml")
    (tmp_path / "scenarios").mkdir()
    scenario = tmp_path / "scenarios" / source.name
    scenario.write_text(source.read_text())
    monkeypatch.chdir(tmp_path)
    assert main(["validate", str(scenario)]) == 0, capsys.readouterr()  # it was valid
    capsys.readouterr()
    text, line = _with_typo(source.read_text(), name)
    scenario.write_text(text)
    assert main(["validate", str(scenario)]) != 0
    out = capsys.readouterr()
    said = out.out + out.err
    assert re.search(
        rf"{re.escape(source.name)}:{line}: [\w.\[\]]*percnt: unknown parameter; expected one of",
        said,
    ), said


def test_the_old_docker_names_are_refused_with_the_new_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copy(ROOT / "drillbook.yaml", tmp_path / "drillbook.yaml")
    (tmp_path / "scenarios").mkdir()
    scenario = tmp_path / "scenarios" / "old.yaml"
    text = (ROOT / "scenarios" / "container_restart.yaml").read_text()
    text, line = _with_typo(text, "docker.kill")
    scenario.write_text(text.replace("percnt: 10", "pick_percent: 10"))
    monkeypatch.chdir(tmp_path)
    assert main(["validate", str(scenario)]) != 0
    out = capsys.readouterr()
    assert f"old.yaml:{line}: fault.pick_percent: renamed: use percent" in out.out + out.err

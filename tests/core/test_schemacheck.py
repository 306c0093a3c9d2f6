"""The fast schema checker (drillbook.schemacheck) against jsonschema, the source of truth.

Why these tests: the fast checker lets a valid scenario skip importing jsonschema, so a checker
that says "valid" for something jsonschema rejects would let a bad scenario through. So:

1. differential: instances generated from every shipped scenario and every registered params
   schema, then mutated (wrong types, bools for ints, floats, extra and missing keys, long and
   unicode strings, nested junk), must get the same answer from both;
2. the shipped content is fully understood: every schema compiles (never "declined") and every
   shipped scenario loads with jsonschema made unimportable;
3. in a real process, a valid scenario leaves jsonschema unimported while an invalid one still
   prints the same one line as before.
"""

from __future__ import annotations

import copy
import json
import math
import os
import re
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from drillbook import scenario as scenario_mod
from drillbook import schemacheck
from drillbook.backends.base import get_registry
from drillbook.config import load_config
from drillbook.errors import ScenarioError
from drillbook.scenario import load_scenario, scenario_schema
from drillbook.schemacheck import compile_schema, is_valid
from drillbook.yamlload import load_yaml_file

REPO = Path(__file__).resolve().parents[2]
SHIPPED = sorted((REPO / "scenarios").glob("*.yaml"))
_SETTINGS = settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _registered() -> list[tuple[str, dict[str, Any]]]:
    """Every registered params schema, as the object schema scenario.py checks params against."""
    reg = get_registry()
    out: list[tuple[str, dict[str, Any]]] = []
    for kind, table in (("fault", reg.faults), ("probe", reg.probes), ("step", reg.recoveries)):
        for name, registration in sorted(table.items()):
            if registration.params_schema:
                out.append(
                    (f"{kind} {name}", scenario_mod._params_schema(registration.params_schema))
                )
    return out


REGISTERED = _registered()


def _shipped_data() -> list[dict[str, Any]]:
    return [load_yaml_file(p).data for p in SHIPPED]


def _js_valid(schema: Any, instance: Any) -> bool:
    return next(iter(Draft202012Validator(schema).iter_errors(instance)), None) is None


# ----------------------------------------------------------------------------- generators
def _property_names(schema: Any, into: set[str]) -> set[str]:
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key == "properties" and isinstance(value, dict):
                into.update(value)
            _property_names(value, into)
    elif isinstance(schema, list):
        for value in schema:
            _property_names(value, into)
    return into


KEYS = sorted(
    _property_names([scenario_schema(), *(s for _, s in REGISTERED)], set())
    | {"type", "kind", "target", "targets", "probe"}
)
NEAR_MISSES = [
    "5m", "90s", "PT5M", "1h30m", "250ms", " 5 ", "5", "5.5", "-5s", "1.2.3s", "", " ",
    "KILL", "SIGTERM", "kill", "P2", "P5", "automatic", "scripted", "Manual", "demo-service",
    "a.b", "A.b", "a..b", "arn:aws:resiliencehub:eu", "arn:aws:s3:", "Ingress", "TCP", "engine",
    "accounts", "public.accounts", "1table", "mod.sub:func", "x" * 64, "x" * 65, "é" * 65, "🦆",
]  # fmt: skip
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-2, max_value=1002),
    st.floats(),
    st.sampled_from([0.0, -0.0, 1.0, 2.0, 100.0, 100.5, 0.5, 1e300, math.inf, -math.inf]),
    st.text(max_size=30),
    st.text(min_size=60, max_size=300),
    st.sampled_from(NEAR_MISSES),
)
keys = st.one_of(st.sampled_from(KEYS), st.text(max_size=12))
junk = st.recursive(
    scalars,
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(keys, kids, max_size=4),
    max_leaves=12,
)


def _resolve(root: dict[str, Any], ref: str) -> Any:
    node: Any = root
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def from_schema(schema: Any, root: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Instances that are mostly valid for ``schema`` (enough to reach the True answers)."""
    if not isinstance(schema, dict) or not schema:
        return junk
    if "$ref" in schema:
        target = _resolve(root, schema["$ref"])
        return st.deferred(lambda: from_schema(target, root))
    if "allOf" in schema:  # ours: allOf [action] plus extra properties
        merged = dict(_resolve(root, schema["allOf"][0]["$ref"]))
        merged["properties"] = {**merged.get("properties", {}), **schema.get("properties", {})}
        return from_schema(merged, root)
    for word in ("oneOf", "anyOf"):
        if word in schema:
            return st.one_of([from_schema(s, root) for s in schema[word]])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema.get("type")
    if isinstance(kind, list):
        return st.one_of([from_schema({**schema, "type": k}, root) for k in kind])
    if kind == "object" or "properties" in schema:
        props = {k: from_schema(v, root) for k, v in schema.get("properties", {}).items()}
        required = {k: props.pop(k, junk) for k in schema.get("required", [])}
        base = st.fixed_dictionaries(required, optional=props)
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            more = st.dictionaries(st.text(max_size=8), from_schema(extra, root), max_size=3)
            return st.builds(lambda a, b: {**b, **a}, base, more)
        return base
    if kind == "array":
        hi = min(schema.get("maxItems", 4), 4)
        return st.lists(
            from_schema(schema.get("items", {}), root),
            min_size=schema.get("minItems", 0),
            max_size=hi,
        )
    if kind == "string":
        lo, hi = schema.get("minLength", 0), schema.get("maxLength", 80)
        if "pattern" in schema:
            return st.from_regex(schema["pattern"]).filter(lambda s: lo <= len(s) <= hi)
        return st.text(min_size=lo, max_size=min(hi, 20))
    if kind in ("integer", "number"):
        lo = schema.get("minimum", schema.get("exclusiveMinimum"))
        hi = schema.get("maximum")
        ints = st.integers(min_value=lo, max_value=hi)
        if kind == "integer":
            return ints
        return ints | st.floats(min_value=lo, max_value=hi, allow_nan=False)
    if kind == "boolean":
        return st.booleans()
    return junk


def _paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    if isinstance(value, dict):
        for key, sub in value.items():
            yield from _paths(sub, (*path, key))
    elif isinstance(value, list):
        for i, sub in enumerate(value):
            yield from _paths(sub, (*path, i))


def _retyped(value: Any) -> list[Any]:
    """Near misses of a value: a bool for an int, a float for an int, a string, an empty list ..."""
    if isinstance(value, bool):
        return [int(value), str(value).lower(), [value], None]
    if isinstance(value, int):
        return [True, False, float(value), str(value), value + 0.5, value - 1, -value - 1, 0]
    if isinstance(value, float):
        return [int(value) if math.isfinite(value) else 0, str(value), value > 0, -value, math.nan]
    if isinstance(value, str):
        return ["", value * 40, value.upper(), value + "é", f" {value}", value[:-1], [value], 5]
    if isinstance(value, list):
        return [[], value[:1], value * 3, [*value, None], dict(enumerate(value)), None]
    if isinstance(value, dict):
        return [[], {}, list(value.values()), {**value, "zz": 1}, None]
    return [0, "", False, {}]


def _example(schema: Any, root: dict[str, Any]) -> Any:
    """One valid instance with every optional property present (for single-step near misses)."""
    if not isinstance(schema, dict):
        return "anything"
    if "$ref" in schema:
        return _example(_resolve(root, schema["$ref"]), root)
    if "allOf" in schema:
        merged = dict(_resolve(root, schema["allOf"][0]["$ref"]))
        merged["properties"] = {**merged.get("properties", {}), **schema.get("properties", {})}
        return _example(merged, root)
    for word in ("oneOf", "anyOf"):
        if word in schema:
            return _example(schema[word][0], root)
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    kind = kind[0] if isinstance(kind, list) else kind
    if kind == "object" or "properties" in schema:
        out = {k: _example(v, root) for k, v in schema.get("properties", {}).items()}
        if isinstance(schema.get("additionalProperties"), dict):
            out["extra_key"] = _example(schema["additionalProperties"], root)
        return {k: v for k, v in out.items() if v is not _NO_EXAMPLE}
    if kind == "array":
        item = _example(schema.get("items", {}), root)
        return [item, item] if item is not _NO_EXAMPLE else []
    if kind == "string":
        lo, hi = schema.get("minLength", 0), schema.get("maxLength", 10**6)
        for candidate in (*_SAMPLES, *NEAR_MISSES):
            if lo <= len(candidate) <= hi and re.search(schema.get("pattern", ""), candidate):
                return candidate
        return _NO_EXAMPLE
    if kind in ("integer", "number"):
        if "minimum" in schema:
            return schema["minimum"]
        if "exclusiveMinimum" in schema:
            return schema["exclusiveMinimum"] + 1
        return 7 if kind == "integer" else 2.5
    if kind == "boolean":
        return True
    return "anything"


_NO_EXAMPLE = object()
_SAMPLES = ["victim", "accounts", "mod.sub:func", "arn:aws:resiliencehub:eu", "5m", "k8s.pods"]


def _near_misses(value: Any) -> Iterator[Any]:
    """``value`` changed in one place: every node retyped, every key dropped, a key added."""
    for path in _paths(value):
        parent: Any = None
        node = value
        for part in path:
            parent, node = node, node[part]
        for new in _retyped(node):
            yield _replaced(value, path, new)
        if parent is not None:
            yield _replaced(value, path, _DELETE)
        if isinstance(node, dict):
            yield _replaced(value, (*path, "zz_unknown"), 1)


_DELETE = object()


def _replaced(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    out = copy.deepcopy(value)
    node = out
    for part in path[:-1]:
        node = node[part]
    if new is _DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = new
    return out


@st.composite
def mutated(draw: st.DrawFn, base: st.SearchStrategy[Any]) -> Any:
    value = copy.deepcopy(draw(base))
    for _ in range(draw(st.sampled_from([0, 1, 1, 1, 1, 2, 3]))):
        path = draw(st.sampled_from(list(_paths(value))))
        node, parent = value, None
        for part in path:
            parent, node = node, node[part]
        op = draw(
            st.sampled_from(["replace", "replace", "retype", "retype", "retype", "delete", "add"])
        )
        new: Any
        if op == "add" and isinstance(node, dict):
            node[draw(keys)] = draw(junk)
            continue
        if op == "add" and isinstance(node, list):
            node.append(draw(junk))
            continue
        if op == "delete" and parent is not None:
            del parent[path[-1]]
            continue
        new = draw(st.sampled_from(_retyped(node))) if op == "retype" else draw(junk)
        if parent is None:
            value = new
        else:
            parent[path[-1]] = new
    return value


# ----------------------------------------------------------------------------- 1. differential
def _differential(schema: dict[str, Any], instance: Any, seen: Counter[str]) -> None:
    fast = is_valid(schema, instance)
    truth = _js_valid(schema, instance)
    seen[f"fast={fast} jsonschema={truth}"] += 1
    assert fast is not None, f"declined a shipped schema for {instance!r}"
    assert fast == truth, f"fast checker says {fast}, jsonschema {truth}, for {instance!r}"


def test_differential_scenarios() -> None:
    """Mutated shipped scenarios and scenario-shaped instances: both checkers agree."""
    schema = scenario_schema()
    bases = st.one_of(st.sampled_from(_shipped_data()), from_schema(schema, schema))
    seen: Counter[str] = Counter()

    @settings(_SETTINGS, max_examples=200)  # whole scenarios are slow to generate
    @given(instance=mutated(bases))
    def check(instance: Any) -> None:
        _differential(schema, instance, seen)

    check()
    # Not vacuous: both answers came up often.
    assert seen["fast=True jsonschema=True"] >= 40, seen
    assert seen["fast=False jsonschema=False"] >= 40, seen


def test_differential_params() -> None:
    """Every registered params schema, with generated and mutated params: both agree."""
    seen: Counter[str] = Counter()
    names: Counter[str] = Counter()

    @_SETTINGS
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        name, schema = data.draw(st.sampled_from(REGISTERED))
        names[name] += 1
        _differential(schema, data.draw(mutated(from_schema(schema, schema))), seen)

    check()
    assert seen["fast=True jsonschema=True"] >= 40, seen
    assert seen["fast=False jsonschema=False"] >= 40, seen
    assert len(names) >= len(REGISTERED) // 3, names


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_every_near_miss_of_a_shipped_scenario(path: Path) -> None:
    """Every shipped scenario changed in exactly one place, every place, every way: a lenient
    keyword shows up here even where random generation rarely reaches."""
    schema = scenario_schema()
    seen: Counter[str] = Counter()
    for instance in _near_misses(load_yaml_file(path).data):
        _differential(schema, instance, seen)
    assert seen["fast=False jsonschema=False"] >= 20, seen


def test_every_near_miss_of_every_params_schema() -> None:
    """The same for an example of each registered params schema with every property present."""
    seen: Counter[str] = Counter()
    for name, schema in REGISTERED:
        example = _example(schema, schema)
        assert is_valid(schema, example) is True and _js_valid(schema, example), (name, example)
        for instance in _near_misses(example):
            _differential(schema, instance, seen)
    assert seen["fast=False jsonschema=False"] >= 200, seen
    assert seen["fast=True jsonschema=True"] >= 200, seen


# Hand-picked semantics where a naive checker goes wrong (each compared with jsonschema).
CORNERS: list[tuple[dict[str, Any], Any]] = [
    ({"type": "integer"}, True),
    ({"type": "integer"}, 1.0),
    ({"type": "integer"}, 1.5),
    ({"type": "integer"}, math.inf),
    ({"type": "number"}, False),
    ({"type": "number"}, math.nan),
    ({"type": ["string", "integer"]}, 3.0),
    ({"type": "number", "minimum": 0}, math.nan),
    ({"type": "number", "exclusiveMinimum": 0}, 0),
    ({"type": "number", "exclusiveMinimum": 0}, -0.0),
    ({"type": "number", "exclusiveMaximum": 1}, 1.0),
    ({"minimum": 5}, "a string is not checked"),
    ({"maximum": 5}, True),
    ({"enum": [1, 2]}, True),
    ({"enum": [1, 2]}, 1.0),
    ({"enum": [True]}, 1),
    ({"enum": [[1, True]]}, [1, 1]),
    ({"enum": [{"a": [1]}]}, {"a": [1.0]}),
    ({"enum": ["a", "b"]}, ["a"]),
    ({"const": 0}, False),
    ({"const": None}, None),
    ({"pattern": "^a"}, "ba"),
    ({"pattern": "b"}, "abc"),
    ({"pattern": "^x$"}, "x\n"),
    ({"maxLength": 2}, "éé"),
    ({"maxLength": 1}, "🦆"),
    ({"minItems": 1}, "not an array"),
    ({"items": False}, []),
    ({"items": False}, [1]),
    ({"oneOf": [{"type": "number"}, {"type": "integer"}]}, 1),
    ({"oneOf": [{"type": "number"}, {"type": "integer"}]}, 1.5),
    ({"anyOf": [{"type": "null"}, {"minimum": 3}]}, 2),
    ({"not": {"type": "string"}}, 1),
    ({"additionalProperties": {"type": "integer"}, "properties": {"a": {}}}, {"a": "x", "b": 1}),
    ({"additionalProperties": {"type": "integer"}}, {"b": "x"}),
    ({"patternProperties": {"^x": {"type": "integer"}}, "additionalProperties": False}, {"xa": 1}),
    ({"patternProperties": {"^x": {"type": "integer"}}, "additionalProperties": False}, {"ya": 1}),
    ({"patternProperties": {"^x": {"type": "integer"}}}, {"xa": "s", "y": 1}),
    ({"required": ["a"]}, ["a"]),
    ({"required": ["a"], "properties": {"a": False}}, {"a": 1}),
    ({"$defs": {"n": {"type": "integer"}}, "properties": {"a": {"$ref": "#/$defs/n"}}}, {"a": 1}),
    ({"$defs": {"n": {"type": "integer"}}, "items": {"$ref": "#/$defs/n"}}, [1, "2"]),
    (
        {"$defs": {"t": {"type": "array", "items": {"$ref": "#/$defs/t"}}}, "$ref": "#/$defs/t"},
        [[[]], [[], [[]]]],
    ),
    (
        {"$defs": {"t": {"type": "array", "items": {"$ref": "#/$defs/t"}}}, "$ref": "#/$defs/t"},
        [[1]],
    ),
]


@pytest.mark.parametrize(("schema", "instance"), CORNERS, ids=[str(i) for i in range(len(CORNERS))])
def test_corner_cases_agree_with_jsonschema(schema: dict[str, Any], instance: Any) -> None:
    schema = copy.deepcopy(schema)  # a fresh object each time: the cache must not matter
    assert is_valid(schema, instance) is _js_valid(schema, instance)


DECLINED: list[dict[str, Any]] = [
    {"format": "email"},
    {"if": {"type": "string"}, "then": {"minLength": 2}},
    {"unevaluatedProperties": False},
    {"dependentRequired": {"a": ["b"]}},
    {"$dynamicRef": "#meta"},
    {"$ref": "https://example.com/other.json"},
    {"$ref": "#/$defs/missing"},
    {"properties": {"a": {"$id": "https://example.com/a", "type": "string"}}},
    {"$schema": "http://json-schema.org/draft-07/schema#", "type": "string"},
    {"type": "strnig"},
    {"typo_keyword": 1},
    {"uniqueItems": True},
    {"prefixItems": [{"type": "string"}]},
    {"items": [{"type": "string"}]},
    {"pattern": "("},
    {"minimum": "0"},
    {"maxLength": True},
    {"oneOf": []},
]


@pytest.mark.parametrize("schema", DECLINED, ids=[next(iter(s)) for s in DECLINED])
def test_what_it_does_not_implement_is_declined(schema: dict[str, Any]) -> None:
    assert compile_schema(schema) is None
    assert is_valid(schema, "abc") is None


def test_an_exception_while_checking_is_a_decline() -> None:
    """jsonschema would raise comparing a complex number: the fast checker hands it over."""
    assert is_valid({"minimum": 0}, complex(1, 1)) is None


def test_compiled_once_per_schema_object() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    assert compile_schema(schema) is compile_schema(schema)
    assert compile_schema(copy.deepcopy(schema)) is not compile_schema(schema)


# ----------------------------------------------------------------------------- 2. understood
def test_every_shipped_schema_is_understood() -> None:
    assert compile_schema(scenario_schema()) is not None
    declined = [name for name, schema in REGISTERED if compile_schema(schema) is None]
    assert not declined
    assert len(REGISTERED) >= 40  # the registry really was read


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_scenario_never_needs_jsonschema(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every shipped scenario (its shape and every fault, probe and step's params) is decided by
    the fast checker alone: jsonschema is made unimportable and the scenario still loads."""

    def no_jsonschema() -> Any:
        raise AssertionError("the scenario schema fell back to jsonschema")

    monkeypatch.setitem(sys.modules, "jsonschema", None)  # `import jsonschema` now fails
    monkeypatch.setattr(scenario_mod, "_validator", no_jsonschema)
    config = load_config(workdir=REPO)
    loaded = load_scenario(path, registry=get_registry(), config=config)
    assert loaded.id == path.stem
    assert is_valid(scenario_schema(), load_yaml_file(path).data) is True


def test_error_messages_are_jsonschemas(monkeypatch: pytest.MonkeyPatch) -> None:
    """Mutated shipped scenarios through load_scenario: the same scenario or the same one-line
    error, byte for byte, whether the fast checker runs first or not at all."""
    registry = get_registry()
    seen: Counter[str] = Counter()
    with tempfile.TemporaryDirectory(prefix="drillbook-schemacheck-") as tmp:
        case = Path(tmp) / "case.yaml"

        def outcome(fast: bool) -> tuple[str, Any]:
            with monkeypatch.context() as m:
                if not fast:
                    m.setattr(schemacheck, "is_valid", lambda schema, instance: None)
                try:
                    return "ok", load_scenario(case, registry=registry, display="case.yaml")
                except ScenarioError as exc:
                    return "error", str(exc)

        @settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
        @given(data=mutated(st.sampled_from(_shipped_data())))
        def check(data: Any) -> None:
            case.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
            with_fast, without = outcome(True), outcome(False)
            seen[with_fast[0]] += 1
            assert with_fast == without

        check()
    assert seen["ok"] >= 10 and seen["error"] >= 10, seen


# ----------------------------------------------------------------------------- 3. a real process
GOOD = {
    "id": "victim_kill",
    "objectives": {"rto": "30s", "severity": "P2"},
    "probe_interval": "250ms",
    "fault": {"type": "process.kill", "target": "victim", "signal": "KILL", "ttl": "5m"},
    "probes": [{"name": "health", "type": "command", "target": "victim", "command": ["true"]}],
    "recovery": [{"kind": "automatic"}],
}
_PROBE = (
    "import sys\n"
    "from drillbook.cli import main\n"
    "code = main(sys.argv[1:])\n"
    "print('JSONSCHEMA-IMPORTED', 'jsonschema' in sys.modules, code)\n"
)


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Path]:
    """A project whose one target is a live process (a dry run resolves it, touches nothing)."""
    victim = subprocess.Popen(["sleep", "600"], start_new_session=True)
    try:
        (tmp_path / "victim.pid").write_text(str(victim.pid))
        (tmp_path / "drillbook.yaml").write_text(
            "environment: sandbox\n"
            "safety: {max_targets: 1, max_percent: 100}\n"
            "targets:\n  victim: {backend: local, pid_file: victim.pid}\n"
        )
        (tmp_path / "scenarios").mkdir()
        (tmp_path / "scenarios" / "good.yaml").write_text(yaml.safe_dump(GOOD))
        bad = json.loads(json.dumps(GOOD))
        bad["probe_interval"] = "soon"
        (tmp_path / "scenarios" / "bad.yaml").write_text(yaml.safe_dump(bad, sort_keys=False))
        yield tmp_path
    finally:
        victim.kill()
        victim.wait()


def _run(project: Path, *args: str) -> tuple[int, str, str, bool]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRILLBOOK_")}
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    last = proc.stdout.strip().splitlines()[-1].split()
    assert last[0] == "JSONSCHEMA-IMPORTED", proc.stdout
    return int(last[2]), proc.stdout, proc.stderr, last[1] == "True"


@pytest.mark.parametrize("command", [["validate"], ["run", "--dry-run"]])
def test_a_valid_scenario_never_imports_jsonschema(project: Path, command: list[str]) -> None:
    code, out, err, imported = _run(project, *command, "scenarios/good.yaml")
    assert code == 0, (out, err)
    assert not imported, "a valid scenario imported jsonschema"
    if command == ["run", "--dry-run"]:
        assert "would inject process.kill" in out, out


@pytest.mark.parametrize("command", [["validate"], ["run", "--dry-run"]])
def test_an_invalid_scenario_says_what_it_said_before(project: Path, command: list[str]) -> None:
    code, out, err, imported = _run(project, *command, "scenarios/bad.yaml")
    assert code == 2, (out, err)
    text = (project / "scenarios" / "bad.yaml").read_text().splitlines()
    line = text.index("probe_interval: soon") + 1
    assert err.strip().splitlines() == [
        f"scenarios/bad.yaml:{line}: probe_interval: expected a duration such as 90s, 5m, 1h30m, "
        "PT5M or seconds, got 'soon'"
    ]
    assert imported, "the error should have come from jsonschema"

"""A small, conservative JSON Schema (draft 2020-12) checker for the happy path.

Why it exists: importing ``jsonschema`` (with referencing, attrs, rpds and the bundled
metaschemas) costs about 35 ms, a tenth of a whole ``drillbook run`` of a trivial scenario, and a
valid scenario does not need its error messages. So :func:`is_valid` answers first, and
``jsonschema`` stays the source of truth: it runs only when this module says "invalid" or
"I do not know", and its error is the one shown.

Contract, which the differential test in ``tests/core/test_schemacheck.py`` checks against
``jsonschema``:

- ``True``: the instance is valid (``Draft202012Validator(schema).iter_errors`` yields nothing).
  Saying True for an invalid instance would be a bug, so every keyword is mirrored on
  ``jsonschema``'s own semantics (``bool`` is neither integer nor number, ``1.0`` is an integer,
  ``pattern`` is ``re.search``, ``enum`` compares as ``jsonschema``'s ``equal`` does).
- ``False``: invalid as far as this module can tell; the caller asks ``jsonschema``.
- ``None``: declined: the schema uses something not implemented here (``format``, ``if``,
  ``unevaluated*``, ``dependent*``, ``$dynamicRef``, a remote ``$ref``, a nested ``$id``,
  keywords this module has never heard of ...), or checking raised (``jsonschema`` would then
  raise or report the same way).

Schemas are compiled once into closures and cached by identity (the cache holds the schema, so
the id cannot be reused); a schema must not be mutated after its first use.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["Check", "compile_schema", "is_valid"]

#: A compiled schema: instance -> valid?
Check = Callable[[Any], bool]

_DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"
#: Keywords that never make an instance invalid (``$defs`` is reached through ``$ref``).
_ANNOTATIONS = frozenset(
    {
        "title",
        "description",
        "default",
        "examples",
        "$comment",
        "deprecated",
        "readOnly",
        "writeOnly",
        "$defs",
    }
)
_IMPLEMENTED = frozenset(
    {
        "$ref",
        "type",
        "enum",
        "const",
        "minLength",
        "maxLength",
        "pattern",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "items",
        "minItems",
        "maxItems",
        "properties",
        "patternProperties",
        "additionalProperties",
        "required",
        "allOf",
        "anyOf",
        "oneOf",
        "not",
    }
)
_KNOWN = _ANNOTATIONS | _IMPLEMENTED
_ROOT_ONLY = frozenset({"$schema", "$id"})


class _Declined(Exception):
    """The schema uses something this module does not implement exactly."""


def _is_integer(x: Any) -> bool:
    t = type(x)
    if t is int:
        return True
    if t is bool:
        return False
    return isinstance(x, int) or (isinstance(x, float) and x.is_integer())


def _is_number(x: Any) -> bool:
    t = type(x)
    if t is int or t is float:
        return True
    if t is bool:
        return False
    from numbers import Number  # only for exotic numbers (Decimal, Fraction ...), never from YAML

    return isinstance(x, Number)


_TYPES: dict[str, Check] = {
    "object": lambda x: isinstance(x, dict),
    "array": lambda x: isinstance(x, list),
    "string": lambda x: isinstance(x, str),
    "boolean": lambda x: isinstance(x, bool),
    "null": lambda x: x is None,
    "integer": _is_integer,
    "number": _is_number,
}


_TRUE, _FALSE = object(), object()


def _unbool(x: Any) -> Any:
    return _TRUE if x is True else _FALSE if x is False else x


def _equal(one: Any, two: Any) -> bool:
    """``jsonschema._utils.equal``: equality in which ``True`` is not ``1``, recursively."""
    if one is two:
        return True
    if isinstance(one, str) or isinstance(two, str):
        return bool(one == two)
    if isinstance(one, Sequence) and isinstance(two, Sequence):
        return len(one) == len(two) and all(_equal(a, b) for a, b in zip(one, two, strict=True))
    if isinstance(one, Mapping) and isinstance(two, Mapping):
        return len(one) == len(two) and all(k in two and _equal(v, two[k]) for k, v in one.items())
    return bool(_unbool(one) == _unbool(two))


def _always(_: Any) -> bool:
    return True


def _never(_: Any) -> bool:
    return False


def _all(checks: Sequence[Check]) -> Check:
    if not checks:
        return _always
    if len(checks) == 1:
        return checks[0]
    if len(checks) == 2:
        first, second = checks
        return lambda x: first(x) and second(x)
    frozen = tuple(checks)
    return lambda x: all(c(x) for c in frozen)


def _count(value: Any) -> int:
    if type(value) is not int or value < 0:
        raise _Declined(f"not a non-negative integer: {value!r}")
    return value


def _bound(value: Any) -> int | float:
    if type(value) not in (int, float):
        raise _Declined(f"not a number: {value!r}")
    return value  # type: ignore[no-any-return]


class _Compiler:
    def __init__(self, root: Mapping[str, Any]) -> None:
        self.root = root
        #: ``$ref`` -> its check; a cell filled after compiling, so recursive refs work.
        self.refs: dict[str, list[Check]] = {}

    def schema(self, schema: Any, *, root: bool = False) -> Check:
        if schema is True:
            return _always
        if schema is False:
            return _never
        if type(schema) is not dict:
            raise _Declined(f"a schema must be a dict or a bool, got {type(schema).__name__}")
        keys = schema.keys()
        unknown = keys - _KNOWN - (_ROOT_ONLY if root else frozenset())
        if unknown:
            raise _Declined(f"unimplemented keywords: {sorted(map(str, unknown))}")
        if root and schema.get("$schema", _DRAFT_2020_12) != _DRAFT_2020_12:
            raise _Declined(f"$schema {schema['$schema']!r}")
        checks: list[Check] = []
        if "$ref" in keys:
            checks.append(self.ref(schema["$ref"]))
        if "type" in keys:
            checks.append(self.type(schema["type"]))
        if "enum" in keys:
            checks.append(self.enum(schema["enum"]))
        if "const" in keys:
            const = schema["const"]
            checks.append(lambda x: _equal(x, const))
        for make in (self.string, self.number, self.array, self.object):
            check = make(schema)
            if check is not None:
                checks.append(check)
        for word in ("allOf", "anyOf", "oneOf"):
            if word in keys:
                checks.append(self.combine(word, schema[word]))
        if "not" in keys:
            inner = self.schema(schema["not"])
            checks.append(lambda x: not inner(x))
        return _all(checks)

    def ref(self, ref: Any) -> Check:
        if not isinstance(ref, str) or not (ref == "#" or ref.startswith("#/")):
            raise _Declined(f"$ref {ref!r}: only local JSON pointers are implemented")
        if ref not in self.refs:
            cell: list[Check] = []
            self.refs[ref] = cell
            cell.append(self.schema(self.resolve(ref), root=ref == "#"))
        cell = self.refs[ref]
        if cell:
            return cell[0]
        return lambda x: cell[0](x)  # a recursive ref: the cell is filled once compiled

    def resolve(self, ref: str) -> Any:
        node: Any = self.root
        for raw in ref[2:].split("/") if ref != "#" else ():
            if "%" in raw:
                raise _Declined(f"$ref {ref!r}: percent-encoding is not implemented")
            part = raw.replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and part in node:
                if node is not self.root and ("$id" in node or "$anchor" in node):
                    raise _Declined(f"$ref {ref!r} passes through a nested $id")
                node = node[part]
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                raise _Declined(f"$ref {ref!r} does not resolve")
        return node

    def type(self, spec: Any) -> Check:
        names = [spec] if isinstance(spec, str) else spec
        if not isinstance(names, list) or not names:
            raise _Declined(f"type {spec!r}")
        try:
            checks = tuple(_TYPES[n] for n in names)
        except (KeyError, TypeError):
            raise _Declined(f"type {spec!r}") from None
        if len(checks) == 1:
            return checks[0]
        return lambda x: any(c(x) for c in checks)

    def enum(self, values: Any) -> Check:
        if not isinstance(values, list):
            raise _Declined(f"enum {values!r}")
        if all(type(v) is str for v in values):
            strings = frozenset(values)
            # ``equal`` compares a str with ``==`` only, so a plain str is in the set or invalid.
            return lambda x: x in strings if type(x) is str else any(_equal(v, x) for v in values)
        items = tuple(values)
        return lambda x: any(_equal(v, x) for v in items)

    def string(self, schema: dict[str, Any]) -> Check | None:
        lo = _count(schema["minLength"]) if "minLength" in schema else None
        hi = _count(schema["maxLength"]) if "maxLength" in schema else None
        regex = None
        if "pattern" in schema:
            if not isinstance(schema["pattern"], str):
                raise _Declined(f"pattern {schema['pattern']!r}")
            try:
                regex = re.compile(schema["pattern"])
            except re.error as exc:
                raise _Declined(f"pattern {schema['pattern']!r}: {exc}") from None
        if lo is None and hi is None and regex is None:
            return None
        search = regex.search if regex is not None else None

        def check(x: Any) -> bool:
            if not isinstance(x, str):
                return True
            n = len(x)
            if (lo is not None and n < lo) or (hi is not None and n > hi):
                return False
            return search is None or search(x) is not None

        return check

    def number(self, schema: dict[str, Any]) -> Check | None:
        bounds = [
            (word, _bound(schema[word]))
            for word in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")
            if word in schema
        ]
        if not bounds:
            return None
        lo = dict(bounds).get("minimum")
        hi = dict(bounds).get("maximum")
        xlo = dict(bounds).get("exclusiveMinimum")
        xhi = dict(bounds).get("exclusiveMaximum")

        def check(x: Any) -> bool:
            if not _is_number(x):
                return True
            # The same comparisons as jsonschema, so NaN and mixed int/float agree with it.
            return not (
                (lo is not None and x < lo)
                or (hi is not None and x > hi)
                or (xlo is not None and x <= xlo)
                or (xhi is not None and x >= xhi)
            )

        return check

    def array(self, schema: dict[str, Any]) -> Check | None:
        lo = _count(schema["minItems"]) if "minItems" in schema else None
        hi = _count(schema["maxItems"]) if "maxItems" in schema else None
        item = self.schema(schema["items"]) if "items" in schema else None
        if lo is None and hi is None and item is None:
            return None

        def check(x: Any) -> bool:
            if not isinstance(x, list):
                return True
            n = len(x)
            if (lo is not None and n < lo) or (hi is not None and n > hi):
                return False
            if item is not None:
                for each in x:
                    if not item(each):
                        return False
            return True

        return check

    def object(self, schema: dict[str, Any]) -> Check | None:
        props_raw = schema.get("properties", {})
        patterns_raw = schema.get("patternProperties", {})
        required = schema.get("required", [])
        if not isinstance(props_raw, dict) or not isinstance(patterns_raw, dict):
            raise _Declined("properties and patternProperties must be dicts")
        if not isinstance(required, list):
            raise _Declined(f"required {required!r}")
        extra_raw = schema.get("additionalProperties", True)
        if not ("properties" in schema or "patternProperties" in schema or required) and (
            extra_raw is True
        ):
            return None
        props = {name: self.schema(sub) for name, sub in props_raw.items()}
        patterns: list[tuple[Callable[[str], Any], Check]] = []
        for pattern, sub in patterns_raw.items():
            try:
                patterns.append((re.compile(pattern).search, self.schema(sub)))
            except (re.error, TypeError) as exc:
                raise _Declined(f"patternProperties {pattern!r}: {exc}") from None
        if not isinstance(extra_raw, bool | dict):
            raise _Declined(f"additionalProperties {extra_raw!r}")
        # jsonschema: a dict is a schema for the extras; False forbids them; True allows them.
        extra = None if extra_raw is True else self.schema(extra_raw)
        # An extra is a key outside properties that misses jsonschema's *joined* regex.
        matched: Callable[[str], Any] | None = None
        if patterns_raw and extra is not None:
            try:
                matched = re.compile("|".join(patterns_raw)).search
            except (re.error, TypeError) as exc:
                raise _Declined(f"patternProperties joined: {exc}") from None
        need = tuple(required)
        pairs = tuple(props.items())

        def check(x: Any) -> bool:
            if not isinstance(x, dict):
                return True
            for name in need:
                if name not in x:
                    return False
            for name, sub in pairs:
                if name in x and not sub(x[name]):
                    return False
            if patterns:
                for key, value in x.items():
                    for search, sub in patterns:
                        if search(key) and not sub(value):
                            return False
            if extra is not None:
                for key, value in x.items():
                    if key in props:
                        continue
                    if matched is not None and matched(key):
                        continue
                    if not extra(value):
                        return False
            return True

        return check

    def combine(self, word: str, subs: Any) -> Check:
        if not isinstance(subs, list) or not subs:
            raise _Declined(f"{word} {subs!r}")
        checks = tuple(self.schema(s) for s in subs)
        if word == "allOf":
            return _all(checks)
        if word == "anyOf":
            return lambda x: any(c(x) for c in checks)

        def one_of(x: Any) -> bool:
            found = False
            for c in checks:
                if c(x):
                    if found:
                        return False
                    found = True
            return found

        return one_of


#: id(schema) -> (schema, its check or None when declined). Holding the schema keeps its id.
_CACHE: dict[int, tuple[Any, Check | None]] = {}
_CACHE_MAX = 4096


def compile_schema(schema: Mapping[str, Any] | bool) -> Check | None:
    """The schema's check, compiled once per schema object; None when it is declined."""
    hit = _CACHE.get(id(schema))
    if hit is not None and hit[0] is schema:
        return hit[1]
    check: Check | None
    try:
        if isinstance(schema, bool):
            check = _always if schema else _never
        else:
            compiler = _Compiler(schema)
            check = compiler.schema(schema, root=True)
    except (_Declined, RecursionError):
        check = None
    if len(_CACHE) >= _CACHE_MAX:  # callers that build a schema per call must not grow it forever
        _CACHE.clear()
    _CACHE[id(schema)] = (schema, check)
    return check


def is_valid(schema: Mapping[str, Any] | bool, instance: Any) -> bool | None:
    """True: valid. False: invalid as far as this module knows. None: declined (ask jsonschema)."""
    check = compile_schema(schema)
    if check is None:
        return None
    try:
        return check(instance)
    except Exception:  # e.g. comparing a complex number, or recursion: jsonschema decides
        return None

"""Kubernetes label selectors: parse the string form, match labels, build ``LabelSelector`` dicts.

Why here and not the client: the client only passes selector strings to the apiserver, but the
isolation fault must turn a selector into a NetworkPolicy ``podSelector`` and the traffic probe
must evaluate NetworkPolicy selectors against pod and namespace labels locally.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from drillbook.errors import ConfigError

__all__ = [
    "Requirement",
    "combine",
    "matches",
    "matches_label_selector",
    "parse",
    "to_label_selector",
]

_SET = re.compile(r"^\s*(!?)([A-Za-z0-9./_-]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")
_EQ = re.compile(r"^\s*([A-Za-z0-9./_-]+)\s*(==|=|!=)\s*([A-Za-z0-9._-]*)\s*$")
_EXISTS = re.compile(r"^\s*(!?)([A-Za-z0-9./_-]+)\s*$")


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # In, NotIn, Exists, DoesNotExist
    values: tuple[str, ...] = ()

    def holds(self, labels: Mapping[str, str]) -> bool:
        if self.op == "Exists":
            return self.key in labels
        if self.op == "DoesNotExist":
            return self.key not in labels
        if self.op == "In":
            return labels.get(self.key) in self.values
        return labels.get(self.key) not in self.values  # NotIn (absent key matches, as upstream)


def _split(text: str) -> list[str]:
    """Split on commas that are not inside ``( )``."""
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return [p for p in (x.strip() for x in parts) if p]


def parse(selector: str | None) -> tuple[Requirement, ...]:
    """Requirements of a selector string (``app=web,tier in (a,b),!canary``); empty matches all."""
    out: list[Requirement] = []
    for part in _split(selector or ""):
        if m := _SET.match(part):
            if m.group(1):
                raise ConfigError(f"bad label selector term {part!r}", field="selector")
            values = tuple(v.strip() for v in m.group(4).split(",") if v.strip())
            out.append(Requirement(m.group(2), "In" if m.group(3) == "in" else "NotIn", values))
        elif m := _EQ.match(part):
            op = "NotIn" if m.group(2) == "!=" else "In"
            out.append(Requirement(m.group(1), op, (m.group(3),)))
        elif m := _EXISTS.match(part):
            out.append(Requirement(m.group(2), "DoesNotExist" if m.group(1) else "Exists"))
        else:
            raise ConfigError(f"bad label selector term {part!r}", field="selector")
    return tuple(out)


def combine(*selectors: str | None) -> str:
    """AND of several selector strings (a fault's selector narrows its target's, never widens)."""
    return ",".join(s.strip() for s in selectors if s and s.strip())


def matches(selector: str | None, labels: Mapping[str, str] | None) -> bool:
    return all(r.holds(labels or {}) for r in parse(selector))


def to_label_selector(selector: str | None) -> dict[str, Any]:
    """The ``LabelSelector`` object (matchLabels + matchExpressions) for a selector string."""
    match_labels: dict[str, str] = {}
    exprs: list[dict[str, Any]] = []
    for r in parse(selector):
        if r.op == "In" and len(r.values) == 1 and r.key not in match_labels:
            match_labels[r.key] = r.values[0]
        else:
            expr: dict[str, Any] = {"key": r.key, "operator": r.op}
            if r.op in ("In", "NotIn"):
                expr["values"] = list(r.values)
            exprs.append(expr)
    out: dict[str, Any] = {}
    if match_labels:
        out["matchLabels"] = match_labels
    if exprs:
        out["matchExpressions"] = exprs
    return out


def matches_label_selector(sel: Any, labels: Mapping[str, str] | None) -> bool:
    """Whether a ``LabelSelector`` (client model or dict; None/empty selects everything) matches."""
    if sel is None:
        return True
    labels = labels or {}
    if isinstance(sel, Mapping):
        ml = sel.get("matchLabels") or sel.get("match_labels") or {}
        exprs = sel.get("matchExpressions") or sel.get("match_expressions") or []
    else:
        ml = getattr(sel, "match_labels", None) or {}
        exprs = getattr(sel, "match_expressions", None) or []
    if any(labels.get(k) != v for k, v in ml.items()):
        return False
    for e in exprs:
        key = e["key"] if isinstance(e, Mapping) else e.key
        op = e["operator"] if isinstance(e, Mapping) else e.operator
        values = (e.get("values") if isinstance(e, Mapping) else e.values) or []
        if not Requirement(key, op, tuple(values)).holds(labels):
            return False
    return True

"""From a target in drillbook.yaml to the containers it means, and the opt-in rule.

A docker target names its containers one of three ways (the first present wins)::

    web:   {backend: docker, container: shop-web}                       # by name or ID
    api:   {backend: docker, labels: {app: api, tier: back}}            # label selector
    cart:  {backend: docker, compose: {project: shop, service: cart}}   # Compose labels

Why the opt-in label: a destructive fault touches only containers that carry
``drillbook.chaos=allowed`` (the label is configurable), unless the config waives it with
``backends.docker.require_opt_in: false``. The check runs on what the selector resolved to, right
before injecting, so a container that lost its label since the drill was written is left alone.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from drillbook.backends.base import Context
from drillbook.errors import ConfigError, FaultError, SafetyError
from drillbook.model import TargetSpec

__all__ = [
    "COMPOSE_PROJECT",
    "COMPOSE_SERVICE",
    "DEFAULT_OPT_IN",
    "check_opt_in",
    "describe_selector",
    "label_filters",
    "opt_in_label",
    "resolve_containers",
    "resolve_target",
    "wait_for",
]

COMPOSE_PROJECT = "com.docker.compose.project"
COMPOSE_SERVICE = "com.docker.compose.service"
DEFAULT_OPT_IN = "drillbook.chaos=allowed"


def _labels(value: Any, target: str) -> dict[str, str]:
    if isinstance(value, Mapping):
        return {str(k): str(v) for k, v in value.items()}
    if isinstance(value, str):
        out: dict[str, str] = {}
        for part in value.split(","):
            key, sep, val = part.strip().partition("=")
            if not key:
                continue
            out[key] = val if sep else ""
        return out
    raise ConfigError(
        "expected a mapping or 'k=v,k2=v2'", source="drillbook.yaml", field=f"{target}.labels"
    )


def label_filters(target: TargetSpec) -> dict[str, str] | None:
    """The label selector a target means, or None when it names a container directly."""
    params = target.params
    if params.get("container") or params.get("name"):
        return None
    if "labels" in params:
        labels = _labels(params["labels"], target.name)
        if labels:
            return labels
    compose = params.get("compose")
    if isinstance(compose, Mapping) and compose.get("project"):
        labels = {COMPOSE_PROJECT: str(compose["project"])}
        if compose.get("service"):
            labels[COMPOSE_SERVICE] = str(compose["service"])
        return labels
    raise ConfigError(
        "a docker target needs container, labels or compose: {project, service}",
        source="drillbook.yaml",
        field=f"targets.{target.name}",
    )


def describe_selector(target: TargetSpec) -> str:
    labels = label_filters(target)
    if labels is None:
        return f"container {target.params.get('container') or target.params.get('name')}"
    return "labels " + ",".join(f"{k}={v}" if v else k for k, v in labels.items())


def resolve_target(client: Any, target: TargetSpec, *, running_only: bool = False) -> list[Any]:
    """The containers a target means now (possibly none), sorted by name for stable plans."""
    from docker.errors import NotFound

    labels = label_filters(target)
    if labels is None:
        ref = str(target.params.get("container") or target.params.get("name"))
        try:
            found = [client.containers.get(ref)]
        except NotFound:
            return []
    else:
        filters = {"label": [f"{k}={v}" if v else k for k, v in labels.items()]}
        found = list(client.containers.list(all=not running_only, filters=filters))
    if running_only:
        found = [c for c in found if c.status == "running"]
    return sorted(found, key=lambda c: str(c.name))


def resolve_containers(client: Any, targets: Sequence[TargetSpec]) -> list[Any]:
    """Every container of every target; an empty selection is an error, not a no-op."""
    out: list[Any] = []
    seen: set[str] = set()
    for target in targets:
        found = resolve_target(client, target)
        if not found:
            raise FaultError(
                f"target {target.name}: no container matches {describe_selector(target)}"
            )
        for c in found:
            if c.id not in seen:
                seen.add(c.id)
                out.append(c)
    return out


def opt_in_label(settings: Mapping[str, Any]) -> tuple[str, str] | None:
    """(key, value) every destructive target must carry, or None when the config waives it."""
    if settings.get("require_opt_in", True) is False:
        return None
    key, _, value = str(settings.get("opt_in_label", DEFAULT_OPT_IN)).partition("=")
    return key, value


def check_opt_in(containers: Sequence[Any], settings: Mapping[str, Any], fault: str) -> None:
    """SafetyError naming every container without the opt-in label; touches nothing."""
    wanted = opt_in_label(settings)
    if wanted is None:
        return
    key, value = wanted
    refused = [
        str(c.name)
        for c in containers
        if (c.labels or {}).get(key) != value and not (value == "" and key in (c.labels or {}))
    ]
    if refused:
        raise SafetyError(
            f"{fault} refused: container(s) {', '.join(refused)} lack the opt-in label "
            f"{key}={value} (set backends.docker.require_opt_in: false to waive)"
        )


def wait_for(
    ctx: Context, predicate: Callable[[], bool], timeout_s: float, interval: float = 0.1
) -> bool:
    """Poll ``predicate`` until true or ``timeout_s`` (and the drill deadline) pass."""
    clock = ctx.clock
    end = clock.monotonic() + timeout_s
    if ctx.deadline is not None:
        end = min(end, ctx.deadline)
    while True:
        try:
            if predicate():
                return True
        except Exception:
            pass
        if clock.monotonic() >= end:
            return False
        clock.sleep(interval)

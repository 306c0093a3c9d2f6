"""Which container a fault's record means *now*: a target is what its selector names, not an ID.

Why: Compose (``up -d --force-recreate``), a deploy tool, or an operator re-creates a container
as the fix for a dead one; it gets a new ID but keeps its name, its labels, and (under Compose)
its project, service and replica number. A revert that looks the old ID up would call a recovered
service "gone" and fail the drill. So every docker fault records, at inject, the container's ID
*and* what names it (name, Compose project/service/number, the target's selector), and revert and
``verify_reverted`` find the container again with :func:`current`, in this order:

1. the recorded ID (the same container, restarted or not);
2. the recorded name, if the target's selector still names that container;
3. the same Compose project, service and replica number (Compose v1 names replicas
   ``shop_web_1``, v2 ``shop-web-1``: the number is what both keep).

A container found by 2 or 3 is the same target whatever its health; :func:`describe` says which
it was, so the revert's line in the timeline shows "re-created", the old and new IDs, and health.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from drillbook.backends.docker.recreate import container_inspect
from drillbook.backends.docker.targets import COMPOSE_PROJECT, COMPOSE_SERVICE, label_filters
from drillbook.model import TargetSpec

__all__ = ["COMPOSE_NUMBER", "current", "describe", "health_of", "identity", "selected_by"]

COMPOSE_NUMBER = "com.docker.compose.container-number"


def identity(data: Mapping[str, Any]) -> dict[str, Any]:
    """What names this container, for ``state()``: ID, name, and its Compose labels if any."""
    labels = data.get("Config", {}).get("Labels") or {}
    out: dict[str, Any] = {"id": str(data["Id"]), "name": str(data["Name"]).lstrip("/")}
    if labels.get(COMPOSE_PROJECT) and labels.get(COMPOSE_SERVICE):
        out["compose"] = {
            "project": labels[COMPOSE_PROJECT],
            "service": labels[COMPOSE_SERVICE],
            "number": labels.get(COMPOSE_NUMBER),
        }
    return out


def selected_by(data: Mapping[str, Any], targets: Sequence[TargetSpec]) -> bool:
    """True when one of ``targets`` names this container (no targets: nothing to check against)."""
    if not targets:
        return True
    labels = data.get("Config", {}).get("Labels") or {}
    name = str(data.get("Name", "")).lstrip("/")
    for target in targets:
        wanted = label_filters(target)
        if wanted is None:
            ref = str(target.params.get("container") or target.params.get("name"))
            if ref in (name, str(data.get("Id", ""))) or str(data.get("Id", "")).startswith(ref):
                return True
        elif all((labels.get(k) == v) if v else (k in labels) for k, v in wanted.items()):
            return True
    return False


def _by_compose(client: Any, compose: Mapping[str, Any]) -> list[dict[str, Any]]:
    if not compose.get("number"):
        return []
    filters = {
        "label": [
            f"{COMPOSE_PROJECT}={compose['project']}",
            f"{COMPOSE_SERVICE}={compose['service']}",
            f"{COMPOSE_NUMBER}={compose['number']}",
        ]
    }
    found = []
    for c in client.api.containers(all=True, filters=filters):
        data = container_inspect(client, str(c["Id"]))
        if data is not None:
            found.append(data)
    # Newest first: a replica Compose is re-creating may briefly exist twice.
    return sorted(found, key=lambda d: str(d.get("Created", "")), reverse=True)


def current(
    client: Any, rec: Mapping[str, Any], targets: Sequence[TargetSpec]
) -> dict[str, Any] | None:
    """The container ``rec`` (an :func:`identity`) means now, or None when nothing stands in."""
    data = container_inspect(client, str(rec["id"])) if rec.get("id") else None
    if data is not None:
        return data
    data = container_inspect(client, str(rec["name"]))
    if data is not None and selected_by(data, targets):
        return data
    compose = rec.get("compose")
    if isinstance(compose, Mapping):
        for data in _by_compose(client, compose):
            if selected_by(data, targets):
                return data
    return None


def health_of(data: Mapping[str, Any]) -> str | None:
    """The HEALTHCHECK status (healthy, unhealthy, starting), or None without a HEALTHCHECK."""
    health = data.get("State", {}).get("Health")
    return str(health.get("Status")) if health else None


def describe(rec: Mapping[str, Any], data: Mapping[str, Any] | None) -> str:
    """One line: which container the target is now, and in what state."""
    if data is None:
        return f"{rec['name']}: gone, and nothing the target names replaced it"
    name = str(data["Name"]).lstrip("/")
    new_id = str(data["Id"])
    old_id = str(rec.get("id", ""))
    how = "same container" if new_id == old_id else f"re-created {old_id[:12]} -> {new_id[:12]}"
    state = data.get("State", {})
    status = "paused" if state.get("Paused") else str(state.get("Status", "unknown"))
    health = health_of(data)
    return f"{name} ({how}): {status}" + (f", {health}" if health else "")

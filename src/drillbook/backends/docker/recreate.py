"""Re-create a container from a saved ``docker inspect``, optionally with another image.

Why this exists: ``docker.remove`` and ``docker.bad_image`` destroy a container, and their revert
must rebuild it from ``state()`` alone, in a new process if the harness died. The inspect document
is the only complete description the engine gives, so it is what the state keeps.

When the image changes (a rollout or a rollback), settings the old image supplied (its CMD,
ENTRYPOINT, ENV, HEALTHCHECK, WORKDIR) are dropped from the config so the new image's own apply,
as ``docker compose up`` with a new tag would do.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from drillbook.errors import FaultError

__all__ = ["container_inspect", "recreate", "replace", "start_if_needed"]

_IMAGE_SUPPLIED = ("Cmd", "Entrypoint", "Healthcheck", "WorkingDir", "User")


def container_inspect(client: Any, ref: str) -> dict[str, Any] | None:
    """The low-level inspect document, or None when the container does not exist."""
    from docker.errors import NotFound

    try:
        data: dict[str, Any] = client.api.inspect_container(ref)
    except NotFound:
        return None
    return data


def _image_config(client: Any, image_id: str) -> Mapping[str, Any]:
    from docker.errors import ImageNotFound, NotFound

    try:
        cfg = client.api.inspect_image(image_id).get("Config") or {}
    except (ImageNotFound, NotFound):
        return {}
    return dict(cfg)


def _endpoint(settings: Mapping[str, Any], old_id: str) -> dict[str, Any]:
    aliases = [a for a in (settings.get("Aliases") or []) if a != old_id[:12]]
    ep: dict[str, Any] = {}
    if aliases:
        ep["Aliases"] = aliases
    ipam = settings.get("IPAMConfig")
    if ipam:
        ep["IPAMConfig"] = ipam
    if settings.get("Links"):
        ep["Links"] = settings["Links"]
    return ep


def _other_image(
    client: Any, image: str, config: Mapping[str, Any], inspect: Mapping[str, Any]
) -> bool:
    """Whether ``image`` is not what the container ran: another name, or its tag has moved."""
    if image != config.get("Image"):
        return True
    try:
        return bool(client.api.inspect_image(image).get("Id") != inspect.get("Image"))
    except Exception:
        return True


def recreate(
    client: Any,
    inspect: Mapping[str, Any],
    *,
    image: str | None = None,
    labels: Mapping[str, str] | None = None,
    drop_labels: tuple[str, ...] = (),
    start: bool | None = None,
) -> str:
    """Create (and start, if it was running) a container like ``inspect``; return its ID.

    The name must be free. Networks beyond the first are connected after create, because
    engines before API 1.44 accept one endpoint at create time.
    """
    old_id = str(inspect["Id"])
    name = str(inspect["Name"]).lstrip("/")
    config: dict[str, Any] = copy.deepcopy(dict(inspect["Config"]))
    host: dict[str, Any] = copy.deepcopy(dict(inspect["HostConfig"]))
    if config.get("Hostname") == old_id[:12]:
        config.pop("Hostname", None)
    if image is not None and _other_image(client, image, config, inspect):
        old_image = _image_config(client, str(inspect.get("Image", "")))
        for key in _IMAGE_SUPPLIED:
            if key in config and config.get(key) == old_image.get(key):
                config.pop(key)
        old_env = set(old_image.get("Env") or [])
        config["Env"] = [e for e in (config.get("Env") or []) if e not in old_env]
        config["Image"] = image
    elif image is None:
        # The exact image the container ran, even if its tag has moved since.
        tag = config.get("Image")
        image_id = str(inspect.get("Image", ""))
        try:
            same = tag and client.api.inspect_image(tag).get("Id") == image_id
        except Exception:
            same = False
        if not same and image_id:
            config["Image"] = image_id
    if labels or drop_labels:
        merged = {**(config.get("Labels") or {}), **(labels or {})}
        config["Labels"] = {k: v for k, v in merged.items() if k not in drop_labels}
    networks: Mapping[str, Any] = inspect.get("NetworkSettings", {}).get("Networks") or {}
    mode = str(host.get("NetworkMode") or "default")
    endpoints: dict[str, Any] = {}
    if mode in networks:
        endpoints[mode] = _endpoint(networks[mode], old_id)
    config["HostConfig"] = host
    config["NetworkingConfig"] = {"EndpointsConfig": endpoints}
    try:
        created = client.api.create_container_from_config(config, name)
    except Exception as exc:
        raise FaultError(f"could not re-create container {name}: {exc}") from exc
    new_id = str(created["Id"])
    special = mode in ("host", "none") or mode.startswith("container:")
    for net, settings in networks.items():
        if net == mode or special:
            continue
        ep = _endpoint(settings, old_id)
        ipv4 = (ep.get("IPAMConfig") or {}).get("IPv4Address")
        client.api.connect_container_to_network(
            new_id, net, aliases=ep.get("Aliases"), ipv4_address=ipv4, links=ep.get("Links")
        )
    was_running = bool(inspect.get("State", {}).get("Running"))
    if start if start is not None else was_running:
        client.api.start(new_id)
    return new_id


def replace(
    client: Any,
    current: Mapping[str, Any] | None,
    template: Mapping[str, Any],
    *,
    image: str | None = None,
    labels: Mapping[str, str] | None = None,
    drop_labels: tuple[str, ...] = (),
    start: bool | None = None,
    grace_s: float = 10.0,
) -> str:
    """Swap ``current`` (if any) for a container built from ``template``; roll back on failure.

    Why rename-then-create rather than remove-then-create: if the new container cannot be
    created or started, the old one is renamed back and started again, so a failed rollout never
    leaves the target with no container at all.
    """
    name = str(template["Name"]).lstrip("/")
    if current is None:
        return recreate(
            client, template, image=image, labels=labels, drop_labels=drop_labels, start=start
        )
    cur_id = str(current["Id"])
    was_running = bool(current.get("State", {}).get("Running"))
    parked = f"{name}-drillbook-old-{cur_id[:8]}"
    # Stop first: it also halts a restart loop, and the engine cannot rename a container that
    # is between restarts (its network sandbox is gone for that moment).
    client.api.stop(cur_id, timeout=max(0, int(grace_s)))
    try:
        client.api.rename(cur_id, parked)
    except Exception:
        if was_running:
            client.api.start(cur_id)
        raise
    try:
        new_id = recreate(
            client, template, image=image, labels=labels, drop_labels=drop_labels, start=start
        )
    except Exception as exc:
        try:
            _remove_by_name(client, name, keep=cur_id)
            client.api.rename(cur_id, name)
            if was_running:
                client.api.start(cur_id)
        except Exception:
            pass
        if isinstance(exc, FaultError):
            raise
        raise FaultError(f"could not replace container {name}: {exc}") from exc
    client.api.remove_container(cur_id, force=True)
    return new_id


def _remove_by_name(client: Any, name: str, *, keep: str) -> None:
    data = container_inspect(client, name)
    if data is not None and data["Id"] != keep:
        client.api.remove_container(data["Id"], force=True)


def start_if_needed(client: Any, ref: str) -> bool:
    """Start (or unpause) a container that should run; True when it had to act."""
    data = container_inspect(client, ref)
    if data is None:
        raise FaultError(f"container {ref} does not exist")
    state = data.get("State", {})
    if state.get("Paused"):
        client.api.unpause(ref)
        return True
    if not state.get("Running") and not state.get("Restarting"):
        client.api.start(ref)
        return True
    return False

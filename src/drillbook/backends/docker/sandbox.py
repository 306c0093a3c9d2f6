"""The sandbox's containers: drillbook runs them itself, then removes what it created.

A docker target with a ``sandbox:`` block is one drillbook brings up for the session when the
environment is the sandbox (or ``backends.docker.sandbox: true``)::

    docker-web:
      backend: docker
      container: drillbook-web
      sandbox:
        image: drillbook/busybox:latest     # built on the spot if missing (images.py)
        ports: {8080/tcp: 18431}            # always published on 127.0.0.1 only
        restart: always
        network: drillbook-sandbox          # created if missing, removed if drillbook made it
        aliases: [web]
        tmpfs: {/data: size=8m}
        healthcheck: {test: [CMD, nc, -z, 127.0.0.1, "8080"], interval: 1s}
        compose: {project: shop, service: web}   # optional: carry Compose labels
        init: true                          # default: an init forwards SIGTERM to the app

Why labels: every container it runs carries ``drillbook.sandbox=1``, and the opt-in label, so a
leftover from a killed session is recognised and replaced, while a same-named container drillbook
did not create is refused, never removed.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator, Mapping
from typing import Any

from drillbook.backends.base import Context
from drillbook.backends.docker.common import is_running, wait_state
from drillbook.backends.docker.engine import client_for
from drillbook.backends.docker.images import ensure_image
from drillbook.backends.docker.recreate import container_inspect
from drillbook.backends.docker.targets import (
    COMPOSE_PROJECT,
    COMPOSE_SERVICE,
    DEFAULT_OPT_IN,
)
from drillbook.durations import parse_duration
from drillbook.errors import ConfigError, SafetyError
from drillbook.model import TargetSpec
from drillbook.procs import pid_alive

__all__ = ["OWNER_LABEL", "SANDBOX_LABEL", "prepare", "run_sandbox_container", "sandbox_enabled"]

SANDBOX_LABEL = "drillbook.sandbox"
#: host:pid of the session that runs the container: a leftover of a dead session is replaced, a
#: live session's container is not.
OWNER_LABEL = "drillbook.owner"


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _live_other_owner(owner: str) -> bool:
    host, _, pid_text = owner.rpartition(":")
    if host != socket.gethostname() or not pid_text.isdigit() or int(pid_text) == os.getpid():
        return False
    return pid_alive(int(pid_text))


def sandbox_enabled(ctx: Context) -> bool:
    return ctx.environment == "sandbox" or ctx.settings.get("sandbox") is True


def _ns(value: Any) -> int:
    return int(parse_duration(value) * 1e9)


def _healthcheck(spec: Any) -> dict[str, Any] | None:
    if not spec:
        return None
    if not isinstance(spec, Mapping):
        raise ConfigError(
            "expected a mapping with test/interval/retries", field="sandbox.healthcheck"
        )
    out: dict[str, Any] = {"test": list(spec["test"])}
    for key in ("interval", "timeout", "start_period"):
        if key in spec:
            out[key] = _ns(spec[key])
    out["retries"] = int(spec.get("retries", 2))
    return out


def _ports(spec: Any, name: str) -> dict[str, tuple[str, int]]:
    """Container port → ("127.0.0.1", host port). Never another address: the sandbox is local."""
    ports: dict[str, tuple[str, int]] = {}
    for cport, host in (spec or {}).items():
        if isinstance(host, list | tuple):
            if str(host[0]) != "127.0.0.1":
                raise SafetyError(f"sandbox {name}: ports are published on 127.0.0.1 only")
            host = host[1]
        key = str(cport) if "/" in str(cport) else f"{cport}/tcp"
        ports[key] = ("127.0.0.1", int(host))
    return ports


def _sandbox_name(target: TargetSpec) -> str:
    spec = target.params.get("sandbox") or {}
    return str(
        target.params.get("container") or target.params.get("name") or spec.get("container") or ""
    )


def run_sandbox_container(ctx: Context, target: TargetSpec) -> tuple[str, list[str], list[str]]:
    """Run one target's sandbox container; return (container ID, images built, networks made)."""
    client = client_for(ctx.settings)
    spec: Mapping[str, Any] = target.params["sandbox"]
    name = _sandbox_name(target)
    if not name:
        raise ConfigError(
            "a sandbox target needs container: NAME (or sandbox.container for a label target)",
            field=f"targets.{target.name}",
        )
    image = str(spec.get("image", "drillbook/busybox:latest"))
    built = [image] if ensure_image(client, image) else []
    existing = container_inspect(client, name)
    if existing is not None:
        if (existing["Config"].get("Labels") or {}).get(SANDBOX_LABEL) != "1":
            raise SafetyError(
                f"sandbox {target.name}: a container named {name} exists that drillbook did not "
                "create; refusing to replace it"
            )
        owner = (existing["Config"].get("Labels") or {}).get(OWNER_LABEL, "")
        if _live_other_owner(owner):
            raise SafetyError(
                f"sandbox {target.name}: container {name} belongs to a running drillbook session "
                f"({owner}); run one session per engine at a time"
            )
        client.api.remove_container(existing["Id"], force=True)
    made: list[str] = []
    network = spec.get("network")
    if network:
        from docker.errors import NotFound

        try:
            client.networks.get(str(network))
        except NotFound:
            client.networks.create(str(network), labels={SANDBOX_LABEL: "1"})
            made.append(str(network))
    labels = {SANDBOX_LABEL: "1", "drillbook.target": target.name, OWNER_LABEL: _owner()}
    if spec.get("opt_in", True):
        key, _, value = str(ctx.settings.get("opt_in_label", DEFAULT_OPT_IN)).partition("=")
        labels[key] = value
    compose = spec.get("compose") or target.params.get("compose")
    if isinstance(compose, Mapping) and compose.get("project"):
        labels[COMPOSE_PROJECT] = str(compose["project"])
        if compose.get("service"):
            labels[COMPOSE_SERVICE] = str(compose["service"])
    labels.update({str(k): str(v) for k, v in (spec.get("labels") or {}).items()})
    kwargs: dict[str, Any] = {
        "name": name,
        "detach": True,
        "labels": labels,
        "ports": _ports(spec.get("ports"), target.name),
        "restart_policy": {"Name": str(spec.get("restart", "no"))},
        # An init process forwards SIGTERM: busybox httpd as PID 1 would ignore it, and every
        # stop (a rollout, a rollback) would wait out the whole grace period.
        "init": bool(spec.get("init", True)),
    }
    if spec.get("command"):
        kwargs["command"] = spec["command"]
    if spec.get("tmpfs"):
        kwargs["tmpfs"] = {str(k): str(v) for k, v in spec["tmpfs"].items()}
    if spec.get("volumes"):
        kwargs["volumes"] = spec["volumes"]
    if spec.get("environment"):
        kwargs["environment"] = dict(spec["environment"])
    health = _healthcheck(spec.get("healthcheck"))
    if health:
        kwargs["healthcheck"] = health
    if network:
        kwargs["network"] = str(network)
    container = client.containers.create(image, **kwargs)
    if network and spec.get("aliases"):
        # create() cannot set aliases; reconnect with them before the first start.
        net = client.networks.get(str(network))
        net.disconnect(container.id)
        net.connect(container.id, aliases=[str(a) for a in spec["aliases"]])
    container.start()
    wait_state(ctx, client, container.id, is_running, float(spec.get("ready_timeout", 30)))
    return str(container.id), built, made


@contextlib.contextmanager
def prepare(ctx: Context) -> Iterator[None]:
    """Bring up every sandbox container the session's drills use; remove them on exit."""
    targets = [t for t in ctx.targets if t.backend == "docker" and t.params.get("sandbox")]
    if not targets or not sandbox_enabled(ctx):
        yield
        return
    client = client_for(ctx.settings)
    containers: list[str] = []
    networks: list[str] = []
    try:
        for target in targets:
            # Images built here are kept: they are tiny, shared, and rebuilt only when missing.
            cid, _built, made = run_sandbox_container(ctx, target)
            containers.append(cid)
            networks += made
        yield
    finally:
        _teardown(client, ctx, containers, networks)


def _teardown(client: Any, ctx: Context, containers: list[str], networks: list[str]) -> None:
    """Remove by name what drillbook created (faults may have re-created a container)."""
    names = [
        _sandbox_name(t) for t in ctx.targets if t.backend == "docker" and t.params.get("sandbox")
    ]
    mine = _owner()
    for ref in [*containers, *names]:
        data = container_inspect(client, ref)
        labels = (data or {}).get("Config", {}).get("Labels") or {}
        if (
            data is not None
            and labels.get(SANDBOX_LABEL) == "1"
            and labels.get(OWNER_LABEL) == mine
        ):
            with contextlib.suppress(Exception):
                client.api.remove_container(data["Id"], force=True)
    for name in client.containers.list(all=True, filters={"label": f"{SANDBOX_LABEL}=1"}):
        if any(str(name.name).startswith(n + "-drillbook-old-") for n in names):
            with contextlib.suppress(Exception):
                name.remove(force=True)
    for net in networks:
        with contextlib.suppress(Exception):
            client.networks.get(net).remove()

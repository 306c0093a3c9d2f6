"""The docker backend: container drills against a real Docker Engine, through the ``docker`` SDK.

``register`` only names things: no module here imports ``docker`` at import time (faults, probes
and steps import it when first used), so ``import drillbook`` stays fast and works without the SDK.
See docs/docker.md for targets, settings, and what each fault needs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drillbook.backends.base import Registry, lazy

__all__ = ["register"]

_DURATION: Mapping[str, Any] = {"type": ["string", "number"]}
_TIMEOUT = {"timeout": _DURATION}


#: Every fault may narrow a label selector to a random subset (blast radius).
_PICK: Mapping[str, Any] = {
    "pick": {"type": "integer", "minimum": 1},
    "pick_percent": {"type": "number", "exclusiveMinimum": 0, "maximum": 100},
}


def _schema(props: Mapping[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": dict(props),
        "required": list(required),
        "additionalProperties": False,
    }


def _available(settings: Mapping[str, Any]) -> str | None:
    from drillbook.backends.docker.engine import availability

    return availability(settings)


def register(registry: Registry) -> None:
    """Add the docker backend, its faults, probes and recovery steps to ``registry``."""
    registry.add_backend(
        "docker",
        _available,
        "containers on a Docker Engine (DOCKER_HOST, a docker context or a base_url)",
        prepare=lazy("drillbook.backends.docker.sandbox:prepare"),
    )
    from drillbook.pressure.registry import register_docker as _pressure  # docker.stress

    _pressure(registry)
    grace = {"grace": _DURATION, **_TIMEOUT}
    faults: list[tuple[str, str, str, str, dict[str, Any]]] = [
        (
            "docker.kill",
            "faults_lifecycle",
            "KillFault",
            "send a signal (default KILL) via the engine, or to the main process (via: process)",
            _schema(
                {
                    "signal": {"type": ["string", "integer"]},
                    "via": {"enum": ["engine", "process"]},
                    **_TIMEOUT,
                }
            ),
        ),
        ("docker.stop", "faults_lifecycle", "StopFault", "stop the container", _schema(grace)),
        (
            "docker.pause",
            "faults_lifecycle",
            "PauseFault",
            "freeze the container",
            _schema(_TIMEOUT),
        ),
        (
            "docker.restart",
            "faults_lifecycle",
            "RestartFault",
            "restart the container",
            _schema(grace),
        ),
        (
            "docker.remove",
            "faults_lifecycle",
            "RemoveFault",
            "force-remove the container; revert re-creates it from the saved inspect",
            _schema(_TIMEOUT),
        ),
        (
            "docker.disconnect",
            "faults_network",
            "DisconnectFault",
            "disconnect from networks (a partition); revert reconnects with the same aliases",
            _schema(
                {
                    "network": {"type": "string"},
                    "networks": {"type": "array", "items": {"type": "string"}},
                    **_TIMEOUT,
                }
            ),
        ),
        (
            "docker.fill_disk",
            "faults_storage",
            "FillDiskFault",
            "fill a path in the container, or a volume, to a percentage; revert frees it",
            _schema(
                {
                    "path": {"type": "string"},
                    "volume": {"type": "string"},
                    "percent": {"type": "number", "exclusiveMinimum": 0, "maximum": 100},
                    **_TIMEOUT,
                }
            ),
        ),
        (
            "docker.bad_image",
            "faults_image",
            "BadImageFault",
            "re-create the container from a broken image tag (retag: move the tag Compose runs "
            "to it first); revert restores the previous image",
            _schema(
                {"image": {"type": "string"}, "retag": {"type": "string"}, **grace}, ("image",)
            ),
        ),
    ]
    for name, module, cls, help_text, schema in faults:
        schema["properties"].update(_PICK)
        registry.add_fault(
            name,
            "docker",
            lazy(f"drillbook.backends.docker.{module}:{cls}"),
            help=help_text,
            params_schema=schema,
        )
    probes: list[tuple[str, str, str, dict[str, Any]]] = [
        ("docker.running", "RunningProbe", "every target container is running", _schema({})),
        ("docker.healthy", "HealthyProbe", "the engine's HEALTHCHECK says healthy", _schema({})),
        (
            "docker.restart_loop",
            "RestartLoopProbe",
            "fails when a container died more than max_restarts times within window",
            _schema({"max_restarts": {"type": "integer", "minimum": 0}, "window": _DURATION}),
        ),
        (
            "docker.disk_usage",
            "DiskUsageProbe",
            "fails when the filesystem at path is fuller than max_percent",
            _schema({"path": {"type": "string"}, "max_percent": {"type": "number"}}),
        ),
    ]
    for name, cls, help_text, schema in probes:
        registry.add_probe(
            name,
            "docker",
            lazy(f"drillbook.backends.docker.probes:{cls}"),
            help=help_text,
            params_schema=schema,
        )
    steps: list[tuple[str, str, str, dict[str, Any]]] = [
        ("docker.restart", "RestartStep", "restart the containers", _schema(grace)),
        ("docker.start", "StartStep", "start (or unpause) the containers", _schema(_TIMEOUT)),
        (
            "docker.connect",
            "ConnectStep",
            "reconnect to a network with the target's aliases",
            _schema(
                {
                    "network": {"type": "string"},
                    "aliases": {"type": "array", "items": {"type": "string"}},
                    **_TIMEOUT,
                },
                ("network",),
            ),
        ),
        (
            "compose.up",
            "ComposeUpStep",
            "re-create a Compose service from its labels",
            _schema({"project": {"type": "string"}, "service": {"type": "string"}, **grace}),
        ),
        (
            "docker.rollback_image",
            "RollbackImageStep",
            "re-create from the last good image (image param, or the recorded previous tag)",
            _schema({"image": {"type": "string"}, **grace}),
        ),
        (
            "docker.exec",
            "ExecStep",
            "run a clean-up command in the containers (exit 0 required)",
            _schema({"command": {"type": ["string", "array"]}, **_TIMEOUT}, ("command",)),
        ),
    ]
    for name, cls, help_text, schema in steps:
        registry.add_recovery(
            name,
            "docker",
            lazy(f"drillbook.backends.docker.recovery:{cls}"),
            help=help_text,
            params_schema=schema,
        )

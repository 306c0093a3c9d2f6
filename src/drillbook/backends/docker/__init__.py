"""The docker backend: container drills against a real Docker Engine, through the ``docker`` SDK.

``register`` only names things: no module here imports ``docker`` at import time (faults, probes
and steps import it when first used), so ``import drillbook`` stays fast and works without the SDK.
See docs/docker.md for targets, settings, and what each fault needs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drillbook.backends.base import COMMAND, DURATION, Registry, lazy, params
from drillbook.backends.selection import SELECTION_PARAMS
from drillbook.procs import SIGNAL

__all__ = ["register"]

_NAME = {"type": "string", "minLength": 1}
#: Every docker fault acts on its target's containers, or a subset (``count``/``percent``).
_FAULT = {"timeout": DURATION, **SELECTION_PARAMS}
_GRACE = {"grace": DURATION, "timeout": DURATION}


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
    registry.add_fault(
        "docker.kill",
        "docker",
        lazy("drillbook.backends.docker.faults_lifecycle:KillFault"),
        help="send a signal (default KILL) via the engine, or to the main process (via: process)",
        params_schema=params(
            {
                "signal": SIGNAL,
                "via": {"enum": ["engine", "process"]},
                **_FAULT,
            }
        ),
    )
    registry.add_fault(
        "docker.stop",
        "docker",
        lazy("drillbook.backends.docker.faults_lifecycle:StopFault"),
        help="stop the container",
        params_schema=params({"grace": DURATION, **_FAULT}),
    )
    registry.add_fault(
        "docker.pause",
        "docker",
        lazy("drillbook.backends.docker.faults_lifecycle:PauseFault"),
        help="freeze the container",
        params_schema=params(_FAULT),
    )
    registry.add_fault(
        "docker.restart",
        "docker",
        lazy("drillbook.backends.docker.faults_lifecycle:RestartFault"),
        help="restart the container",
        params_schema=params({"grace": DURATION, **_FAULT}),
    )
    registry.add_fault(
        "docker.remove",
        "docker",
        lazy("drillbook.backends.docker.faults_lifecycle:RemoveFault"),
        help="force-remove the container; revert re-creates it from the saved inspect",
        params_schema=params(_FAULT),
    )
    registry.add_fault(
        "docker.disconnect",
        "docker",
        lazy("drillbook.backends.docker.faults_network:DisconnectFault"),
        help="disconnect from networks (a partition); revert reconnects with the same aliases",
        params_schema=params(
            {"network": _NAME, "networks": {"type": "array", "items": _NAME}, **_FAULT}
        ),
    )
    registry.add_fault(
        "docker.fill_disk",
        "docker",
        lazy("drillbook.backends.docker.faults_storage:FillDiskFault"),
        help="fill a path in the container, or a volume, to fill_percent; revert frees it",
        params_schema=params(
            {
                "path": _NAME,
                "volume": _NAME,
                "fill_percent": {"type": "number", "exclusiveMinimum": 0, "maximum": 100},
                **_FAULT,
            }
        ),
    )
    registry.add_fault(
        "docker.bad_image",
        "docker",
        lazy("drillbook.backends.docker.faults_image:BadImageFault"),
        help="re-create the container from a broken image tag (retag: move the tag Compose runs "
        "to it first); revert restores the previous image",
        params_schema=params(
            {"image": _NAME, "retag": _NAME, "grace": DURATION, **_FAULT}, required=["image"]
        ),
    )

    registry.add_probe(
        "docker.running",
        "docker",
        lazy("drillbook.backends.docker.probes:RunningProbe"),
        help="every target container is running",
        params_schema=params(),
    )
    registry.add_probe(
        "docker.healthy",
        "docker",
        lazy("drillbook.backends.docker.probes:HealthyProbe"),
        help="the engine's HEALTHCHECK says healthy",
        params_schema=params(),
    )
    registry.add_probe(
        "docker.restart_loop",
        "docker",
        lazy("drillbook.backends.docker.probes:RestartLoopProbe"),
        help="fails when a container died more than max_restarts times within window",
        params_schema=params(
            {"max_restarts": {"type": "integer", "minimum": 0}, "window": DURATION}
        ),
    )
    registry.add_probe(
        "docker.disk_usage",
        "docker",
        lazy("drillbook.backends.docker.probes:DiskUsageProbe"),
        help="fails when the filesystem at path is fuller than max_percent",
        params_schema=params(
            {"path": _NAME, "max_percent": {"type": "number", "minimum": 0, "maximum": 100}}
        ),
    )

    registry.add_recovery(
        "docker.restart",
        "docker",
        lazy("drillbook.backends.docker.recovery:RestartStep"),
        help="restart the containers",
        params_schema=params(_GRACE),
    )
    registry.add_recovery(
        "docker.start",
        "docker",
        lazy("drillbook.backends.docker.recovery:StartStep"),
        help="start (or unpause) the containers",
        params_schema=params({"timeout": DURATION}),
    )
    registry.add_recovery(
        "docker.connect",
        "docker",
        lazy("drillbook.backends.docker.recovery:ConnectStep"),
        help="reconnect to a network with the target's aliases",
        params_schema=params(
            {
                "network": _NAME,
                "aliases": {"type": "array", "items": _NAME},
                "timeout": DURATION,
            },
            required=["network"],
        ),
    )
    registry.add_recovery(
        "compose.up",
        "docker",
        lazy("drillbook.backends.docker.recovery:ComposeUpStep"),
        help="re-create a Compose service from its labels",
        params_schema=params({"project": _NAME, "service": _NAME, **_GRACE}),
    )
    registry.add_recovery(
        "docker.rollback_image",
        "docker",
        lazy("drillbook.backends.docker.recovery:RollbackImageStep"),
        help="re-create from the last good image (image param, or the recorded previous tag)",
        params_schema=params({"image": _NAME, **_GRACE}),
    )
    registry.add_recovery(
        "docker.exec",
        "docker",
        lazy("drillbook.backends.docker.recovery:ExecStep"),
        help="run a clean-up command in the containers (exit 0 required)",
        params_schema=params({"command": COMMAND, "timeout": DURATION}, required=["command"]),
    )

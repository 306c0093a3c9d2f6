"""The local backend: real processes on this machine.

Faults ``process.kill`` and ``process.stop``; probes ``http``, ``tcp``, ``command``, ``python``
(usable with any backend); recovery steps ``command``, ``process.start``, ``process.continue``.
Its ``prepare`` starts managed local targets (the demo service of ``process_restart``) for the
pytest session and stops what it started.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from drillbook.backends.base import Context, Registry, lazy

__all__ = ["register"]

_SIGNAL_NAMES = sorted(
    {n for n in signal.Signals.__members__ if n.startswith("SIG") and not n.startswith("SIG_")}
    | {
        n[3:]
        for n in signal.Signals.__members__
        if n.startswith("SIG") and not n.startswith("SIG_")
    }
)
# Valid names are checked by `drillbook validate`, not discovered at inject time.
_SIGNAL = {
    "oneOf": [
        {"enum": _SIGNAL_NAMES},
        {"type": "integer", "enum": sorted(int(v) for v in signal.Signals)},
    ]
}
_DURATION = {"oneOf": [{"type": "number", "minimum": 0}, {"type": "string", "maxLength": 64}]}
_CMD = {
    "oneOf": [
        {"type": "string", "minLength": 1},
        {"type": "array", "items": {"type": "string"}, "minItems": 1},
    ]
}


def _available(settings: Mapping[str, Any]) -> str | None:
    return None


@contextmanager
def _prepare(ctx: Context) -> Iterator[None]:
    from drillbook.backends.local.service import LocalService

    started: list[LocalService] = []
    try:
        for target in ctx.targets:
            if target.backend == "local" and target.params.get("command"):
                service = LocalService(target, ctx.state_dir, ctx.workdir)
                if service.start():
                    started.append(service)
        yield
    finally:
        for service in reversed(started):
            service.stop()


def register(registry: Registry) -> None:
    """Name every fault, probe and step; their modules load when a drill builds one."""
    registry.add_backend("local", _available, "real processes on this machine", prepare=_prepare)
    from drillbook.pressure.registry import register_local as _pressure  # resource/disk/TLS/clock

    _pressure(registry)
    registry.add_fault(
        "process.kill",
        "local",
        lazy("drillbook.backends.local.faults:ProcessKill"),
        help="send a signal (default KILL) to a local target's processes",
        params_schema={"properties": {"signal": _SIGNAL}, "additionalProperties": False},
    )
    registry.add_fault(
        "process.stop",
        "local",
        lazy("drillbook.backends.local.faults:ProcessStop"),
        help="SIGSTOP a local target (a hang); revert sends SIGCONT",
        params_schema={"properties": {}, "additionalProperties": False},
    )
    registry.add_probe(
        "http",
        "local",
        lazy("drillbook.backends.local.probes:HttpProbe"),
        help="HTTP GET; status and body checks",
        params_schema={
            "properties": {
                "url": {"type": "string"},
                "path": {"type": "string"},
                "expect_status": {"type": "integer"},
                "expect_body": {"type": "string"},
                "method": {"type": "string"},
                "keepalive": {"type": "boolean"},
                "timeout": _DURATION,
            },
            "additionalProperties": False,
        },
    )
    registry.add_probe(
        "tcp",
        "local",
        lazy("drillbook.backends.local.probes:TcpProbe"),
        help="a TCP connect",
        params_schema={
            "properties": {
                "host": {"type": "string"},
                "port": {"type": "integer"},
                "timeout": _DURATION,
            },
            "additionalProperties": False,
        },
    )
    registry.add_probe(
        "command",
        "local",
        lazy("drillbook.backends.local.probes:CommandProbe"),
        help="a command's exit status",
        params_schema={
            "properties": {
                "command": _CMD,
                "expect_exit": {"type": "integer"},
                "timeout": _DURATION,
            },
            "required": ["command"],
            "additionalProperties": False,
        },
    )
    registry.add_probe(
        "python",
        "local",
        lazy("drillbook.backends.local.probes:PythonProbe"),
        help="a Python callable by import path",
        params_schema={
            "properties": {"callable": {"type": "string", "pattern": "^[\\w.]+:[\\w]+$"}},
            "required": ["callable"],
        },
    )
    registry.add_recovery(
        "command",
        "local",
        lazy("drillbook.backends.local.steps:CommandStep"),
        help="run the runbook's command",
        params_schema={
            "properties": {"command": _CMD, "expect_exit": {"type": "integer"}},
            "required": ["command"],
            "additionalProperties": False,
        },
    )
    registry.add_recovery(
        "process.start",
        "local",
        lazy("drillbook.backends.local.steps:ProcessStart"),
        help="start a local target",
    )
    registry.add_recovery(
        "process.continue",
        "local",
        lazy("drillbook.backends.local.steps:ProcessContinue"),
        help="SIGCONT a local target",
    )

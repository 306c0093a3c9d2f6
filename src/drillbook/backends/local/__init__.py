"""The local backend: real processes on this machine.

Faults ``process.kill``, ``process.stop`` and ``demo.errors`` (the demo service's 500s);
probes ``http``, ``tcp``, ``command``, ``python`` (usable with any backend); recovery steps
``command``, ``process.start``, ``process.continue``, ``demo.errors.stop``.
Its ``prepare`` starts managed local targets (the demo service of ``process_restart``) for the
pytest session and stops what it started.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from drillbook.backends.base import COMMAND, DURATION, Context, Registry, lazy, params
from drillbook.procs import SIGNAL

__all__ = ["register"]

#: A process exit status.
_EXIT = {"type": "integer", "minimum": 0, "maximum": 255}


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
    registry.add_fault(
        "process.kill",
        "local",
        lazy("drillbook.backends.local.faults:ProcessKill"),
        help="send a signal (default KILL) to a local target's processes",
        params_schema=params({"signal": SIGNAL}),
    )
    registry.add_fault(
        "process.stop",
        "local",
        lazy("drillbook.backends.local.faults:ProcessStop"),
        help="SIGSTOP a local target (a hang); revert sends SIGCONT",
        params_schema=params(),
    )
    registry.add_fault(
        "demo.errors",
        "local",
        lazy("drillbook.backends.local.faults_http:DemoErrors"),
        help="the demo service answers HTTP 500 on a fraction of requests (error_rate, default 1)",
        params_schema=params(
            {"error_rate": {"type": "number", "exclusiveMinimum": 0, "maximum": 1}}
        ),
    )
    registry.add_recovery(
        "demo.errors.stop",
        "local",
        lazy("drillbook.backends.local.faults_http:DemoErrorsStop"),
        help="the demo service stops answering 500 (the rollback after demo.errors)",
        params_schema=params(),
    )
    registry.add_probe(
        "http",
        "local",
        lazy("drillbook.backends.local.probes:HttpProbe"),
        help="HTTP GET; status and body checks",
        params_schema=params(
            {
                "url": {"type": "string", "minLength": 1},
                "path": {"type": "string"},
                "expect_status": {"type": "integer", "minimum": 100, "maximum": 599},
                "expect_body": {"type": "string"},
                "method": {"type": "string", "minLength": 1},
                "keepalive": {"type": "boolean"},
                "timeout": DURATION,
            }
        ),
    )
    registry.add_probe(
        "tcp",
        "local",
        lazy("drillbook.backends.local.probes:TcpProbe"),
        help="a TCP connect",
        params_schema=params(
            {
                "host": {"type": "string", "minLength": 1},
                "port": {"type": "integer", "minimum": 1, "maximum": 65535},
                "timeout": DURATION,
            }
        ),
    )
    registry.add_probe(
        "command",
        "local",
        lazy("drillbook.backends.local.probes:CommandProbe"),
        help="a command's exit status",
        params_schema=params(
            {"command": COMMAND, "expect_exit": _EXIT, "timeout": DURATION}, required=["command"]
        ),
    )
    registry.add_probe(
        "python",
        "local",
        lazy("drillbook.backends.local.probes:PythonProbe"),
        help="a Python callable by import path",
        params_schema=params(
            {
                "callable": {"type": "string", "pattern": "^[\\w.]+:[\\w]+$"},
                "kwargs": {"type": "object"},
                "timeout": DURATION,
            },
            required=["callable"],
        ),
    )
    registry.add_recovery(
        "command",
        "local",
        lazy("drillbook.backends.local.steps:CommandStep"),
        help="run the runbook's command",
        params_schema=params({"command": COMMAND, "expect_exit": _EXIT}, required=["command"]),
    )
    registry.add_recovery(
        "process.start",
        "local",
        lazy("drillbook.backends.local.steps:ProcessStart"),
        help="start a local target",
        params_schema=params(),
    )
    registry.add_recovery(
        "process.continue",
        "local",
        lazy("drillbook.backends.local.steps:ProcessContinue"),
        help="SIGCONT a local target",
        params_schema=params(),
    )

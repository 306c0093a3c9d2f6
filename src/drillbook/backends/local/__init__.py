"""The local backend: real processes on this machine.

Faults ``process.kill``, ``process.stop`` and ``demo.errors`` (the demo service's 500s); the
degradation faults ``network.degrade``, ``network.packet_loss`` and ``http.faults``
(:mod:`drillbook.degrade`); probes ``http``, ``tcp``, ``command``, ``python`` and the SLO probes
``slo.error_rate`` and ``slo.latency`` (usable with any backend); recovery steps ``command``,
``process.start``, ``process.continue``, ``demo.errors.stop``.
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
    from drillbook.pressure.registry import register_local as _pressure  # resource/disk/TLS/clock

    _pressure(registry)
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
    _register_degradation(registry)
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


_STRICT_DURATION = {
    "oneOf": [
        {"type": "number", "minimum": 0, "maximum": 86400},
        {"type": "string", "pattern": "^\\s*(P.*|[0-9.]+|([0-9.]+(ms|d|h|m|s))+)\\s*$"},
    ]
}
_SHARE = {"type": "number", "minimum": 0, "maximum": 1}
_PORT = {"type": "integer", "minimum": 1024, "maximum": 65535}
_UPSTREAM = {"type": "string", "pattern": "^[A-Za-z0-9_.:\\[\\]-]+:[0-9]{1,5}$", "maxLength": 300}
_PROXY_COMMON = {
    "upstream": _UPSTREAM,
    "listen_port": _PORT,
    "container_port": {
        "oneOf": [_PORT | {"minimum": 1}, {"type": "string", "pattern": "^[0-9]{1,5}/(tcp)$"}]
    },
    "duration": _STRICT_DURATION,
    "max_lifetime": _STRICT_DURATION,
}
_SLO_COMMON = {
    "url": {"type": "string", "pattern": "^http://", "maxLength": 2000},
    "path": {"type": "string", "pattern": "^/", "maxLength": 2000},
    "rate": {"type": "number", "exclusiveMinimum": 0, "maximum": 200},
    "window": _STRICT_DURATION,
    "request_timeout": _STRICT_DURATION,
    "expect_status": {"type": "integer", "minimum": 100, "maximum": 599},
    "min_requests": {"type": "integer", "minimum": 1, "maximum": 100000},
}


def _register_degradation(registry: Registry) -> None:
    registry.add_fault(
        "network.degrade",
        "local",
        lazy("drillbook.degrade.faults:NetworkDegrade"),
        help="TCP fault proxy (Toxiproxy's model) in a dependency's path: latency with jitter, "
        "bandwidth cap, stalls (timeout), resets (reset_peer), blackhole",
        params_schema={
            "type": "object",
            "properties": {
                **_PROXY_COMMON,
                "latency": _STRICT_DURATION,
                "jitter": _STRICT_DURATION,
                "bandwidth_kbps": {"type": "number", "exclusiveMinimum": 0, "maximum": 10485760},
                "timeout": _STRICT_DURATION,
                "reset_peer": _STRICT_DURATION,
                "blackhole": {"type": "boolean"},
                "toxicity": _SHARE,
                "stream": {"enum": ["downstream", "upstream", "both"]},
            },
            "anyOf": [
                {"required": [k]}
                for k in ("latency", "bandwidth_kbps", "timeout", "reset_peer", "blackhole")
            ],
            "additionalProperties": False,
        },
    )
    registry.add_fault(
        "network.packet_loss",
        "local",
        lazy("drillbook.degrade.packetloss:PacketLoss"),
        help="real packet loss (iptables statistic DROP) inside a network namespace; root",
        params_schema={
            "type": "object",
            "properties": {
                "netns": {"type": "string", "pattern": "^[A-Za-z0-9_.-]{1,64}$"},
                "probability": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
                "chain": {"enum": ["INPUT", "OUTPUT"]},
                "protocol": {"enum": ["all", "tcp", "udp", "icmp"]},
                "port": {"type": "integer", "minimum": 1, "maximum": 65535},
            },
            "required": ["netns", "probability"],
            "additionalProperties": False,
        },
    )
    registry.add_fault(
        "http.faults",
        "local",
        lazy("drillbook.degrade.faults:HttpFaultsFault"),
        help="HTTP fault proxy in front of a service: a share of responses replaced by a "
        "status, added latency, aborted connections",
        params_schema={
            "type": "object",
            "properties": {
                **_PROXY_COMMON,
                "error_rate": _SHARE,
                "status": {"type": "integer", "minimum": 100, "maximum": 599},
                "abort": _SHARE,
                "latency": _STRICT_DURATION,
                "jitter": _STRICT_DURATION,
                "paths": {
                    "type": "array",
                    "items": {"type": "string", "pattern": "^/", "maxLength": 2000},
                    "maxItems": 100,
                },
            },
            "anyOf": [{"required": [k]} for k in ("error_rate", "abort", "latency")],
            "additionalProperties": False,
        },
    )
    registry.add_probe(
        "slo.error_rate",
        "local",
        lazy("drillbook.degrade.slo:ErrorRateProbe"),
        help="error rate of its own requests over a sliding window <= max_error_rate "
        "(value: the failing share)",
        params_schema={
            "type": "object",
            "properties": {**_SLO_COMMON, "max_error_rate": _SHARE},
            "required": ["max_error_rate"],
            "additionalProperties": False,
        },
    )
    registry.add_probe(
        "slo.latency",
        "local",
        lazy("drillbook.degrade.slo:LatencyProbe"),
        help="latency percentile (p50/p95/p99...) of its own requests over a window <= max "
        "(value: seconds)",
        params_schema={
            "type": "object",
            "properties": {
                **_SLO_COMMON,
                "percentile": {"type": "number", "exclusiveMinimum": 0, "maximum": 100},
                "max": _STRICT_DURATION,
            },
            "required": ["max"],
            "additionalProperties": False,
        },
    )

"""Names and strict parameter schemas of the resource, disk, TLS and clock faults.

Called from the local backend's ``register`` (these run on this host or read a local target),
and from the docker backend's for the in-container variants. Every schema is closed
(``additionalProperties: false``), typed and ranged, so ``drillbook validate`` refuses a typo
before a drill starts.
"""

from __future__ import annotations

from typing import Any

from drillbook.backends.base import Registry, lazy
from drillbook.backends.selection import SELECTION_PARAMS
from drillbook.pressure.sizes import SIZE_PATTERN

__all__ = [
    "DURATION",
    "ENGINE",
    "PERCENT",
    "SIZE",
    "register_docker",
    "register_local",
    "register_postgres",
]

DURATION: dict[str, Any] = {
    "oneOf": [
        {"type": "number", "exclusiveMinimum": 0, "maximum": 86400},
        {"type": "string", "pattern": "^\\s*([0-9.]+|([0-9.]+(ms|d|h|m|s))+)\\s*$"},
    ]
}
SIZE: dict[str, Any] = {
    "oneOf": [
        {"type": "integer", "minimum": 1, "maximum": 1 << 40},
        {"type": "string", "pattern": SIZE_PATTERN},
    ]
}
PERCENT: dict[str, Any] = {"type": "number", "exclusiveMinimum": 0, "maximum": 100}
ENGINE: dict[str, Any] = {"enum": ["auto", "stress-ng", "python"]}
_PATH: dict[str, Any] = {"type": "string", "minLength": 1, "maxLength": 4096}


def _cpu(extra: dict[str, Any]) -> dict[str, Any]:
    return {
        "properties": {
            "workers": {"type": "integer", "minimum": 1, "maximum": 256},
            "load": {"type": "integer", "minimum": 1, "maximum": 100},
            "duration": DURATION,
            **extra,
        },
        "type": "object",
        "additionalProperties": False,
    }


def _memory(extra: dict[str, Any]) -> dict[str, Any]:
    return {
        "properties": {"size": SIZE, "percent": PERCENT, "duration": DURATION, **extra},
        "oneOf": [{"required": ["size"]}, {"required": ["percent"]}],
        "type": "object",
        "additionalProperties": False,
    }


def _io(extra: dict[str, Any]) -> dict[str, Any]:
    return {
        "properties": {"size": SIZE, "path": _PATH, "duration": DURATION, **extra},
        "type": "object",
        "additionalProperties": False,
    }


def register_local(registry: Registry) -> None:
    """Faults and probes that act on this host (a local target names whose host)."""
    here = "drillbook.pressure"
    engine = {"engine": ENGINE}
    registry.add_fault(
        "stress.cpu",
        "local",
        lazy(f"{here}.stress:CpuStress"),
        help="busy CPU workers on the host (stress-ng, else a bounded Python worker)",
        params_schema=_cpu(engine),
    )
    registry.add_fault(
        "stress.memory",
        "local",
        lazy(f"{here}.stress:MemoryStress"),
        help="hold memory resident: a size, or a share of the target's limit (an OOM kill is an outcome)",
        params_schema=_memory(engine),
    )
    registry.add_fault(
        "stress.io",
        "local",
        lazy(f"{here}.stress:IoStress"),
        help="fsynced writes in a private folder (stress-ng --hdd, else a Python worker)",
        params_schema=_io(engine),
    )
    _register_disk(registry)
    _register_tls(registry)
    registry.add_fault(
        "clock.skew",
        "local",
        lazy("drillbook.pressure.clockskew:ClockSkew"),
        help="shift the wall clock of a process started under libfaketime (where installed)",
        params_schema={
            "properties": {
                "file": _PATH,
                "offset": {"type": "string", "pattern": "^[+-][0-9]+(\\.[0-9]+)?[smhdy]?$"},
            },
            "required": ["file", "offset"],
            "type": "object",
            "additionalProperties": False,
        },
    )
    registry.add_probe(
        "memory.usage",
        "local",
        lazy("drillbook.pressure.memprobe:MemoryProbe"),
        help="MemAvailable floor, host used %, or the RSS of processes matching a pattern; value: bytes",
        params_schema={
            "properties": {
                "min_available": SIZE,
                "max_percent": PERCENT,
                "match": {"type": "string", "minLength": 1, "maxLength": 500},
                "max_rss": SIZE,
                "timeout": DURATION,
            },
            "anyOf": [
                {"required": ["min_available"]},
                {"required": ["max_percent"]},
                {"required": ["match", "max_rss"]},
            ],
            "dependentRequired": {"max_rss": ["match"], "match": ["max_rss"]},
            "type": "object",
            "additionalProperties": False,
        },
    )


def _register_disk(registry: Registry) -> None:
    registry.add_fault(
        "disk.fill",
        "local",
        lazy("drillbook.pressure.diskfill:DiskFill"),
        help="fill the filesystem of a folder to a size or down to a free-space floor (one file, removed on revert)",
        params_schema={
            "properties": {
                "path": _PATH,
                "size": SIZE,
                "free": {"oneOf": [{"type": "integer", "minimum": 0}, SIZE["oneOf"][1]]},
                "min_free": SIZE,
                "max_size": SIZE,
                "create": {"type": "boolean"},
            },
            "required": ["path"],
            "not": {"required": ["size", "free"]},
            "type": "object",
            "additionalProperties": False,
        },
    )
    registry.add_probe(
        "disk.usage",
        "local",
        lazy("drillbook.pressure.diskfill:DiskProbe"),
        help="free space of a folder's filesystem, or the bytes under a folder with a budget; value: bytes",
        params_schema={
            "properties": {
                "path": _PATH,
                "min_free": SIZE,
                "max_percent": PERCENT,
                "max_bytes": SIZE,
                "timeout": DURATION,
            },
            "required": ["path"],
            "anyOf": [
                {"required": ["min_free"]},
                {"required": ["max_percent"]},
                {"required": ["max_bytes"]},
            ],
            "type": "object",
            "additionalProperties": False,
        },
    )


_TLS_FILES: dict[str, Any] = {
    "dir": _PATH,
    "cert": _PATH,
    "key": _PATH,
    "ca_cert": _PATH,
    "ca_key": _PATH,
    "host": {"type": "string", "minLength": 1, "maxLength": 253},
    "reload": {
        "oneOf": [
            {"type": "string", "minLength": 1},
            {"type": "array", "items": {"type": "string"}, "minItems": 1},
        ]
    },
}
_TLS_WHERE = {"anyOf": [{"required": ["dir"]}, {"required": ["cert", "key"]}]}


def _register_tls(registry: Registry) -> None:
    registry.add_fault(
        "tls.cert",
        "local",
        lazy("drillbook.pressure.tls:TlsCertFault"),
        help="serve an expired, not-yet-valid, wrong-host or untrusted certificate; revert restores the original bytes",
        params_schema={
            "properties": {
                **_TLS_FILES,
                "kind": {"enum": ["expired", "not_yet_valid", "wrong_host", "untrusted"]},
                "wrong_host": {"type": "string", "minLength": 1, "maxLength": 253},
            },
            **_TLS_WHERE,
            "type": "object",
            "additionalProperties": False,
        },
    )
    registry.add_probe(
        "tls",
        "local",
        lazy("drillbook.pressure.tls:TlsProbe"),
        help="the chain verifies for the host and has at least min_days left; value: days left",
        params_schema={
            "properties": {
                "host": {"type": "string", "minLength": 1, "maxLength": 253},
                "port": {"type": "integer", "minimum": 1, "maximum": 65535},
                "server_name": {"type": "string", "minLength": 1, "maxLength": 253},
                "ca_file": _PATH,
                "min_days": {"type": "number", "minimum": 0, "maximum": 36500},
                "timeout": DURATION,
            },
            "type": "object",
            "additionalProperties": False,
        },
    )
    registry.add_recovery(
        "tls.renew",
        "local",
        lazy("drillbook.pressure.tls:TlsRenew"),
        help="issue a fresh certificate from the CA and install it",
        params_schema={
            "properties": {**_TLS_FILES, "days": {"type": "integer", "minimum": 1, "maximum": 825}},
            **_TLS_WHERE,
            "type": "object",
            "additionalProperties": False,
        },
    )


def register_docker(registry: Registry) -> None:
    """``docker.stress``: the same pressure inside a container's cgroup (docker exec)."""
    registry.add_fault(
        "docker.stress",
        "docker",
        lazy("drillbook.backends.docker.faults_stress:DockerStress"),
        help="CPU, memory or I/O pressure inside a container's cgroup (a shell worker via docker exec)",
        params_schema={
            "properties": {
                "kind": {"enum": ["cpu", "memory", "io"]},
                "workers": {"type": "integer", "minimum": 1, "maximum": 64},
                "size": SIZE,
                # The share of the container's memory limit; `percent` is the selection's.
                "memory_percent": {"type": "number", "exclusiveMinimum": 0, "maximum": 100},
                "allow_oom": {"type": "boolean"},
                "path": {"type": "string", "pattern": "^/", "maxLength": 4096},
                "duration": DURATION,
                **SELECTION_PARAMS,
            },
            "required": ["kind"],
            "not": {"required": ["size", "memory_percent"]},
            "type": "object",
            "additionalProperties": False,
        },
    )


_PG = "drillbook.backends.postgres.pressure"
_PG_TABLE = {
    "type": "string",
    "pattern": r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$",
    "maxLength": 127,
}


def _pg_closed(props: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"type": "object", "properties": props, "additionalProperties": False, **extra}


def register_postgres(registry: Registry) -> None:
    """The Database Issues faults, probe and step (:mod:`drillbook.backends.postgres.pressure`)."""
    registry.add_fault(
        "postgres.exhaust_connections",
        "postgres",
        lazy(f"{_PG}:ExhaustConnections"),
        help="hold idle sessions up to max_connections minus a reserve (a detached holder)",
        params_schema=_pg_closed(
            {
                "reserve": {"type": "integer", "minimum": 1, "maximum": 1000},
                "max_hold": {"type": "integer", "minimum": 1, "maximum": 10000},
                "duration": DURATION,
            }
        ),
    )
    registry.add_fault(
        "postgres.slow_query",
        "postgres",
        lazy(f"{_PG}:SlowQuery"),
        help="hold an ACCESS EXCLUSIVE lock on a table and/or run pg_sleep statements",
        params_schema=_pg_closed(
            {
                "lock_table": _PG_TABLE,
                "sleepers": {"type": "integer", "minimum": 1, "maximum": 100},
                "duration": DURATION,
            },
            anyOf=[{"required": ["lock_table"]}, {"required": ["sleepers"]}],
        ),
    )
    registry.add_probe(
        "postgres.connections",
        "postgres",
        lazy(f"{_PG}:ConnectionsProbe"),
        help="client sessions as a share of max_connections; value: sessions",
        params_schema=_pg_closed(
            {"max_percent": {"type": "number", "minimum": 0, "maximum": 100}, "timeout": DURATION}
        ),
    )
    registry.add_recovery(
        "postgres.terminate_sessions",
        "postgres",
        lazy(f"{_PG}:TerminateSessions"),
        help="pg_terminate_backend idle sessions (idle_for, application_name) or blocking ones",
        params_schema=_pg_closed(
            {
                "idle_for": {
                    "oneOf": [
                        {"type": "number", "minimum": 0, "maximum": 86400},
                        DURATION["oneOf"][1],
                    ]
                },
                "blocking": {"type": "boolean"},
                "application_name": {"type": "string", "minLength": 1, "maxLength": 64},
            }
        ),
    )

"""Names and strict schemas of the Database Issues faults, probe and step (see :mod:`.pressure`).

A module of its own so the backend's ``register`` gains one line, and building the registry
imports neither psycopg nor the faults."""

from __future__ import annotations

from typing import Any

from drillbook.backends.base import Registry, lazy
from drillbook.pressure.registry import DURATION

__all__ = ["register_pressure"]

_MOD = "drillbook.backends.postgres.pressure"
_TABLE = {
    "type": "string",
    "pattern": r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$",
    "maxLength": 127,
}


def _closed(props: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"type": "object", "properties": props, "additionalProperties": False, **extra}


def register_pressure(registry: Registry) -> None:
    registry.add_fault(
        "postgres.exhaust_connections",
        "postgres",
        lazy(f"{_MOD}:ExhaustConnections"),
        help="hold idle sessions up to max_connections minus a reserve (a detached holder)",
        params_schema=_closed(
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
        lazy(f"{_MOD}:SlowQuery"),
        help="hold an ACCESS EXCLUSIVE lock on a table and/or run pg_sleep statements",
        params_schema=_closed(
            {
                "lock_table": _TABLE,
                "sleepers": {"type": "integer", "minimum": 1, "maximum": 100},
                "duration": DURATION,
            },
            anyOf=[{"required": ["lock_table"]}, {"required": ["sleepers"]}],
        ),
    )
    registry.add_probe(
        "postgres.connections",
        "postgres",
        lazy(f"{_MOD}:ConnectionsProbe"),
        help="client sessions as a share of max_connections; value: sessions",
        params_schema=_closed(
            {"max_percent": {"type": "number", "minimum": 0, "maximum": 100}, "timeout": DURATION}
        ),
    )
    registry.add_recovery(
        "postgres.terminate_sessions",
        "postgres",
        lazy(f"{_MOD}:TerminateSessions"),
        help="pg_terminate_backend idle sessions (idle_for, application_name) or blocking ones",
        params_schema=_closed(
            {
                "idle_for": DURATION | {},
                "blocking": {"type": "boolean"},
                "application_name": {"type": "string", "minLength": 1, "maxLength": 64},
            }
        ),
    )

"""The postgres backend: real PostgreSQL faults, probes, recovery steps and the RPO ledger.

Targets are either the embedded sandbox (``sandbox: region-a``) or a configured server (``dsn``,
``data_dir``, ``bin_dir``...; docs/postgres.md). Nothing here imports psycopg at import time.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drillbook.backends.base import Context, Fault, Ledger, Probe, RecoveryStep, Registry

__all__ = ["register"]

BACKEND = "postgres"

_TABLE = {"type": "string", "pattern": r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$"}


def _schema(props: Mapping[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"type": "object", "properties": dict(props), "required": list(required)}


def _available(settings: Mapping[str, Any]) -> str | None:
    from drillbook.sandbox.pgbin import find_binaries

    try:
        import psycopg  # noqa: F401
    except ImportError as exc:
        return f"psycopg is not installed ({exc})"
    try:
        find_binaries(settings.get("bin_dir"))
    except FileNotFoundError as exc:
        return str(exc)
    return None


def _fault(name: str) -> Any:
    def factory(ctx: Context) -> Fault:
        from drillbook.backends.postgres import faults

        cls: type[Fault] = getattr(faults, name)
        return cls(ctx)

    return factory


def _step(name: str) -> Any:
    def factory(ctx: Context) -> RecoveryStep:
        from drillbook.backends.postgres import steps

        cls: type[RecoveryStep] = getattr(steps, name)
        return cls(ctx)

    return factory


def _probe(name: str) -> Any:
    def factory(ctx: Context) -> Probe:
        from drillbook.backends.postgres import probes

        cls: type[Probe] = getattr(probes, name)
        return cls(ctx)

    return factory


def _ledger(ctx: Context) -> Ledger:
    from drillbook.backends.postgres.ledger import PostgresLedger

    return PostgresLedger(ctx)


def _prepare(ctx: Context) -> Any:
    from drillbook.backends.postgres.prepare import prepare_sandbox

    return prepare_sandbox(ctx)


def register(registry: Registry) -> None:
    registry.add_backend(
        BACKEND,
        _available,
        "PostgreSQL: the embedded sandbox or a configured server",
        prepare=_prepare,
    )
    empty = _schema({})
    registry.add_fault(
        "postgres.kill",
        BACKEND,
        _fault("KillPostgres"),
        help="SIGKILL the postmaster (crash; restart recovers)",
        params_schema=empty,
    )
    registry.add_fault(
        "postgres.destroy_data",
        BACKEND,
        _fault("DestroyData"),
        help="SIGKILL the server and delete its data folder (sandbox or explicit data_dir only)",
        params_schema=empty,
    )
    registry.add_fault(
        "postgres.drop_table",
        BACKEND,
        _fault("DropTable"),
        help="DROP TABLE (records the xid for a restore to just before)",
        params_schema=_schema({"table": _TABLE, "keep_copy": {"type": "boolean"}}, ("table",)),
    )
    registry.add_fault(
        "postgres.delete_rows",
        BACKEND,
        _fault("DeleteRows"),
        help="DELETE FROM table [WHERE ...] (records the xid for a restore to just before)",
        params_schema=_schema(
            {"table": _TABLE, "where": {"type": "string"}, "keep_copy": {"type": "boolean"}},
            ("table",),
        ),
    )
    registry.add_fault(
        "region.kill",
        BACKEND,
        _fault("RegionKill"),
        help="SIGKILL every process of a region (postmaster and children)",
        params_schema=empty,
    )
    registry.add_recovery(
        "postgres.restore_base_backup",
        BACKEND,
        _step("RestoreBaseBackup"),
        help="base backup + WAL replay; to: latest | before_fault | ISO time",
        params_schema=_schema(
            {
                "to": {"type": "string"},
                "keep_old": {"type": "boolean"},
                "timeout_s": {"type": "number"},
            }
        ),
    )
    registry.add_recovery(
        "postgres.restore_dump",
        BACKEND,
        _step("RestoreDump"),
        help="pg_restore a custom-format dump (optionally one table)",
        params_schema=_schema(
            {
                "dump": {"type": "string"},
                "table": _TABLE,
                "clean": {"type": "boolean"},
                "timeout_s": {"type": "number"},
            }
        ),
    )
    registry.add_recovery(
        "postgres.promote",
        BACKEND,
        _step("Promote"),
        help="promote a standby to primary",
        params_schema=_schema({"timeout_s": {"type": "number"}}),
    )
    registry.add_recovery(
        "router.switch",
        BACKEND,
        _step("RouterSwitch"),
        help="point the app at another region",
        params_schema=_schema({"to": {"type": "string"}}, ("to",)),
    )
    registry.add_recovery(
        "postgres.verify_backup",
        BACKEND,
        _step("VerifyBackup"),
        help="pg_verifybackup, restore into a scratch server, compare row counts",
        params_schema=_schema(
            {"tables": {"type": "array", "items": _TABLE}, "timeout_s": {"type": "number"}}
        ),
    )
    registry.add_probe(
        "sql",
        BACKEND,
        _probe("SqlProbe"),
        help="a query and its expected first value",
        params_schema=_schema({"query": {"type": "string"}, "expected": {}}, ("query",)),
    )
    registry.add_probe(
        "postgres.ready",
        BACKEND,
        _probe("ReadyProbe"),
        help="accepts connections (or writes)",
        params_schema=_schema({"primary": {"type": "boolean"}}),
    )
    registry.add_probe(
        "postgres.replication_lag",
        BACKEND,
        _probe("ReplicationLagProbe"),
        help="standbys stream within max_lag / max_bytes",
        params_schema=_schema(
            {
                "max_lag": {"type": "string"},
                "max_bytes": {"type": "integer"},
                "standbys": {"type": "integer"},
            }
        ),
    )
    registry.add_probe(
        "sandbox.app_health",
        BACKEND,
        _probe("AppHealthProbe"),
        help="the sandbox app's /health: a write and read through the serving region",
        params_schema=_schema({"url": {"type": "string"}, "timeout": {"type": "number"}}),
    )
    registry.add_ledger(
        "postgres.ledger",
        BACKEND,
        _ledger,
        help="writer thread of sequence-numbered commits; counts acknowledged writes lost",
    )

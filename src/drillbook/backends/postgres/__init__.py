"""The postgres backend: real PostgreSQL faults, probes, recovery steps and the RPO ledger.

Targets are either the embedded sandbox (``sandbox: region-a``) or a configured server (``dsn``,
``data_dir``, ``bin_dir``...; docs/postgres.md). Nothing here imports psycopg at import time.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drillbook.backends.base import Registry, lazy

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


def register(registry: Registry) -> None:
    """Name every fault, probe, step and the ledger; their modules load when a drill builds one."""
    registry.add_backend(
        BACKEND,
        _available,
        "PostgreSQL: the embedded sandbox or a configured server",
        prepare=lazy("drillbook.backends.postgres.prepare:prepare_sandbox"),
    )
    from drillbook.pressure.registry import register_postgres as _pressure  # Database Issues

    _pressure(registry)
    empty = _schema({})
    registry.add_fault(
        "postgres.kill",
        BACKEND,
        lazy("drillbook.backends.postgres.faults:KillPostgres"),
        help="SIGKILL the postmaster (crash; restart recovers)",
        params_schema=empty,
    )
    registry.add_fault(
        "postgres.replay_pause",
        BACKEND,
        lazy("drillbook.backends.postgres.faults_replay:ReplayPause"),
        help="pause WAL replay on a streaming standby (replication lag grows); revert resumes",
        params_schema=empty,
    )
    registry.add_recovery(
        "postgres.replay_resume",
        BACKEND,
        lazy("drillbook.backends.postgres.faults_replay:ReplayResume"),
        help="resume WAL replay on a standby (after postgres.replay_pause)",
        params_schema=empty,
    )
    registry.add_fault(
        "postgres.destroy_data",
        BACKEND,
        lazy("drillbook.backends.postgres.faults:DestroyData"),
        help="SIGKILL the server and delete its data folder (sandbox or explicit data_dir only)",
        params_schema=empty,
    )
    registry.add_fault(
        "postgres.drop_table",
        BACKEND,
        lazy("drillbook.backends.postgres.faults:DropTable"),
        help="DROP TABLE (records the xid for a restore to just before)",
        params_schema=_schema({"table": _TABLE, "keep_copy": {"type": "boolean"}}, ("table",)),
    )
    registry.add_fault(
        "postgres.delete_rows",
        BACKEND,
        lazy("drillbook.backends.postgres.faults:DeleteRows"),
        help="DELETE FROM table [WHERE ...] (records the xid for a restore to just before)",
        params_schema=_schema(
            {"table": _TABLE, "where": {"type": "string"}, "keep_copy": {"type": "boolean"}},
            ("table",),
        ),
    )
    registry.add_fault(
        "region.kill",
        BACKEND,
        lazy("drillbook.backends.postgres.faults:RegionKill"),
        help="SIGKILL every process of a region (postmaster and children)",
        params_schema=empty,
    )
    registry.add_recovery(
        "postgres.restore_base_backup",
        BACKEND,
        lazy("drillbook.backends.postgres.steps:RestoreBaseBackup"),
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
        lazy("drillbook.backends.postgres.steps:RestoreDump"),
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
        lazy("drillbook.backends.postgres.steps:Promote"),
        help="promote a standby to primary",
        params_schema=_schema({"timeout_s": {"type": "number"}}),
    )
    registry.add_recovery(
        "router.switch",
        BACKEND,
        lazy("drillbook.backends.postgres.steps:RouterSwitch"),
        help="point the app at another region",
        params_schema=_schema({"to": {"type": "string"}}, ("to",)),
    )
    registry.add_recovery(
        "postgres.verify_backup",
        BACKEND,
        lazy("drillbook.backends.postgres.steps:VerifyBackup"),
        help="pg_verifybackup, restore into a scratch server, compare row counts",
        params_schema=_schema(
            {"tables": {"type": "array", "items": _TABLE}, "timeout_s": {"type": "number"}}
        ),
    )
    registry.add_probe(
        "sql",
        BACKEND,
        lazy("drillbook.backends.postgres.probes:SqlProbe"),
        help="a query and its expected first value (on a primary: and out of recovery)",
        params_schema=_schema(
            {"query": {"type": "string"}, "expected": {}, "writable": {"type": "boolean"}},
            ("query",),
        ),
    )
    registry.add_probe(
        "postgres.ready",
        BACKEND,
        lazy("drillbook.backends.postgres.probes:ReadyProbe"),
        help="accepts connections (on a primary, or with primary: true: writes)",
        params_schema=_schema({"primary": {"type": "boolean"}}),
    )
    registry.add_probe(
        "postgres.replication_lag",
        BACKEND,
        lazy("drillbook.backends.postgres.probes:ReplicationLagProbe"),
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
        lazy("drillbook.backends.postgres.probes:AppHealthProbe"),
        help="the sandbox app's /health: a write and read through the serving region",
        params_schema=_schema({"url": {"type": "string"}, "timeout": {"type": "number"}}),
    )
    registry.add_ledger(
        "postgres.ledger",
        BACKEND,
        lazy("drillbook.backends.postgres.ledger:PostgresLedger"),
        help="writer thread of sequence-numbered commits; counts acknowledged writes lost",
    )

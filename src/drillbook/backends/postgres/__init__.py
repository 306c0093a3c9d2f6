"""The postgres backend: real PostgreSQL faults, probes, recovery steps and the RPO ledger.

Targets are either the embedded sandbox (``sandbox: region-a``) or a configured server (``dsn``,
``data_dir``, ``bin_dir``...; docs/postgres.md). Nothing here imports psycopg at import time.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drillbook.backends.base import DURATION, Registry, lazy, params

__all__ = ["register"]

_TABLE = {"type": "string", "pattern": r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$"}
_NAME = {"type": "string", "minLength": 1}
_TIMEOUT_S = {"type": "number", "exclusiveMinimum": 0}


def _available(settings: Mapping[str, Any]) -> str | None:
    from drillbook.backends.postgres.sandbox.pgbin import find_binaries

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
        "postgres",
        _available,
        "PostgreSQL: the embedded sandbox or a configured server",
        prepare=lazy("drillbook.backends.postgres.prepare:prepare_sandbox"),
    )
    from drillbook.pressure.registry import register_postgres as _pressure  # Database Issues

    _pressure(registry)
    registry.add_fault(
        "postgres.kill",
        "postgres",
        lazy("drillbook.backends.postgres.faults:KillPostgres"),
        help="SIGKILL the postmaster (crash; restart recovers)",
        params_schema=params(),
    )
    registry.add_fault(
        "postgres.replay_pause",
        "postgres",
        lazy("drillbook.backends.postgres.faults_replay:ReplayPause"),
        help="pause WAL replay on a streaming standby (replication lag grows); revert resumes",
        params_schema=params(),
    )
    registry.add_recovery(
        "postgres.replay_resume",
        "postgres",
        lazy("drillbook.backends.postgres.faults_replay:ReplayResume"),
        help="resume WAL replay on a standby (after postgres.replay_pause)",
        params_schema=params(),
    )
    registry.add_fault(
        "postgres.destroy_data",
        "postgres",
        lazy("drillbook.backends.postgres.faults:DestroyData"),
        help="SIGKILL the server and delete its data folder (sandbox or explicit data_dir only)",
        params_schema=params(),
    )
    registry.add_fault(
        "postgres.drop_table",
        "postgres",
        lazy("drillbook.backends.postgres.faults:DropTable"),
        help="DROP TABLE (records the xid for a restore to just before)",
        params_schema=params(
            {"table": _TABLE, "keep_copy": {"type": "boolean"}}, required=["table"]
        ),
    )
    registry.add_fault(
        "postgres.delete_rows",
        "postgres",
        lazy("drillbook.backends.postgres.faults:DeleteRows"),
        help="DELETE FROM table [WHERE ...] (records the xid for a restore to just before)",
        params_schema=params(
            {"table": _TABLE, "where": _NAME, "keep_copy": {"type": "boolean"}},
            required=["table"],
        ),
    )
    registry.add_fault(
        "region.kill",
        "postgres",
        lazy("drillbook.backends.postgres.faults:RegionKill"),
        help="SIGKILL every process of a region (postmaster and children)",
        params_schema=params(),
    )
    registry.add_recovery(
        "postgres.restore_base_backup",
        "postgres",
        lazy("drillbook.backends.postgres.steps:RestoreBaseBackup"),
        help="base backup + WAL replay; to: latest | before_fault | ISO time",
        params_schema=params(
            {
                "to": _NAME,
                "keep_old": {"type": "boolean"},
                "timeout_s": _TIMEOUT_S,
            }
        ),
    )
    registry.add_recovery(
        "postgres.restore_dump",
        "postgres",
        lazy("drillbook.backends.postgres.steps:RestoreDump"),
        help="pg_restore a custom-format dump (optionally one table)",
        params_schema=params(
            {
                "dump": _NAME,
                "table": _TABLE,
                "clean": {"type": "boolean"},
                "timeout_s": _TIMEOUT_S,
            }
        ),
    )
    registry.add_recovery(
        "postgres.promote",
        "postgres",
        lazy("drillbook.backends.postgres.steps:Promote"),
        help="promote a standby to primary",
        params_schema=params({"timeout_s": _TIMEOUT_S}),
    )
    registry.add_recovery(
        "router.switch",
        "postgres",
        lazy("drillbook.backends.postgres.steps:RouterSwitch"),
        help="point the app at another region",
        params_schema=params({"to": _NAME}, required=["to"]),
    )
    registry.add_recovery(
        "postgres.verify_backup",
        "postgres",
        lazy("drillbook.backends.postgres.steps:VerifyBackup"),
        help="pg_verifybackup, restore into a scratch server, compare row counts",
        params_schema=params(
            {"tables": {"type": "array", "items": _TABLE}, "timeout_s": _TIMEOUT_S}
        ),
    )
    registry.add_probe(
        "sql",
        "postgres",
        lazy("drillbook.backends.postgres.probes:SqlProbe"),
        help="a query and its expected first value (on a primary: and out of recovery)",
        params_schema=params(
            {
                "query": _NAME,
                "expected": {"type": ["string", "number", "boolean", "null"]},
                "writable": {"type": "boolean"},
            },
            required=["query"],
        ),
    )
    registry.add_probe(
        "postgres.ready",
        "postgres",
        lazy("drillbook.backends.postgres.probes:ReadyProbe"),
        help="accepts connections (on a primary, or with primary: true: writes)",
        params_schema=params({"primary": {"type": "boolean"}}),
    )
    registry.add_probe(
        "postgres.replication_lag",
        "postgres",
        lazy("drillbook.backends.postgres.probes:ReplicationLagProbe"),
        help="standbys stream within max_lag / max_bytes",
        params_schema=params(
            {
                "max_lag": DURATION,
                "max_bytes": {"type": "integer", "minimum": 0},
                "standbys": {"type": "integer", "minimum": 0},
            }
        ),
    )
    registry.add_probe(
        "sandbox.app_health",
        "postgres",
        lazy("drillbook.backends.postgres.probes:AppHealthProbe"),
        help="the sandbox app's /health: a write and read through the serving region",
        params_schema=params({"url": _NAME, "timeout": _TIMEOUT_S}),
    )
    registry.add_ledger(
        "postgres.ledger",
        "postgres",
        lazy("drillbook.backends.postgres.ledger:PostgresLedger"),
        help="writer thread of sequence-numbered commits; counts acknowledged writes lost",
    )

"""Each postgres fault on the real sandbox: inject, observe, revert from saved state, observe.

Revert is exercised the way ``drillbook rollback`` runs it: a new fault object rebuilt from
``state()`` through a JSON round trip, never the object that injected.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from drillbook.backends.base import Context, Fault
from drillbook.errors import SafetyError
from drillbook.model import TargetSpec


def _count(ctx: Context, sql: str) -> int | None:
    import psycopg

    from drillbook.backends.postgres.target import pg_target

    try:
        with psycopg.connect(pg_target(ctx).dsn(), autocommit=True) as conn:
            row = conn.execute(sql).fetchone()
    except psycopg.Error:
        return None
    return int(row[0]) if row else None


def _revert_in_new_object(cls: type[Fault], ctx: Context, fault: Fault) -> Fault:
    fresh = cls(ctx)
    fresh.load_state(json.loads(json.dumps(fault.state())))
    fresh.revert()
    return fresh


def test_kill_crashes_the_primary_and_revert_restarts_it(
    ctx_for: Callable[..., Context],
) -> None:
    from drillbook.backends.postgres.faults import KillPostgres

    ctx = ctx_for("region-a")
    fault = KillPostgres(ctx)
    fault.preflight()
    fault.inject()
    assert fault.verify_injected()
    assert _count(ctx, "SELECT 1") is None
    fresh = _revert_in_new_object(KillPostgres, ctx, fault)
    assert fresh.verify_reverted()
    assert _count(ctx, "SELECT count(*) FROM accounts") == 1000
    assert fault.state()["pid"] != fault.target.postmaster_pid()  # a new postmaster


def test_destroy_data_deletes_the_folder_and_revert_restores(
    ctx_for: Callable[..., Context], pg: Path
) -> None:
    from drillbook.backends.postgres.faults import DestroyData

    ctx = ctx_for("region-a")
    fault = DestroyData(ctx)
    fault.inject()
    assert fault.verify_injected()
    assert not (pg / "region-a" / "data" / "PG_VERSION").exists()
    fresh = _revert_in_new_object(DestroyData, ctx, fault)
    assert fresh.verify_reverted()
    assert _count(ctx, "SELECT count(*) FROM accounts") == 1000


def test_destroy_data_refuses_when_the_archive_holds_a_newer_foreign_timeline(
    ctx_for: Callable[..., Context], pg: Path
) -> None:
    """A standby promoted onto the same archive left a newer timeline there: a restore to the
    archive's end would replay that server's history. Refused before the folder is touched."""
    from drillbook.backends.postgres.faults import DestroyData
    from drillbook.errors import FaultError

    ctx = ctx_for("region-a")
    foreign = pg / "archive" / "000000FE.history"
    foreign.write_text("1\t0/3000000\tno recovery target specified\n")
    try:
        with pytest.raises(FaultError, match="holds timeline 254, newer than this server's"):
            DestroyData(ctx).preflight()
        assert (pg / "region-a" / "data" / "PG_VERSION").exists()
        assert _count(ctx, "SELECT count(*) FROM accounts") == 1000
    finally:
        foreign.unlink()
    DestroyData(ctx).preflight()  # the archive of this cluster alone: the way back is there


def test_destroy_data_refuses_a_folder_outside_the_sandbox(tmp_path: Path, pg: Path) -> None:
    from drillbook.backends.postgres.restore import safe_remove_data_dir
    from drillbook.backends.postgres.target import pg_target

    victim = tmp_path / "precious"
    victim.mkdir()
    (victim / "PG_VERSION").write_text("18\n")
    target = TargetSpec("pg", "postgres", {"sandbox": "region-a", "root": str(pg)})
    pgt = pg_target(Context(params={}, targets=(target,)))
    with pytest.raises(SafetyError):
        safe_remove_data_dir(pgt, victim)
    assert (victim / "PG_VERSION").exists()

    real = TargetSpec(
        "real", "postgres", {"dsn": "host=127.0.0.1", "data_dir": str(tmp_path / "x")}
    )
    with pytest.raises(SafetyError):
        safe_remove_data_dir(pg_target(Context(params={}, targets=(real,))), victim)
    assert (victim / "PG_VERSION").exists()


def test_destroy_data_on_a_real_target_needs_an_explicit_data_dir() -> None:
    from drillbook.backends.postgres.faults import DestroyData

    real = TargetSpec("real", "postgres", {"dsn": "host=127.0.0.1 port=1"})
    with pytest.raises(Exception, match="data_dir"):
        DestroyData(Context(params={}, targets=(real,))).preflight()


def test_delete_rows_then_revert_puts_the_rows_back(ctx_for: Callable[..., Context]) -> None:
    from drillbook.backends.postgres.faults import DeleteRows

    ctx = ctx_for("region-a", table="accounts", where="id <= 100")
    fault = DeleteRows(ctx)
    fault.inject()
    assert fault.verify_injected()
    assert _count(ctx, "SELECT count(*) FROM accounts") == 900
    state = fault.state()
    assert state["rows"] == 100 and state["xid"].isdigit()
    fresh = _revert_in_new_object(DeleteRows, ctx, fault)
    assert fresh.verify_reverted()
    assert _count(ctx, "SELECT count(*) FROM accounts") == 1000
    assert _count(ctx, f"SELECT count(*) FROM pg_class WHERE relname = '{state['copy']}'") == 0


def test_drop_table_then_revert_recreates_it(ctx_for: Callable[..., Context]) -> None:
    from drillbook.backends.postgres.faults import DropTable

    ctx = ctx_for("region-a", table="accounts")
    fault = DropTable(ctx)
    fault.inject()
    assert fault.verify_injected()
    assert _count(ctx, "SELECT count(*) FROM accounts") is None
    fresh = _revert_in_new_object(DropTable, ctx, fault)
    assert fresh.verify_reverted()
    assert _count(ctx, "SELECT sum(balance)::bigint FROM accounts") == 750750


def test_delete_rows_rejects_sql_in_where(ctx_for: Callable[..., Context]) -> None:
    from drillbook.backends.postgres.faults import DeleteRows
    from drillbook.errors import ConfigError

    with pytest.raises(ConfigError):
        DeleteRows(ctx_for("region-a", table="accounts", where="true; DROP TABLE x")).plan()


def test_region_kill_takes_every_process_and_revert_fails_back(
    ctx_for: Callable[..., Context], pg: Path
) -> None:
    from drillbook.backends.postgres.faults import RegionKill
    from drillbook.backends.postgres.sandbox import sandbox_status

    ctx = ctx_for("region-a")
    fault = RegionKill(ctx)
    fault.inject()
    assert fault.verify_injected()
    for pid in fault.state()["pids"]:
        stat = Path(f"/proc/{pid}/stat")
        assert not stat.exists() or stat.read_text().rsplit(")", 1)[-1].split()[0] == "Z"
    fresh = _revert_in_new_object(RegionKill, ctx, fault)
    assert fresh.verify_reverted()
    status = sandbox_status(pg)
    assert status["serving"] == "region-a"
    assert status["nodes"]["region-a"]["role"] == "primary"
    assert status["nodes"]["region-b"]["role"] == "standby"

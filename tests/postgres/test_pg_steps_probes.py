"""Recovery steps and probes on the real sandbox."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from drillbook.backends.base import Context
from drillbook.errors import RecoveryError


def test_sql_probe_compares_with_expected(ctx_for: Callable[..., Context]) -> None:
    from drillbook.backends.postgres.probes import SqlProbe

    query = "SELECT count(*) FROM accounts"
    assert SqlProbe(ctx_for("region-a", query=query, expected=1000)).check().ok
    wrong = SqlProbe(ctx_for("region-a", query=query, expected=999)).check()
    assert not wrong.ok and "1000" in wrong.detail


def test_ready_probe_tells_primary_from_standby(ctx_for: Callable[..., Context]) -> None:
    from drillbook.backends.postgres.probes import ReadyProbe

    assert ReadyProbe(ctx_for("region-a", primary=True)).check().ok
    standby = ReadyProbe(ctx_for("region-b", primary=True)).check()
    assert not standby.ok and "recovery" in standby.detail
    assert ReadyProbe(ctx_for("region-b")).check().ok


def test_replication_lag_probe_sees_the_streaming_standby(
    ctx_for: Callable[..., Context],
) -> None:
    from drillbook.backends.postgres.probes import ReplicationLagProbe

    assert ReplicationLagProbe(ctx_for("region-a", max_lag="30s")).check().ok
    two = ReplicationLagProbe(ctx_for("region-a", standbys=2)).check()
    assert not two.ok and "1 streaming" in two.detail


def test_promote_and_router_switch_move_the_app(ctx_for: Callable[..., Context]) -> None:
    from drillbook.backends.postgres.faults import RegionKill
    from drillbook.backends.postgres.probes import AppHealthProbe
    from drillbook.backends.postgres.steps import Promote, RouterSwitch

    app = AppHealthProbe(ctx_for("app"))
    assert "region-a" in app.check().detail
    fault = RegionKill(ctx_for("region-a"))
    fault.inject()
    assert not app.check().ok
    Promote(ctx_for("region-b")).run()
    assert "region-a -> region-b" in RouterSwitch(ctx_for("app", to="region-b")).run()
    after = app.check()
    assert after.ok and "region-b" in after.detail
    fault.revert()
    assert "region-a" in app.check().detail


def test_restore_dump_brings_a_dropped_table_back(ctx_for: Callable[..., Context]) -> None:
    from drillbook.backends.postgres.faults import DropTable
    from drillbook.backends.postgres.probes import SqlProbe
    from drillbook.backends.postgres.steps import RestoreDump

    fault = DropTable(ctx_for("region-a", table="accounts", keep_copy=False))
    fault.inject()
    probe = SqlProbe(ctx_for("region-a", query="SELECT count(*) FROM accounts", expected=1000))
    assert not probe.check().ok
    RestoreDump(ctx_for("region-a", table="accounts")).run()
    assert probe.check().ok


def test_verify_backup_restores_into_a_scratch_server(
    ctx_for: Callable[..., Context], pg: Path
) -> None:
    from drillbook.backends.postgres.steps import VerifyBackup

    detail = VerifyBackup(ctx_for("region-a", tables=["accounts"])).run()
    assert "counts match (accounts=1000)" in detail
    assert list((pg / "scratch").iterdir()) == []  # the scratch server is gone


def test_archiving_twice_in_a_row_returns_the_last_completed_segment(
    ctx_for: Callable[..., Context],
) -> None:
    """The second switch has nothing to switch (no WAL since the first): pg_switch_wal returns
    the start of the file in use, an empty segment never archived while idle. Waiting for that
    one timed out after 30 s (seen twice in CI); the last completed segment is the answer."""
    from drillbook.backends.postgres.restore import archive_current_wal
    from drillbook.backends.postgres.target import pg_target

    target = pg_target(ctx_for("region-a"))
    first = archive_current_wal(target, timeout_s=30)
    # A wait that timed out raises RecoveryError ("not archived within"): returning is the proof.
    second = archive_current_wal(target, timeout_s=10)
    assert first and second and second >= first
    archive = target.wal_archive()
    assert archive is not None and (archive / second).exists()


def test_verify_backup_fails_on_a_corrupted_backup(
    ctx_for: Callable[..., Context], pg: Path
) -> None:
    from drillbook.backends.postgres.sandbox.replication import take_base_backup
    from drillbook.backends.postgres.steps import VerifyBackup

    victim = next((pg / "backups" / "base" / "base").rglob("1259"))  # pg_class's heap
    victim.write_bytes(b"\0" * victim.stat().st_size)
    try:
        with pytest.raises(RecoveryError, match="pg_verifybackup"):
            VerifyBackup(ctx_for("region-a")).run()
    finally:
        take_base_backup(pg)


def test_restore_to_a_missing_mark_is_refused(ctx_for: Callable[..., Context]) -> None:
    from drillbook.backends.postgres.steps import RestoreBaseBackup

    with pytest.raises(RecoveryError, match="nothing to restore 'before'"):
        RestoreBaseBackup(ctx_for("region-a", to="before_fault")).run()

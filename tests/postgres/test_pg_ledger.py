"""The RPO ledger counts a known loss exactly, and point-in-time recovery brings rows back."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from drillbook.backends.base import Context
from drillbook.model import TargetSpec


def _wait_acks(ledger: object, at_least: int, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while len(ledger.acknowledged()) < at_least:  # type: ignore[attr-defined]
        assert time.monotonic() < deadline, "ledger made no progress"
        time.sleep(0.05)


def test_pitr_before_a_delete_loses_exactly_the_writes_after_it(
    ctx_for: Callable[..., Context],
) -> None:
    """Write K rows, delete (recording the xid), write N more, restore to just before the
    delete: the ledger must report exactly N lost and the deleted rows must be back."""
    from drillbook.backends.postgres.faults import DeleteRows
    from drillbook.backends.postgres.ledger import PostgresLedger

    ledger = PostgresLedger(ctx_for("region-a", rate_per_s=100))
    ledger.start()
    _wait_acks(ledger, 30)
    ledger.stop()  # no write in flight around the delete: the boundary is exact
    kept = len(ledger.acknowledged())

    fault = DeleteRows(ctx_for("region-a", table="accounts"))
    fault.inject()
    try:
        _restore_and_measure(ctx_for, ledger, fault, kept)
    finally:
        fault.revert()  # the sandbox is shared by the module: leave the rows as they were


def _restore_and_measure(
    ctx_for: Callable[..., Context], ledger: Any, fault: Any, kept: int
) -> None:
    from drillbook.backends.postgres.probes import SqlProbe
    from drillbook.backends.postgres.steps import RestoreBaseBackup

    t_inject = time.time()
    assert fault.verify_injected()

    ledger.start()  # resumes with the next sequence number
    _wait_acks(ledger, kept + 40)
    ledger.stop()
    written_after = len(ledger.acknowledged()) - kept
    assert written_after >= 40

    detail = RestoreBaseBackup(ctx_for("region-a", to="before_fault")).run()
    assert "just before xid" in detail

    measure = ledger.measure(t_inject)
    assert measure.lost_writes == written_after
    assert measure.survived == kept
    assert measure.acknowledged == kept + written_after
    assert measure.lost_before_inject == 0  # everything acknowledged before the delete survived
    assert measure.rpa_s is not None and measure.rpa_s > 0  # but the writes after it are data lost
    rows = SqlProbe(ctx_for("region-a", query="SELECT count(*) FROM accounts", expected=1000))
    assert rows.check().ok


def test_nothing_lost_when_nothing_failed(ctx_for: Callable[..., Context]) -> None:
    from drillbook.backends.postgres.ledger import PostgresLedger

    ledger = PostgresLedger(ctx_for("region-a", rate_per_s=200))
    ledger.start()
    _wait_acks(ledger, 50)
    t_inject = time.time()
    _wait_acks(ledger, 80)
    ledger.stop()
    measure = ledger.measure(t_inject)
    assert measure.lost_writes == 0
    assert measure.rpa_s == 0.0
    assert measure.survived == measure.acknowledged >= 80


def test_ledger_works_against_a_plain_dsn(pg: Path, tmp_path: Path) -> None:
    """Not only sandbox targets: a target with just a DSN (here: the sandbox's port)."""
    import json

    from drillbook.backends.postgres.ledger import PostgresLedger

    port = json.loads((pg / "state.json").read_text())["nodes"]["region-a"]["port"]
    dsn = f"postgresql://postgres@127.0.0.1:{port}/postgres"
    target = TargetSpec("staging-db", "postgres", {"dsn": dsn})
    ctx = Context(params={"rate_per_s": 100, "table": "ledger_plain"}, targets=(target,))
    ledger = PostgresLedger(ctx)
    ledger.start()
    _wait_acks(ledger, 20)
    ledger.stop()
    measure = ledger.measure(time.time())
    assert measure.lost_writes == 0 and measure.survived == measure.acknowledged >= 20


def test_db_restore_loses_only_what_the_archive_did_not_hold(
    ctx_for: Callable[..., Context],
) -> None:
    """Destroy the data mid-write and restore to the end of the archive: every write that was
    acknowledged before the last archived segment survives; the loss is a contiguous tail."""
    from drillbook.backends.postgres.faults import DestroyData
    from drillbook.backends.postgres.ledger import PostgresLedger
    from drillbook.backends.postgres.steps import RestoreBaseBackup

    ledger = PostgresLedger(ctx_for("region-a", rate_per_s=50))
    ledger.start()
    _wait_acks(ledger, 100)  # > 2 s of writes: at least one archive_timeout has passed
    fault = DestroyData(ctx_for("region-a"))
    before_fault = time.time()
    fault.inject()
    t_inject = time.time()
    RestoreBaseBackup(ctx_for("region-a", to="latest")).run()
    time.sleep(0.5)
    ledger.stop()
    measure = ledger.measure(t_inject)
    acks = ledger.acknowledged()
    survived = ledger.surviving()
    lost = sorted(a.seq for a in acks if a.seq not in survived)
    assert measure.lost_writes == len(lost)
    # One tail: of the writes acknowledged before the fault, the survivors are the oldest ones
    # with no gap, so no write older than a surviving one was lost (whether or not anything was
    # lost at all). Writes acknowledged after the restore survive and are not part of it.
    acked = sorted(a.seq for a in acks if a.at < before_fault)
    kept = [seq for seq in acked if seq in survived]
    assert kept == acked[: len(kept)], f"lost {lost} are not a tail of {acked[0]}..{acked[-1]}"
    assert measure.survived >= 50  # the archive held the older writes
    assert measure.rpa_s is not None and measure.rpa_s >= 0
    fault.revert()

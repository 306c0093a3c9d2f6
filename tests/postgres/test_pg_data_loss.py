"""RPA on the real sandbox: the data recovery lost, in time, whichever side of t_inject it was
acknowledged on; a restore that loses nothing reads 0; a loss that is not a tail counts."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from drillbook.backends.base import Context
from drillbook.model import Objectives, Verdict
from drillbook.timeline import Measures, judge

_RECOVERED = Measures(detected=True, recovered=True, ttd_s=0.1, rta_s=1.0)


def _wait(cond: Callable[[], bool], what: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        assert time.monotonic() < deadline, f"ledger made no progress: {what}"
        time.sleep(0.02)


def _ledger(ctx_for: Callable[..., Context], rate: float) -> Any:
    from drillbook.backends.postgres.ledger import PostgresLedger

    return PostgresLedger(ctx_for("region-a", rate_per_s=rate, table="ledger_loss"))


def test_a_restore_that_loses_nothing_reports_zero(ctx_for: Callable[..., Context]) -> None:
    """Every acknowledged write archived, the data folder destroyed, restored to the end of the
    archive: nothing is lost and RPA is 0, so an RPO of 0 passes."""
    from drillbook.backends.postgres.faults import DestroyData
    from drillbook.backends.postgres.restore import archive_current_wal
    from drillbook.backends.postgres.steps import RestoreBaseBackup
    from drillbook.backends.postgres.target import pg_target

    ledger = _ledger(ctx_for, 100)
    ledger.start()
    _wait(lambda: len(ledger.acknowledged()) >= 50, "50 writes")
    ledger.stop()
    assert archive_current_wal(pg_target(ctx_for("region-a"))) is not None
    fault = DestroyData(ctx_for("region-a"))
    fault.inject()
    t_inject = time.time()
    try:
        assert fault.verify_injected()
        RestoreBaseBackup(ctx_for("region-a", to="latest")).run()
        measure = ledger.measure(t_inject)
    finally:
        fault.revert()
    assert measure.acknowledged >= 50
    assert measure.lost_writes == 0 and measure.rpa_s == 0.0
    assert measure.recovery_point == ledger.acknowledged()[-1].at
    verdict, _c, reasons = judge(
        _RECOVERED,
        Objectives(rpo_s=0.0),
        has_fault=True,
        rpa_s=measure.rpa_s,
        lost_writes=measure.lost_writes,
    )
    assert verdict is Verdict.PASSED, reasons


def test_a_pitr_that_drops_two_seconds_of_writes_reads_two_seconds(
    ctx_for: Callable[..., Context],
) -> None:
    """The issue's reproduction: 200 writes/s, a DELETE (the fault), two more seconds of writes,
    then a point-in-time restore to just before the DELETE. Every write acknowledged before
    t_inject survives; the two seconds after it are gone. RPA read 0.009 s and a 1 s RPO passed;
    it must read at least the two seconds and fail it. The writer resumes after the restore, so
    the newest writes survive and the loss is not a tail."""
    from drillbook.backends.postgres.faults import DeleteRows
    from drillbook.backends.postgres.steps import RestoreBaseBackup

    ledger = _ledger(ctx_for, 200)
    ledger.start()
    _wait(lambda: len(ledger.acknowledged()) >= 100, "100 writes")
    ledger.stop()  # no write in flight around the DELETE: the boundary is exact
    kept = ledger.acknowledged()
    fault = DeleteRows(ctx_for("region-a", table="accounts"))
    fault.inject()
    t_inject = time.time()
    try:
        assert fault.verify_injected()
        ledger.start()
        _wait(lambda: ledger.acknowledged()[-1].at - t_inject >= 2.0, "two seconds of writes")
        ledger.stop()
        doomed = ledger.acknowledged()[len(kept) :]
        RestoreBaseBackup(ctx_for("region-a", to="before_fault")).run()
        ledger.start()  # the restored primary takes writes again: these survive
        _wait(lambda: len(ledger.acknowledged()) >= len(kept) + len(doomed) + 20, "new writes")
        ledger.stop()
        measure = ledger.measure(t_inject)
    finally:
        fault.revert()
    print(f"\nlost {measure.lost_writes} writes, RPA {measure.rpa_s:.3f} s: {measure.detail}")
    assert measure.lost_writes == len(doomed) >= 300
    assert measure.rpa_s is not None and measure.rpa_s >= 2.0
    assert measure.rpa_s == pytest.approx(doomed[-1].at - kept[-1].sent)
    assert measure.lost_before_inject == 0
    assert measure.survived == measure.acknowledged - len(doomed)  # older and newer kept
    assert measure.recovery_point == kept[-1].sent
    assert (measure.oldest_lost_at, measure.newest_lost_at) == (doomed[0].at, doomed[-1].at)
    verdict, _c, reasons = judge(
        _RECOVERED,
        Objectives(rpo_s=1.0),
        has_fault=True,
        rpa_s=measure.rpa_s,
        lost_writes=measure.lost_writes,
    )
    assert verdict is Verdict.FAILED
    assert reasons[0].startswith("rpa<=rpo:") and f"{len(doomed)} acknowledged" in reasons[0]


def test_older_rows_gone_newest_surviving_is_counted(ctx_for: Callable[..., Context]) -> None:
    """A loss in the middle of the ledger (older rows gone, the newest intact) read ~0 before
    (only a tail before t_inject counted). It is the span of the rows that went."""
    import psycopg

    from drillbook.backends.postgres.target import pg_target

    ledger = _ledger(ctx_for, 100)
    ledger.start()
    _wait(lambda: len(ledger.acknowledged()) >= 120, "120 writes")
    ledger.stop()
    acks = ledger.acknowledged()
    gone = [a for a in acks if 31 <= a.seq <= 60]
    with psycopg.connect(pg_target(ctx_for("region-a")).dsn(timeout_s=5), autocommit=True) as c:
        c.execute(
            "DELETE FROM ledger_loss WHERE run_id = %s AND seq BETWEEN 31 AND 60", (ledger.run_id,)
        )
    measure = ledger.measure(acks[-1].at)  # the newest write survived
    assert measure.lost_writes == 30
    assert measure.rpa_s is not None and measure.rpa_s > 0.0
    before = next(a for a in acks if a.seq == 30)
    assert measure.rpa_s == pytest.approx(gone[-1].at - before.sent)
    assert measure.lost_before_inject == 30
    zero = judge(
        _RECOVERED, Objectives(rpo_s=0.0), has_fault=True, rpa_s=measure.rpa_s, lost_writes=30
    )
    assert zero[0] is Verdict.FAILED


def test_the_shipped_pitr_drill_reports_the_writes_it_lost_in_time(
    pg: Path, tmp_path: Path
) -> None:
    """Must-show: a drill with lost_writes > 0 has rpa_s > 0. The shipped db_accidental_delete
    scenario, run by `drillbook run` on this sandbox: the point-in-time restore gives up the
    writes acknowledged after the DELETE, and RPA spans them."""
    import json
    import os
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[2]
    (tmp_path / "drillbook.yaml").write_text(
        "environment: sandbox\ntargets:\n"
        f"  pg-primary: {{backend: postgres, sandbox: region-a, root: {json.dumps(str(pg))}}}\n"
    )
    (tmp_path / "scenarios").mkdir()
    shipped = repo / "scenarios" / "db_accidental_delete.yaml"
    (tmp_path / "scenarios" / shipped.name).write_text(shipped.read_text())
    (tmp_path / "drills").mkdir()
    (tmp_path / "drills" / "test_scenarios.py").write_text(
        "def test_scenario(drill_scenario, drill):\n    drill.run(drill_scenario)\n"
    )
    out = subprocess.run(
        [sys.executable, "-m", "drillbook.cli", "run", "--", "-p", "no:cacheprovider"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(repo / "src")},
        capture_output=True,
        text=True,
        timeout=600,
    )
    journal = json.loads((tmp_path / "reports" / "latest" / "journal.json").read_text())
    (drill,) = journal["drills"]
    m = drill["measures"]
    print(f"\n{drill['verdict']}: lost {m['lost_writes']}, RPA {m['rpa_s']} s; {m['ledger']}")
    assert drill["verdict"] == "passed", out.stdout[-3000:] + out.stderr[-3000:]
    assert m["lost_writes"] > 0  # a point-in-time restore to before the fault gives those up
    assert m["rpa_s"] > 0
    ledger = m["ledger"]
    assert ledger["recovery_point"] <= ledger["oldest_lost_at"] <= ledger["newest_lost_at"]

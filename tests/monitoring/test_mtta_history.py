"""MTTA in the history: recorded from alert drills, shown beside MTTD and MTTR by `drillbook
trend` and the quarterly report; a history written before alert drills is migrated in place."""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "report"))

from report_fixtures import make_drill, make_journal

from drillbook.history import drill_rows, record_run, trend
from drillbook.report.quarter import build_quarter_report, render_quarter_md
from drillbook.report.trend import trend_table


def alert_journal(run: str, tta: float | None) -> dict:
    drill = make_drill("service_down_alert", rta=5.0, rto=60.0)
    drill["measures"]["tta_s"] = tta
    journal = make_journal(drills=[drill])
    journal["run_id"] = run
    return journal


def test_mtta_is_recorded_and_shown_beside_mttd_and_mttr(tmp_path: Path) -> None:
    db = tmp_path / "h.sqlite"
    for i, tta in enumerate((3.0, 5.0, None)):  # a drill whose alert never fired counts no TTA
        record_run(db, alert_journal(f"run-{i}", tta))
    (series,) = trend(db)
    (q,) = series.quarters
    assert q.mtta.n == 2 and q.mtta.mean == 4.0 and q.mtta.p50 == 4.0
    table = trend_table([series])
    header = table.splitlines()[0]
    assert header.index("MTTD") < header.index("MTTA") < header.index("MTTR")
    md = render_quarter_md(build_quarter_report(db, q.quarter))
    assert "MTTA 4.00s (p50 4.00s, p90 4.80s, n=2)" in md, md


def test_a_history_from_before_alert_drills_is_migrated(tmp_path: Path) -> None:
    db = tmp_path / "old.sqlite"
    record_run(db, alert_journal("run-new", 2.0))
    with sqlite3.connect(db) as conn:  # rebuild the drills table as the older schema had it
        conn.execute("DROP INDEX IF EXISTS drills_series_tta")
        conn.execute("ALTER TABLE drills DROP COLUMN tta_s")
        assert "tta_s" not in {r[1] for r in conn.execute("PRAGMA table_info(drills)")}
    record_run(db, alert_journal("run-later", 6.0))
    rows = drill_rows(db, with_details=True)
    assert sorted((r.run_id, r.tta_s) for r in rows) == [("run-later", 6.0), ("run-new", None)]

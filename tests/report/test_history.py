"""The SQLite history: idempotent recording, import, and the trend statistics over many runs."""

from __future__ import annotations

import json
import statistics
from datetime import timedelta
from pathlib import Path

import pytest
from report_fixtures import T0, make_drill, make_journal, synthetic_journals

from drillbook.errors import ConfigError
from drillbook.history import (
    drill_rows,
    import_files,
    load_run_journal,
    percentile,
    record_run,
    record_runs,
    recorded_run_ids,
    stats,
    sync_reports_dir,
    trend,
)


def test_record_run_is_idempotent_per_run_id(tmp_path: Path) -> None:
    db = tmp_path / "h.sqlite"
    journal = make_journal()
    assert record_run(db, journal) is True
    assert record_run(db, journal) is False
    assert recorded_run_ids(db) == {journal["run_id"]}
    assert len(drill_rows(db)) == 1
    assert load_run_journal(db, journal["run_id"]) == journal  # the full journal is kept


def test_rows_hold_the_measures(tmp_path: Path) -> None:
    db = tmp_path / "h.sqlite"
    drill = make_drill(
        "db_restore",
        verdict="failed",
        rta=41.5,
        rto=30.0,
        rpa=2.4,
        rpo=1.0,
        lost_writes=120,
        target="pg-primary",
        reasons=["RTA 41.5s > RTO 30s"],
    )
    record_run(db, make_journal(drills=[drill]))
    (row,) = drill_rows(db, with_details=True)
    assert (row.scenario, row.target, row.verdict, row.quarter) == (
        "db_restore",
        "pg-primary",
        "failed",
        "2026Q4",
    )
    assert (row.rta_s, row.rto_s, row.rpa_s, row.rpo_s, row.lost_writes) == (
        41.5,
        30.0,
        2.4,
        1.0,
        120,
    )
    assert row.reasons == ("RTA 41.5s > RTO 30s",)
    assert row.started_at == "2026-11-22T14:01:02.123Z"


def test_import_files_from_elsewhere(tmp_path: Path) -> None:
    db = tmp_path / "h.sqlite"
    files = []
    for i in range(3):
        run_dir = tmp_path / "artifacts" / f"run{i}"
        run_dir.mkdir(parents=True)
        (run_dir / "journal.json").write_text(json.dumps(make_journal(run_id=f"run-{i}")))
        files.append(run_dir / "journal.json" if i else run_dir)  # a file or a run folder
    result = import_files(db, files)
    assert sorted(result.imported) == ["run-0", "run-1", "run-2"] and result.already == []
    again = import_files(db, files)
    assert again.imported == [] and sorted(again.already) == ["run-0", "run-1", "run-2"]


def test_import_bad_file_imports_nothing(tmp_path: Path) -> None:
    db = tmp_path / "h.sqlite"
    good = tmp_path / "good.json"
    good.write_text(json.dumps(make_journal(run_id="good")))
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"schema_version": 1, "run_id": "bad", "drills": "nope"}))
    with pytest.raises(ConfigError, match=r"bad.json: drills: expected a list"):
        import_files(db, [good, bad])
    assert recorded_run_ids(db) == set()


def test_sync_reports_dir_records_unrecorded_runs(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    for i in range(2):
        (reports / f"r{i}").mkdir(parents=True)
        (reports / f"r{i}" / "journal.json").write_text(json.dumps(make_journal(run_id=f"r{i}")))
    (reports / "latest").symlink_to(reports / "r1")
    (reports / "partial").mkdir()
    (reports / "partial" / "journal.json").write_text("{")  # still being written: skipped
    db = reports / "history.sqlite"
    assert sync_reports_dir(db, reports) == 2
    assert sync_reports_dir(db, reports) == 0
    assert recorded_run_ids(db) == {"r0", "r1"}


def test_percentile_interpolates() -> None:
    assert percentile([1.0, 3.0], 50) == 2.0
    assert percentile([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0], 90) == pytest.approx(9.1)
    assert percentile([], 50) is None
    s = stats([5.0, None, 1.0, 3.0])
    assert (s.n, s.mean, s.p50) == (3, 3.0, 3.0)


def test_trend_over_thousands_of_runs_matches_an_independent_computation(tmp_path: Path) -> None:
    db = tmp_path / "h.sqlite"
    journals = synthetic_journals(3000, 12, seed=11)
    assert record_runs(db, [(j, "syn") for j in journals]) == 3000
    series = trend(db)
    assert len(series) == 12
    assert sum(s.count for s in series) == 3000
    # Recompute one scenario/quarter from the journals themselves.
    want: dict[tuple[str, str], list[dict]] = {}
    for j in journals:
        d = j["drills"][0]
        month = int(d["started_at"][5:7])
        q = f"{d['started_at'][:4]}Q{(month - 1) // 3 + 1}"
        want.setdefault((d["scenario"], q), []).append(d)
    s5 = next(s for s in series if s.scenario == "scenario_05")
    for q in s5.quarters:
        drills = want[("scenario_05", q.quarter)]
        rtas = [d["measures"]["rta_s"] for d in drills]
        assert q.count == len(drills)
        assert q.passed == sum(d["verdict"] == "passed" for d in drills)
        assert q.mttr.mean == pytest.approx(statistics.fmean(rtas))
        assert q.mttr.p50 == pytest.approx(statistics.median(rtas))
        assert q.mttr.p90 == pytest.approx(statistics.quantiles(rtas, n=10, method="inclusive")[8])
        assert q.mttd.mean == pytest.approx(
            statistics.fmean(d["measures"]["ttd_s"] for d in drills)
        )
        assert q.over_rto == sum(d["measures"]["rta_s"] > d["objectives"]["rto_s"] for d in drills)
    assert [q.quarter for q in s5.quarters] == sorted(q.quarter for q in s5.quarters)


def test_trend_filters(tmp_path: Path) -> None:
    db = tmp_path / "h.sqlite"
    record_runs(db, [(j, "syn") for j in synthetic_journals(600, 6)])
    only = trend(db, scenario="scenario_02")
    assert [s.scenario for s in only] == ["scenario_02"]
    recent = trend(db, since="2026-07-01")
    assert recent and all(q.quarter >= "2026Q3" for s in recent for q in s.quarters)


def _run(
    db: Path,
    i: int,
    days: float,
    rta: float | None,
    rto: float = 30.0,
    verdict: str = "passed",
    target: str = "web",
) -> None:
    started = T0 + timedelta(days=days)
    drill = make_drill("restart", verdict=verdict, rta=rta, rto=rto, started=started, target=target)
    record_run(db, make_journal(run_id=f"r{i}", drills=[drill], started=started))


def test_regression_when_latest_rta_above_previous_quarter_p90(tmp_path: Path) -> None:
    db = tmp_path / "h.sqlite"
    for i, rta in enumerate([1.0, 1.1, 1.2, 1.3, 2.0]):  # 2026Q3 (T0 - 100 days ...)
        _run(db, i, -100 + i, rta)
    _run(db, 10, 0, 2.5)  # 2026Q4: above Q3 p90 (1.72s), below the RTO
    (s,) = trend(db)
    assert [q.quarter for q in s.quarters] == ["2026Q3", "2026Q4"]
    assert s.quarters[0].mttr.p90 == pytest.approx(1.72)
    assert s.regression and "2026Q3 p90 1.72s" in s.regression_reason
    _run(db, 11, 1, 1.5)  # the latest run is fine again
    (s,) = trend(db)
    assert not s.regression and s.latest_rta_s == 1.5


def test_regression_when_latest_rta_above_rto_and_targets_kept_apart(tmp_path: Path) -> None:
    db = tmp_path / "h.sqlite"
    _run(db, 1, 0, 12.0, rto=10.0, verdict="failed", target="a")
    _run(db, 2, 0.1, 3.0, rto=10.0, target="b")
    a, b = trend(db)
    assert (a.target, b.target) == ("a", "b")
    assert a.regression and "RTO 10.00s" in a.regression_reason
    assert not b.regression


def test_unrecovered_drill_counted_apart(tmp_path: Path) -> None:
    db = tmp_path / "h.sqlite"
    _run(db, 1, 0, 2.0)
    _run(db, 2, 0.5, None, verdict="failed")
    (s,) = trend(db)
    (q,) = s.quarters
    assert (q.count, q.passed, q.not_recovered, q.mttr.n) == (2, 1, 1, 1)
    assert s.latest_rta_s == 2.0


def test_missing_database_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="history database"):
        trend(tmp_path / "none.sqlite")

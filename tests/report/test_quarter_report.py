"""The quarterly DR drill report: per scenario spreads, failures, open findings, both formats."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from report_fixtures import make_drill, make_journal

from drillbook.errors import ConfigError
from drillbook.history import quarter_bounds, record_run
from drillbook.report.quarter import build_quarter_report, write_quarter_report

Q4 = datetime(2026, 10, 5, 9, 0, tzinfo=UTC)


def _record(db: Path, n: int, when: datetime, scenario: str, **kw: object) -> None:
    drill = make_drill(scenario, started=when, **kw)  # type: ignore[arg-type]
    record_run(db, make_journal(run_id=f"q-{n}", drills=[drill], started=when))


@pytest.fixture
def db(tmp_path: Path) -> Path:
    db = tmp_path / "h.sqlite"
    _record(db, 0, Q4 - timedelta(days=40), "backup_verify", rta=5.0, rto=60.0)  # Q3 only
    _record(db, 1, Q4, "db_restore", rta=20.0, rto=30.0, rpa=0.5, rpo=1.0, target="pg")
    _record(
        db,
        2,
        Q4 + timedelta(days=10),
        "db_restore",
        verdict="failed",
        rta=41.5,
        rto=30.0,
        rpa=2.4,
        rpo=1.0,
        target="pg",
        reasons=["RTA 41.5s > RTO 30s"],
    )
    _record(
        db,
        3,
        Q4 + timedelta(days=20),
        "db_restore",
        rta=25.0,
        rto=30.0,
        rpa=0.2,
        rpo=1.0,
        target="pg",
    )
    _record(
        db,
        4,
        Q4 + timedelta(days=30),
        "region_loss",
        verdict="aborted",
        rta=None,
        rto=120.0,
        reasons=["guard error-budget tripped"],
        target="region-a",
    )
    _record(
        db, 5, Q4 + timedelta(days=100), "region_loss", rta=50.0, rto=120.0, target="region-a"
    )  # 2027Q1: after the quarter, does not close the Q4 finding
    return db


def test_quarter_bounds() -> None:
    assert quarter_bounds("2026Q4") == ("2026-10-01", "2027-01-01")
    assert quarter_bounds("2026q1") == ("2026-01-01", "2026-04-01")
    with pytest.raises(ConfigError, match="quarter like 2026Q4"):
        quarter_bounds("2026-Q5")


def test_quarter_content(db: Path) -> None:
    report = build_quarter_report(db, "2026Q4")
    assert len(report.drills) == 4
    restore = next(s for s in report.scenarios if s.scenario == "db_restore")
    assert (restore.runs, restore.passed) == (3, 2)
    assert (restore.rta.best, restore.rta.median, restore.rta.worst) == (20.0, 25.0, 41.5)
    assert (restore.rta.objective, restore.rta.missed) == (30.0, 1)
    assert (restore.rpa.best, restore.rpa.worst, restore.rpa.missed) == (0.2, 2.4, 1)
    assert [f.scenario for f in report.failures] == ["db_restore", "region_loss"]
    # db_restore failed, then passed later in the quarter: closed. region_loss: still open.
    assert [f.scenario for f in report.open_findings] == ["region_loss"]
    assert report.not_drilled == [("backup_verify", "demo-service", "2026-08-26T09:00:00.000Z")]


def test_writes_html_and_markdown(db: Path, tmp_path: Path) -> None:
    html_path, md_path = write_quarter_report(db, "2026Q4", tmp_path / "out")
    assert html_path.name == "quarterly-2026Q4.html" and md_path.name == "quarterly-2026Q4.md"
    html = html_path.read_text()
    assert "Disaster-recovery drill report · 2026Q4" in html
    assert "guard error-budget tripped" in html and "RTA 41.5s &gt; RTO 30s" in html
    assert "How the measures are defined" in html
    md = md_path.read_text()
    assert md.startswith("# DR drill report 2026Q4")
    row = next(line for line in md.splitlines() if line.startswith("| db_restore"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[:9] == ["db_restore", "pg", "3", "67%", "20.0s", "25.0s", "41.5s", "30.0s", "1"]
    assert "## Open findings" in md and "region_loss" in md.split("## Open findings")[1]


def test_empty_quarter(db: Path, tmp_path: Path) -> None:
    _, md_path = write_quarter_report(db, "2025Q1", tmp_path)
    md = md_path.read_text()
    assert "No drills ran this quarter." in md and "Every drill passed." in md

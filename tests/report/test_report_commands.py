"""``drillbook report``, ``trend`` and ``history import`` through the real ``drillbook`` entry point."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from report_fixtures import make_drill, make_journal, sample_run, synthetic_journals

from drillbook.cli import main as drillbook_main
from drillbook.history import record_runs, recorded_run_ids


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., int]:
    """``drillbook --reports-dir <tmp>/reports ARGS`` through the real entry point."""
    for var in (
        "DRILLBOOK_HISTORY",
        "GITHUB_STEP_SUMMARY",
        "DRILLBOOK_REPORTS_DIR",
        "DRILLBOOK_CONFIG",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)  # no drillbook.yaml here: the defaults apply

    def main(*argv: str) -> int:
        return drillbook_main(["--reports-dir", str(tmp_path / "reports"), *argv])

    return main


def _write_run(reports: Path, journal: dict) -> Path:
    run_dir = reports / journal["run_id"]
    run_dir.mkdir(parents=True)
    (run_dir / "journal.json").write_text(json.dumps(journal))
    latest = reports / "latest"
    if latest.is_symlink():
        latest.unlink()
    latest.symlink_to(run_dir.name)
    return run_dir


def test_report_latest_rerenders(
    cli: Callable[..., int], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = _write_run(tmp_path / "reports", sample_run())
    assert cli("report") == 0
    assert (run_dir / "report.html").is_file() and (run_dir / "summary.md").is_file()
    assert str(run_dir / "drills.csv") in capsys.readouterr().out


def test_report_from_history_when_folder_is_gone(cli: Callable[..., int], tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    record_runs(reports / "history.sqlite", [(make_journal(run_id="old-run"), "ci")])
    assert cli("report", "old-run") == 0
    assert "old-run" in (reports / "old-run" / "report.html").read_text()


def test_report_unknown_run_is_exit_2(
    cli: Callable[..., int], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli("report", "no-such-run") == 2
    err = capsys.readouterr().err
    assert err.startswith("drillbook: no-such-run: expected a run id") and "Traceback" not in err


def test_trend_after_two_runs(
    cli: Callable[..., int], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reports = tmp_path / "reports"
    _write_run(reports, make_journal(run_id="run-a", drills=[make_drill(rta=1.2)]))
    _write_run(reports, make_journal(run_id="run-b", drills=[make_drill(rta=1.6)]))
    assert cli("trend") == 0
    out = capsys.readouterr().out
    header = out.splitlines()[0]
    assert "RTA p50" in header and "RTA p90" in header and "MTTR" in header
    row = next(line for line in out.splitlines() if line.startswith("process_restart"))
    assert "2026Q4" in row and "1.40s" in row and "1.56s" in row  # mean/p50 1.4, p90 1.56
    assert (reports / "trend.html").read_text().count("<svg") >= 1
    assert recorded_run_ids(reports / "history.sqlite") == {"run-a", "run-b"}


def test_trend_fail_on_regression(cli: Callable[..., int], tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    _write_run(
        reports,
        make_journal(run_id="slow", drills=[make_drill(rta=45.0, rto=30.0, verdict="failed")]),
    )
    assert cli("trend") == 0
    assert cli("trend", "--fail-on-regression") == 1


def test_trend_scenario_and_since(
    cli: Callable[..., int], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "h.sqlite"
    record_runs(db, [(j, "syn") for j in synthetic_journals(400, 4)])
    assert (
        cli(
            "trend",
            "--history",
            str(db),
            "--scenario",
            "scenario_01",
            "--since",
            "2026Q3",
            "--quarters",
            "0",
            "--out",
            str(tmp_path / "t.html"),
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "scenario_01" in out and "scenario_02" not in out
    assert "2026Q3" in out and "2026Q2" not in out
    assert 'data-scenario="scenario_01"' in (tmp_path / "t.html").read_text()


def test_trend_bad_since_is_exit_2(
    cli: Callable[..., int], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record_runs(tmp_path / "reports" / "history.sqlite", [(make_journal(), "x")])
    assert cli("trend", "--since", "yesterday") == 2
    assert "--since: yesterday: expected a date" in capsys.readouterr().err


def test_trend_without_history_is_exit_2(cli: Callable[..., int]) -> None:
    assert cli("trend") == 2


def test_history_import(
    cli: Callable[..., int], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "artifact"
    src.mkdir()
    (src / "journal.json").write_text(json.dumps(make_journal(run_id="ci-1")))
    assert cli("history", "import", str(src / "journal.json")) == 0
    assert "imported 1 run(s), 0 already recorded" in capsys.readouterr().out
    assert cli("history", "import", str(src)) == 0
    assert "imported 0 run(s), 1 already recorded" in capsys.readouterr().out
    (tmp_path / "bad.json").write_text("not json")
    assert cli("history", "import", str(tmp_path / "bad.json")) == 2
    assert cli("history") == 2


def test_report_quarter(
    cli: Callable[..., int], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reports = tmp_path / "reports"
    _write_run(reports, sample_run())
    assert cli("report", "--quarter", "2026Q4") == 0
    out = capsys.readouterr().out.split()
    assert out == [str(reports / "quarterly-2026Q4.html"), str(reports / "quarterly-2026Q4.md")]
    assert "db_restore" in (reports / "quarterly-2026Q4.md").read_text()
    assert cli("report", "--quarter", "2026Q9") == 2


def test_report_by_path(cli: Callable[..., int], tmp_path: Path) -> None:
    run_dir = _write_run(tmp_path / "elsewhere", make_journal(run_id="copied"))
    assert cli("report", str(run_dir / "journal.json"), "--out", str(tmp_path / "out")) == 0
    assert "copied" in (tmp_path / "out" / "report.html").read_text()
    assert not (run_dir / "report.html").exists()

"""Reports say what the measures mean at their edges: an outage no probe saw is "not observed",
a lost write never reads as "0ms" or as within an RPO of 0, and a relapse is shown."""

from __future__ import annotations

from pathlib import Path

from report_fixtures import make_drill, make_journal

from drillbook.report import write_run_reports
from drillbook.report.views import summarize


def test_an_outage_no_probe_saw_reads_not_observed(tmp_path: Path) -> None:
    drill = make_drill("blip", verdict="failed", ttd=None, rta=None, rto=30.0)
    drill["measures"]["outage_observed"] = False
    assert summarize(drill).rta_text == "not observed"
    write_run_reports(tmp_path, make_journal(drills=[drill]), environ={})
    assert "not observed" in (tmp_path / "summary.md").read_text()
    assert "not observed" in (tmp_path / "report.html").read_text()


def test_a_lost_write_never_reads_as_nothing_lost(tmp_path: Path) -> None:
    drill = make_drill("backup_verify", verdict="failed", rpa=0.0003, rpo=0.0, lost_writes=1)
    summary = summarize(drill)
    assert summary.rpa_text == "<1ms"
    assert summary.rpa_ok is False  # RPO 0 allows no lost write
    write_run_reports(tmp_path, make_journal(drills=[drill]), environ={})
    assert "<1ms" in (tmp_path / "summary.md").read_text()


def test_a_relapse_and_the_lost_span_are_shown(tmp_path: Path) -> None:
    drill = make_drill("db_restore", verdict="failed", rpa=2.05, rpo=1.0, lost_writes=396)
    drill["measures"].update(relapse_s=12.5, relapse_probe="accounts")
    drill["measures"]["ledger"] = {
        "acknowledged": 518,
        "survived": 122,
        "lost_before_inject": 0,
        "oldest_lost_at": "2026-11-22T14:01:03.001Z",
        "newest_lost_at": "2026-11-22T14:01:05.050Z",
        "recovery_point": "2026-11-22T14:01:02.998Z",
        "detail": "",
    }
    write_run_reports(tmp_path, make_journal(drills=[drill]), environ={})
    html = (tmp_path / "report.html").read_text()
    assert "accounts failed again 12.5s after t_inject" in html
    assert "recovery point 2026-11-22T14:01:02.998Z" in html

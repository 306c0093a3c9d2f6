"""The per-run reports written from a journal: report.html, summary.md, drills.csv, junit props."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest
from report_fixtures import make_drill, make_journal, sample_run

from drillbook.report import junit_properties, write_run_reports
from drillbook.report.journal import inject_offset, load_journal
from drillbook.report.views import slow_steps


def test_writes_the_three_reports_and_html_is_self_contained(tmp_path: Path) -> None:
    paths = write_run_reports(tmp_path, sample_run(), environ={})
    assert [p.name for p in paths] == ["report.html", "summary.md", "drills.csv"]
    html = (tmp_path / "report.html").read_text()
    assert "<svg" in html
    assert "<script" not in html.lower()
    # No network: nothing is loaded from elsewhere (the svg namespace is an identifier, not a load).
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "<link" not in html.lower()
    for drill_id, verdict in (
        ("process_restart", "passed"),
        ("db_restore", "failed"),
        ("region_loss", "aborted"),
    ):
        assert f'data-drill="{drill_id}" data-verdict="{verdict}"' in html


def test_html_shows_measures_brackets_steps_and_definitions(tmp_path: Path) -> None:
    write_run_reports(tmp_path, sample_run(), environ={})
    html = (tmp_path / "report.html").read_text()
    assert "41.5s" in html and "30.0s" in html  # db_restore RTA against its RTO
    assert "41.0s–41.5s" in html  # the RTA bracket
    assert "120" in html and "2.40s" in html  # lost writes and RPA
    assert "restore base backup" in html and "SLOW" in html
    assert "RTA 41.5s &gt; RTO 30s" in html  # reasons, escaped
    assert "guard error-budget tripped" in html and "TRIPPED" in html
    assert "SIGKILL pg-primary (pid 4242)" in html  # what was injected where
    assert "How the measures are defined" in html
    assert "not recovered" in html  # region_loss has an RTO but no RTA
    assert 'class="step-slow"' in html  # the slow step stands out on the timeline too
    assert "first run of passing probes lasting stable_for" in html


def test_slow_step_is_the_one_that_dominates() -> None:
    drill = sample_run()["drills"][1]
    steps = {s.name: s for s in slow_steps(drill)}
    assert steps["restore base backup"].slow
    assert not steps["stop writers"].slow and not steps["start primary"].slow
    assert steps["restore base backup"].share == pytest.approx(31.0 / 38.7, rel=1e-3)


def test_autoescaping_keeps_journal_text_out_of_the_markup(tmp_path: Path) -> None:
    drill = make_drill("xss")
    drill["description"] = "<script>alert(1)</script>"
    drill["timeline"][2]["detail"] = '"><img src=x onerror=alert(1)>'
    write_run_reports(tmp_path, make_journal(drills=[drill]), environ={})
    html = (tmp_path / "report.html").read_text()
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img src=x" not in html


def test_sparse_journal_renders(tmp_path: Path) -> None:
    """A drill that errored before injecting has no fault, phases or measures: still a report."""
    drill = {
        "id": "broken",
        "verdict": "error",
        "fault": None,
        "measures": None,
        "reasons": ["steady state never held: http 503"],
    }
    journal = make_journal(drills=[drill], exit_status=4)
    write_run_reports(tmp_path, journal, environ={})
    html = (tmp_path / "report.html").read_text()
    assert 'data-verdict="error"' in html and "steady state never held" in html
    assert "error" in (tmp_path / "summary.md").read_text()


def test_summary_md_table_and_step_summary(tmp_path: Path) -> None:
    step = tmp_path / "step_summary.md"
    step.write_text("previous step\n")
    write_run_reports(tmp_path / "run", sample_run(), environ={"GITHUB_STEP_SUMMARY": str(step)})
    md = (tmp_path / "run" / "summary.md").read_text()
    header = next(line for line in md.splitlines() if line.startswith("| drill"))
    assert "RTA [bracket]" in header and "RPO" in header
    row = next(line for line in md.splitlines() if line.startswith("| db_restore"))
    assert "❌ failed" in row and "41.5s [41.0s–41.5s]" in row and "restore base backup" in row
    assert "**1 passed, 1 failed, 1 aborted**" in md
    assert "- **region_loss** (aborted): guard error-budget tripped" in md
    assert step.read_text() == "previous step\n" + md


def test_step_summary_untouched_when_unset(tmp_path: Path) -> None:
    paths = write_run_reports(tmp_path, sample_run(), environ={})
    assert len(paths) == 3 and not (tmp_path / "step_summary.md").exists()


def test_drills_csv_has_raw_seconds(tmp_path: Path) -> None:
    write_run_reports(tmp_path, sample_run(), environ={})
    with (tmp_path / "drills.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [r["drill"] for r in rows] == ["process_restart", "db_restore", "region_loss"]
    db = rows[1]
    assert float(db["rta_s"]) == 41.5 and float(db["rto_s"]) == 30.0
    assert float(db["rta_lo_s"]) == 41.0 and db["lost_writes"] == "120"
    assert rows[2]["rta_s"] == "" and rows[2]["verdict"] == "aborted"


def test_junit_properties() -> None:
    run = sample_run()
    props = dict(junit_properties(run["drills"][1]))
    assert props["drillbook.verdict"] == "failed"
    assert props["drillbook.rta_s"] == "41.5" and props["drillbook.rto_s"] == "30"
    assert props["drillbook.rta_within_rto"] == "false"
    assert props["drillbook.rpa_s"] == "2.4" and props["drillbook.lost_writes"] == "120"
    unrecovered = dict(junit_properties(run["drills"][2]))
    assert "drillbook.rta_s" not in unrecovered  # not measured: left out, not faked
    assert unrecovered["drillbook.verdict"] == "aborted"
    assert all(
        isinstance(k, str) and isinstance(v, str) for k, v in junit_properties(run["drills"][0])
    )


def test_inject_offset_relates_drill_clock_to_measures() -> None:
    drill = make_drill()
    assert inject_offset(drill) == pytest.approx(0.31)
    drill["timeline"] = [e for e in drill["timeline"] if e["kind"] != "inject"]
    assert inject_offset(drill) == pytest.approx(0.31)  # falls back to the inject phase's end


def test_load_journal_rejects_bad_files(tmp_path: Path) -> None:
    from drillbook.errors import ConfigError

    bad = tmp_path / "journal.json"
    bad.write_text('{"schema_version": 1,\n "run_id": }')
    with pytest.raises(ConfigError, match=r"journal.json:2: expected JSON"):
        load_journal(bad)
    bad.write_text('{"schema_version": 2, "run_id": "x", "drills": []}')
    with pytest.raises(ConfigError, match="schema_version: expected 1"):
        load_journal(tmp_path)


def test_summary_md_cells_cannot_break_the_table(tmp_path: Path) -> None:
    drill = make_drill("pipe")
    drill["steps"][0]["name"] = "restart | verify\nagain"
    write_run_reports(tmp_path, make_journal(drills=[drill]), environ={})
    md = (tmp_path / "summary.md").read_text()
    row = next(line for line in md.splitlines() if line.startswith("| pipe"))
    assert "restart \\| verify again" in row
    assert len(re.findall(r"(?<!\\)\|", row)) == 10  # 9 columns, unbroken

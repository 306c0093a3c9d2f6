"""The reports of a real drill: ``pytest drills/ -k process_restart`` then read what it wrote."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

from report_fixtures import make_journal

from drillbook.cli import main as drillbook_main
from drillbook.history import recorded_run_ids, trend
from drillbook.report import write_run_reports
from drillbook.report.journal import merge_probe_events

REPO = Path(__file__).resolve().parents[2]


def test_process_restart_leaves_readable_reports(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["GITHUB_STEP_SUMMARY"] = str(tmp_path / "step-summary.md")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "drills/",
            "-k",
            "process_restart",
            "-p",
            "no:cacheprovider",
            "--drill-reports",
            str(reports),
            "--junitxml",
            str(tmp_path / "junit.xml"),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    latest = reports / "latest"
    for name in ("journal.json", "report.html", "summary.md", "drills.csv"):
        assert (latest / name).is_file(), name
    journal = json.loads((latest / "journal.json").read_text())
    (drill,) = journal["drills"]
    html = (latest / "report.html").read_text()
    assert "<svg" in html and 'data-drill="process_restart" data-verdict="passed"' in html
    # Probe samples from the event log appear as marks: one per sample the measures counted.
    marks = html.count('class="probe-ok"') + html.count('class="probe-bad"')
    assert marks >= drill["measures"]["probe_samples"] > 0
    assert html.count('class="probe-bad"') >= 1  # the outage was seen
    with (latest / "drills.csv").open() as fh:
        (row,) = list(csv.DictReader(fh))
    assert float(row["rta_s"]) == drill["measures"]["rta_s"]
    assert "process_restart" in (tmp_path / "step-summary.md").read_text()
    assert "drillbook.rta_s" in (tmp_path / "junit.xml").read_text()
    # The plugin recorded the run; the trend reads it back.
    db = reports / "history.sqlite"
    assert recorded_run_ids(db) == {journal["run_id"]}
    (series,) = trend(db)
    assert (
        series.scenario == "process_restart" and series.latest_rta_s == drill["measures"]["rta_s"]
    )
    assert drillbook_main(["--reports-dir", str(reports), "trend", "--no-sync"]) == 0


def test_merge_probe_events_fills_the_timeline_from_the_event_log(tmp_path: Path) -> None:
    journal = make_journal()
    drill = journal["drills"][0]
    samples = [e for e in drill["timeline"] if e["kind"] == "probe"]
    drill["timeline"] = [e for e in drill["timeline"] if e["kind"] != "probe"]
    lines = [
        json.dumps({"seq": i, "run_id": journal["run_id"], "drill": drill["id"], **e})
        for i, e in enumerate(samples)
    ]
    lines.append(json.dumps({"seq": 99, "drill": "other", "kind": "probe", "offset_s": 1.0}))
    (tmp_path / "events.jsonl").write_text("\n".join(lines) + "\n{torn")
    merged = merge_probe_events(tmp_path, journal)
    got = [e for e in merged["drills"][0]["timeline"] if e["kind"] == "probe"]
    assert got == samples
    assert all(e["kind"] != "probe" for e in drill["timeline"])  # the input is left alone
    offsets = [e["offset_s"] for e in merged["drills"][0]["timeline"]]
    assert offsets == sorted(offsets)
    write_run_reports(tmp_path, journal, environ={})
    html = (tmp_path / "report.html").read_text()
    assert html.count('class="probe-bad"') == sum(1 for e in samples if not e["ok"])

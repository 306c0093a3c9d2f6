"""The documented CI command, run for real in a small project, and its exit codes.

The command is read from docs/ci.md (and must be the one both CI examples run), then executed in a
temporary project holding one real drill (process_restart against drillbook's local demo service).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "ci.md"


def _documented(marker: str) -> str:
    match = re.search(rf"<!-- {marker} -->\s*```bash\n(.+?)\n```", DOC.read_text(), re.S)
    assert match, f"docs/ci.md has no {marker} block"
    return match.group(1).strip()


def _project(tmp_path: Path, rto: str = "15s", config_extra: str = "") -> Path:
    """drillbook.yaml with the demo service only, the process_restart scenario, the drill suite."""
    project = tmp_path / "project"
    (project / "scenarios").mkdir(parents=True)
    (project / "drills").mkdir()
    targets = yaml.safe_load((REPO / "drillbook.yaml").read_text())["targets"]
    config = {
        "environment": "sandbox",
        "safety": {"max_targets": 1, "max_percent": 100, "require_opt_in": True},
        "targets": {"demo-service": targets["demo-service"]},
    }
    (project / "drillbook.yaml").write_text(yaml.safe_dump(config) + config_extra)
    scenario = (REPO / "scenarios" / "process_restart.yaml").read_text()
    scenario = re.sub(r"rto: \S+?,", f"rto: {rto},", scenario)
    (project / "scenarios" / "process_restart.yaml").write_text(scenario)
    shutil.copy(REPO / "drills" / "test_scenarios.py", project / "drills" / "test_scenarios.py")
    return project


def _run(command: str, project: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "DRILLBOOK_"))}
    env["GITHUB_STEP_SUMMARY"] = str(tmp_path / "step-summary.md")
    return subprocess.run(
        ["bash", "-c", command],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_ci_examples_run_the_documented_command() -> None:
    command, trend = _documented("ci-command"), _documented("ci-trend")
    for example in ("github-actions.yml", "gitlab-ci.yml"):
        text = (REPO / "deploy" / "ci" / example).read_text()
        yaml.safe_load(text)
        assert command in text and trend in text, example
    gha = yaml.safe_load((REPO / "deploy" / "ci" / "github-actions.yml").read_text())
    assert "schedule" in gha[True]  # YAML 1.1 reads the bare key `on` as True
    uploads = [
        s
        for s in gha["jobs"]["drills"]["steps"]
        if str(s.get("uses", "")).startswith("actions/upload-artifact")
    ]
    assert uploads and uploads[0]["if"] == "always()" and "reports/" in uploads[0]["with"]["path"]


def test_documented_ci_command_passes_and_leaves_reports(tmp_path: Path) -> None:
    project = _project(tmp_path)
    done = _run(_documented("ci-command"), project, tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    latest = project / "reports" / "latest"
    for name in ("journal.json", "events.jsonl", "report.html", "summary.md", "drills.csv"):
        assert (latest / name).is_file(), name
    cases = ET.parse(project / "reports" / "junit.xml").getroot().iter("testcase")
    props = {p.get("name"): p.get("value") for case in cases for p in case.iter("property")}
    assert props["drillbook.verdict"] == "passed" and float(props["drillbook.rto_s"]) == 15.0
    assert "process_restart" in (tmp_path / "step-summary.md").read_text()
    trend = _run(_documented("ci-trend"), project, tmp_path)
    assert trend.returncode == 0, trend.stderr
    assert "process_restart" in trend.stdout and "RTA p90" in trend.stdout
    assert (project / "reports" / "trend.html").is_file()


def test_missed_objective_exits_1(tmp_path: Path) -> None:
    # The demo service restarts after a 1s delay: an RTO of 100ms cannot be met.
    project = _project(tmp_path, rto="100ms")
    done = _run(_documented("ci-command"), project, tmp_path)
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-2000:]
    summary = (project / "reports" / "latest" / "summary.md").read_text()
    assert "❌ failed" in summary


def test_config_error_exits_2(tmp_path: Path) -> None:
    project = _project(tmp_path)
    text = (project / "drillbook.yaml").read_text()
    text = re.sub(r"safety:\n(  .*\n)+", "", text) + "safety: {max_targets: many}\n"
    (project / "drillbook.yaml").write_text(text)
    done = _run(_documented("ci-command"), project, tmp_path)
    assert done.returncode == 2, done.stdout[-3000:] + done.stderr[-2000:]
    assert "max_targets" in done.stdout + done.stderr and "Traceback" not in done.stderr
    assert not (project / "reports" / "latest").exists()  # nothing ran

"""``drillbook runbook import``: both runbook shapes give scenarios that validate and run against
the sandbox (real processes; real PostgreSQL), bad input writes nothing, and a runbook changed
since its import is flagged at the next drill."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import yaml

from drillbook.plugin import needs_backend

from .conftest import drillbook, journal


def imported(work: Path, name: str, *args: str) -> dict:  # type: ignore[type-arg]
    out = drillbook(work, "runbook", "import", f"docs/runbooks/{name}.md", *args)
    assert out.returncode == 0, out.stderr
    data: dict = yaml.safe_load((work / "scenarios" / f"{name}.yaml").read_text())  # type: ignore[type-arg]
    return data


def test_incident_runbook_imports_validates_and_runs(work: Path) -> None:
    data = imported(
        work, "demo_service_down", "--fault", "process.kill", "--target", "demo-service"
    )
    assert data["runbook"] == "docs/runbooks/demo_service_down.md"
    text = (work / "docs/runbooks/demo_service_down.md").read_bytes()
    assert data["runbook_import"]["sha256"] == hashlib.sha256(text).hexdigest()
    assert data["objectives"] == {"severity": "P2", "rto": "900s"}
    kinds = [(r["kind"], r["name"].split(".")[0]) for r in data["recovery"]]
    assert kinds == [
        ("scripted", "1"),
        ("manual", "2"),
        ("scripted", "3"),
        ("manual", "4"),
        ("manual", "5"),
    ]
    # marked blocks run; an unmarked block stays in the person's instruction
    assert data["recovery"][0]["command"] == ["sh", "-ec", "date -u +%Y-%m-%dT%H:%M:%SZ"]
    assert "sudo systemctl stop demo-service" in data["recovery"][3]["instruction"]
    assert drillbook(work, "validate", "scenarios/demo_service_down.yaml").returncode == 0

    run = drillbook(work, "run", "scenarios/demo_service_down.yaml", "--answer", "*=done")
    assert run.returncode == 0, run.stdout + run.stderr
    drill = journal(work)["drills"][0]
    assert drill["verdict"] == "passed"
    assert [s["kind"] for s in drill["steps"]] == [r["kind"] for r in data["recovery"]]
    assert all(s["ok"] for s in drill["steps"])
    summary = (work / "reports" / "latest" / "summary.md").read_text()
    assert "### Runbook: demo_service_down" in summary
    assert "date -u +%Y-%m-%dT%H:%M:%SZ (exit 0)" in summary


def test_procedure_runbook_imports_and_runs_against_the_postgres_sandbox(work: Path) -> None:
    from drillbook.backends.postgres import _available

    needs_backend("postgres", _available({}))
    out = drillbook(
        work, "runbook", "import", "docs/runbooks/pg_backup_check.md", "--target", "pg-primary"
    )
    assert out.returncode == 0, out.stderr
    # line by line: pg_isready became a probe on the target; psql could not (not marked safe)
    assert "line 57: `pg_isready -h 127.0.0.1 -p 5432` -> postgres.ready" in out.stdout
    assert "line 63: verification `psql" in out.stdout
    data = yaml.safe_load((work / "scenarios/pg_backup_check.yaml").read_text())
    assert data["probes"] == [
        {
            "name": "verify: pg_isready -h 127.0.0.1 -p 5432",
            "type": "postgres.ready",
            "target": "pg-primary",
        }
    ]
    assert len(data["runbook_import"]["rollback"]) == 2
    assert "fault" not in data

    # The ledger writes for longer than the RPO before a drill starts (else an older loss could
    # not be seen): the runbook's 5 min RPO is shortened here so the run stays short.
    assert data["objectives"]["rpo"] in ("5m", "5m00s", 300, "300s")
    path = work / "scenarios/pg_backup_check.yaml"
    path.write_text(path.read_text().replace(f"rpo: {data['objectives']['rpo']}", "rpo: 3s"))
    run = drillbook(work, "run", "scenarios/pg_backup_check.yaml", "--answer", "*=done")
    assert run.returncode == 0, run.stdout + run.stderr
    drill = journal(work)["drills"][0]
    assert drill["verdict"] == "passed"
    assert [s["kind"] for s in drill["steps"]] == ["scripted", "manual", "manual", "scripted"]
    html = (work / "reports" / "latest" / "report.html").read_text()
    assert "Rollback steps (from the runbook, not run by the drill)" in html
    assert "Delete the restored data directory" in html


def test_unknown_shape_imports_what_it_can(work: Path) -> None:
    out = drillbook(work, "runbook", "import", "docs/runbooks/queue_backlog.md")
    assert out.returncode == 0, out.stderr
    assert "used the steps of 'What to do'" in out.stdout
    assert "text after the steps of 'What to do': not a step" in out.stdout
    assert "no severity line" in out.stdout
    data = yaml.safe_load((work / "scenarios/queue_backlog.yaml").read_text())
    assert [r["name"] for r in data["recovery"]] == [
        "1. Look at the consumer group's lag",
        "2. Scale the consumers up to 6",
        "3. Watch the lag fall for ten minutes",
    ]
    assert drillbook(work, "validate", "scenarios/queue_backlog.yaml").returncode == 0


def test_bad_input_writes_nothing(work: Path) -> None:
    scenario = work / "scenarios" / "demo_service_down.yaml"
    out = drillbook(
        work,
        "runbook",
        "import",
        "docs/runbooks/demo_service_down.md",
        "--fault",
        "process.kill",
        "--target",
        "nope",
    )
    assert out.returncode == 2 and "--target 'nope' is not a target" in out.stderr
    assert not scenario.exists()
    out = drillbook(
        work,
        "runbook",
        "import",
        "docs/runbooks/demo_service_down.md",
        "--fault",
        "no.such",
        "--target",
        "demo-service",
    )
    assert out.returncode == 2 and "unknown fault" in out.stderr
    assert not scenario.exists()
    scenario.write_text("id: mine\n")
    out = drillbook(work, "runbook", "import", "docs/runbooks/demo_service_down.md")
    assert out.returncode == 2 and "exists: give --force" in out.stderr
    assert scenario.read_text() == "id: mine\n"
    assert list((work / "scenarios").iterdir()) == [scenario]  # no temporary file left


def test_changed_runbook_is_flagged_in_terminal_journal_and_report(work: Path) -> None:
    imported(work, "demo_service_down", "--fault", "process.kill", "--target", "demo-service")
    book = work / "docs/runbooks/demo_service_down.md"
    book.write_text(book.read_text().replace("note the time", "note the time in UTC"))
    run = drillbook(work, "run", "scenarios/demo_service_down.yaml", "--answer", "*=done")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "WARNING demo_service_down: runbook docs/runbooks/demo_service_down.md changed" in (
        run.stderr
    )
    drill = journal(work)["drills"][0]
    warnings = [e for e in drill["timeline"] if e["kind"] == "warning"]
    assert warnings and warnings[0]["what"] == "runbook_changed"
    assert "changed since this scenario was imported" in drill["runbook_import"]["warning"]
    html = (work / "reports" / "latest" / "report.html").read_text()
    assert "changed since this scenario was imported" in html
    # re-imported, the warning is gone
    imported(
        work, "demo_service_down", "--fault", "process.kill", "--target", "demo-service", "--force"
    )
    run = drillbook(work, "run", "scenarios/demo_service_down.yaml", "--answer", "*=done")
    assert run.returncode == 0 and "WARNING" not in run.stderr
    # two drills of the same runbook: each step's duration across them
    trend = drillbook(work, "runbook", "trend", "docs/runbooks/demo_service_down.md")
    assert trend.returncode == 0, trend.stderr
    rows = {
        cells[0]: cells[1]
        for cells in (re.split(r"\s{2,}", ln) for ln in trend.stdout.splitlines())
        if cells[0][:2] in ("1.", "2.", "3.", "4.", "5.")
    }
    # steps 2-5 kept their names: two drills each; step 1 was renamed by the edit
    assert sorted(rows.values()) == ["1", "1", "2", "2", "2", "2"], trend.stdout
    assert rows["1. Announce the incident in #incidents and note the time in UTC"] == "1"
    trend = drillbook(work, "trend")
    assert trend.returncode == 0, trend.stderr
    assert "Runbook steps (duration per drill, oldest first):" in trend.stdout
    assert "1. Announce the incident in #incidents and note the time" in trend.stdout


def test_a_safe_command_that_exits_non_zero_fails_the_drill_and_is_listed(work: Path) -> None:
    from drillbook.evidence.keys import generate_key, private_key_pem

    imported(work, "cache_flush", "--fault", "process.kill", "--target", "demo-service")
    (work / "signing.key").write_bytes(private_key_pem(generate_key()))
    env = {"DRILLBOOK_SIGNING_KEY_FILE": str(work / "signing.key"), "DRILLBOOK_SIGNING_KEY": ""}
    run = drillbook(
        work, "run", "--evidence", "scenarios/cache_flush.yaml", "--answer", "*=done", env=env
    )
    assert run.returncode == 1, run.stdout + run.stderr
    drill = journal(work)["drills"][0]
    assert drill["verdict"] == "failed"
    assert drill["severity"] == "P1"  # "Severity: high"
    assert drill["steps"][0]["detail"].startswith("command exited 1")
    summary = (work / "reports" / "latest" / "summary.md").read_text()
    assert "#### Runbook changes to make" in summary
    assert "- [ ] Command of step **1. Put the cache in maintenance mode" in summary
    assert "exited 1: `test -f /srv/cache/MAINTENANCE`" in summary
    # the after-action report in the evidence bundle has the same section
    (bundle,) = [p for p in (work / "reports" / "evidence").iterdir() if p.is_dir()]
    aar = json.loads((bundle / "after-action.json").read_text())
    (section,) = aar["runbook"]
    assert section["runbook"] == "docs/runbooks/cache_flush.md"
    assert section["nonzero_commands"] == [
        {
            "step": section["steps"][0]["name"],
            "command": "test -f /srv/cache/MAINTENANCE",
            "exit": 1,
        }
    ]
    assert "exited 1" in section["changes_markdown"]
    assert "11. Runbook steps" in (bundle / "after-action.html").read_text()

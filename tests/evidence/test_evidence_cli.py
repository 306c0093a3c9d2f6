"""`drillbook evidence ...` through argparse, as cli.py will mount it."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from evidence_fixtures import CANARIES, CANARY_CONFIG, MakeRun

from drillbook.evidence import commands


def run_cli(argv: list[str], reports_dir: Path, config: Path | None = None) -> int:
    """Parse like cli.py (global --config/--reports-dir) and dispatch to the handler."""
    parser = argparse.ArgumentParser(prog="drillbook")
    parser.add_argument("--config", default=str(config) if config else "drillbook.yaml")
    parser.add_argument("--reports-dir", default=str(reports_dir))
    commands.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    code: int = args.handler(args)
    return code


@pytest.fixture
def key_file(tmp_path: Path, reports_dir: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    path = tmp_path / "keys" / "signing.key"
    assert run_cli(["evidence", "keygen", "--out", str(path)], reports_dir) == 0
    out = capsys.readouterr().out
    assert "keyid:" in out and str(path) in out
    assert path.stat().st_mode & 0o777 == 0o600
    return path


def test_bundle_then_verify_exits_zero(
    make_run: MakeRun,
    reports_dir: Path,
    key_file: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    make_run()
    config = tmp_path / "drillbook.yaml"
    import yaml

    config.write_text(yaml.safe_dump(CANARY_CONFIG))
    assert run_cli(["evidence", "bundle", "--key", str(key_file)], reports_dir, config) == 0
    out = capsys.readouterr().out
    folder = Path(out.split("bundle: ")[1].splitlines()[0])
    archive = Path(out.split("archive: ")[1].splitlines()[0])
    env = json.loads((folder / "environment.json").read_text())
    assert env["config"]["targets"]["pg-primary"]["backend"] == "postgres"
    for path in [*folder.rglob("*"), archive]:
        if path.is_file():
            for canary in CANARIES:
                assert canary.encode() not in path.read_bytes(), (canary, path)
    pub = key_file.with_name("signing.key.pub")
    assert run_cli(["evidence", "verify", str(folder), "--public-key", str(pub)], reports_dir) == 0
    assert "verified with a pinned key" in capsys.readouterr().out
    assert run_cli(["evidence", "verify", str(archive)], reports_dir) == 0


def test_verify_names_the_flipped_byte(
    make_run: MakeRun, reports_dir: Path, key_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_run()
    assert run_cli(["evidence", "bundle", "latest", "--key", str(key_file)], reports_dir) == 0
    folder = Path(capsys.readouterr().out.split("bundle: ")[1].splitlines()[0])
    report = folder / "run" / "report.md"
    data = bytearray(report.read_bytes())
    data[3] ^= 0x20
    report.write_bytes(bytes(data))
    assert run_cli(["evidence", "verify", str(folder)], reports_dir) == 1
    out = capsys.readouterr().out
    assert out.startswith(f"FAILED {folder}")
    assert "run/report.md: sha256 expected" in out and ", actual " in out
    assert run_cli(["evidence", "verify", "--json", str(folder)], reports_dir) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] is False and doc["bundles"][0]["problems"][0].startswith("run/report.md:")


def test_sign_off_keeps_bundle_valid(
    make_run: MakeRun, reports_dir: Path, key_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_run()
    run_cli(["evidence", "bundle", "--key", str(key_file)], reports_dir)
    archive = Path(capsys.readouterr().out.split("archive: ")[1].splitlines()[0])
    argv = [
        "evidence",
        "sign-off",
        str(archive),
        "--name",
        "Ada",
        "--role",
        "drill lead",
        "--key",
        str(key_file),
    ]
    assert run_cli(argv, reports_dir) == 0
    capsys.readouterr()
    assert run_cli(["evidence", "verify", str(archive)], reports_dir) == 0
    assert "sign-off: Ada (drill lead)" in capsys.readouterr().out


def test_bad_input_exits_two_with_one_line(
    make_run: MakeRun, reports_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_run()
    assert run_cli(["evidence", "bundle"], reports_dir) == 2  # no key anywhere
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "no signing key" in err
    assert run_cli(["evidence", "bundle", "no-such-run", "--key", "x"], reports_dir) == 2
    assert "no such run folder" in capsys.readouterr().err
    assert run_cli(["evidence", "keygen", "--out", str(reports_dir / "k")], reports_dir) == 0
    assert run_cli(["evidence", "keygen", "--out", str(reports_dir / "k")], reports_dir) == 2
    assert "exists" in capsys.readouterr().err


def test_controls_prints_coverage(
    make_run: MakeRun, reports_dir: Path, key_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_run("old-run", controls=["DORA-11"], started=datetime(2025, 6, 1, tzinfo=UTC))
    make_run(
        "new-run",
        controls=["SOC2-A1.3", "ISO27001-A.8.13"],
        started=datetime(2026, 10, 1, tzinfo=UTC),
    )
    make_run(
        "unbundled",
        controls=["PCI-12.10.2", "MADE-UP-1"],
        started=datetime(2026, 11, 1, tzinfo=UTC),
    )
    assert run_cli(["evidence", "bundle", "old-run", "--key", str(key_file)], reports_dir) == 0
    assert run_cli(["evidence", "bundle", "new-run", "--key", str(key_file)], reports_dir) == 0
    capsys.readouterr()
    assert run_cli(["evidence", "controls", "--at", "2026-11-22T00:00:00Z"], reports_dir) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line for line in out.splitlines() if line and line[0] in "SIDNHP"}
    assert "2026-10-01" in rows["SOC2-A1.3"] and " ok " in rows["SOC2-A1.3"]
    assert "bundled" in rows["SOC2-A1.3"]
    # Quarterly backup tests: the October test is due again in January.
    assert "2027-01-01" in rows["ISO27001-A.8.13"]
    assert "DUE" in rows["DORA-11"] and "2025-06-01" in rows["DORA-11"]
    assert "NOT BUNDLED" in rows["PCI-12.10.2"]
    assert "never" in rows["NIST-CP-4"] and "NEVER" in rows["NIST-CP-4"]
    assert "not in the catalog: MADE-UP-1" in out
    assert "3/14 controls have current evidence as of 2026-11-22" in out


def test_through_drillbook_cli_main(
    make_run: MakeRun,
    reports_dir: Path,
    key_file: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Must-show: bundle then verify exits 0; one flipped byte exits 1; controls prints coverage."""
    from drillbook import cli

    monkeypatch.chdir(tmp_path)
    make_run()
    common = ["--reports-dir", str(reports_dir), "evidence"]
    assert cli.main([*common, "bundle", "--key", str(key_file)]) == 0
    folder = Path(capsys.readouterr().out.split("bundle: ")[1].splitlines()[0])
    assert cli.main([*common, "verify", str(folder)]) == 0
    journal = folder / "run" / "journal.json"
    data = bytearray(journal.read_bytes())
    data[10] ^= 0x01
    journal.write_bytes(bytes(data))
    capsys.readouterr()
    assert cli.main([*common, "verify", str(folder)]) == 1
    assert "run/journal.json: sha256 expected" in capsys.readouterr().out
    assert cli.main([*common, "controls"]) == 0
    assert "SOC2-A1.3" in capsys.readouterr().out


def test_controls_counts_runs_only_in_the_history(
    make_run: MakeRun, reports_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A pruned run folder still counts as a (not bundled) test if the history recorded it."""
    import shutil

    from drillbook import history

    run_dir = make_run("pruned", controls=["NIST-CP-4"], started=datetime(2026, 9, 1, tzinfo=UTC))
    journal = json.loads((run_dir / "journal.json").read_text())
    assert history.record_run(reports_dir / "history.sqlite", journal, source="test")
    shutil.rmtree(run_dir)
    (reports_dir / "latest").unlink()
    assert run_cli(["evidence", "controls", "--at", "2026-11-22T00:00:00Z"], reports_dir) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("NIST-CP-4"))
    assert "2026-09-01" in row and "NOT BUNDLED" in row and " ok " in row


def _git_init(path: Path) -> None:
    import subprocess

    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "init", "-q", str(path)], check=True, capture_output=True)


def test_new_user_flow_keygen_then_bundle_signs(
    make_run: MakeRun,
    reports_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """As a new user in a project repo: bundle says there is no key and how to make one; keygen
    makes it where bundle looks, outside the repo; bundle then signs with it."""
    import subprocess

    project = tmp_path / "project"
    _git_init(project)
    monkeypatch.chdir(project)
    make_run()
    assert run_cli(["evidence", "bundle"], reports_dir) == 2
    err = capsys.readouterr().err
    assert "no signing key" in err and "drillbook evidence keygen" in err, err
    assert run_cli(["evidence", "keygen"], reports_dir) == 0
    key = tmp_path / "xdg-config" / "drillbook" / "signing.key"
    assert key.is_file() and key.stat().st_mode & 0o777 == 0o600
    status = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=project,
        capture_output=True,
        text=True,
        check=True,
    )
    assert status.stdout == "", "keygen wrote into the repository"
    capsys.readouterr()
    assert run_cli(["evidence", "bundle"], reports_dir) == 0
    folder = Path(capsys.readouterr().out.split("bundle: ")[1].splitlines()[0])
    pub = key.with_name("signing.key.pub")
    assert run_cli(["evidence", "verify", str(folder), "--public-key", str(pub)], reports_dir) == 0
    assert "NOT AUTHENTICATED" not in capsys.readouterr().out


def test_keygen_refuses_a_path_git_would_commit(
    reports_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = tmp_path / "project"
    _git_init(project)
    target = project / "drillbook-signing.key"
    assert run_cli(["evidence", "keygen", "--out", str(target)], reports_dir) == 2
    assert "git" in capsys.readouterr().err and not target.exists()
    (project / ".gitignore").write_text("*.key\n*.key.pub\n")
    assert run_cli(["evidence", "keygen", "--out", str(target)], reports_dir) == 0


def test_verify_without_a_pinned_key_warns_and_trust_record_pins(
    make_run: MakeRun,
    reports_dir: Path,
    key_file: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    make_run()
    assert run_cli(["evidence", "bundle", "--key", str(key_file)], reports_dir) == 0
    folder = Path(capsys.readouterr().out.split("bundle: ")[1].splitlines()[0])
    assert run_cli(["evidence", "verify", str(folder)], reports_dir) == 0
    out, err = capsys.readouterr()
    assert "NOT AUTHENTICATED" in out and "AUTHENTICITY NOT CHECKED" in err
    record = tmp_path / "audit" / "trust.json"
    assert run_cli(["evidence", "verify", str(folder), "--trust", str(record)], reports_dir) == 0
    assert "trust on first use" in capsys.readouterr().out
    doc = json.loads(record.read_text())
    assert len(doc["keys"]) == 1 and len(doc["bundles"]) == 1
    assert run_cli(["evidence", "verify", str(folder), "--trust", str(record)], reports_dir) == 0
    assert "NOT AUTHENTICATED" not in capsys.readouterr().out

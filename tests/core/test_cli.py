"""The drillbook command: exit codes, rollback with nothing pending, third-party backends."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from drillbook.cli import (
    EXIT_ABORTED,
    EXIT_CONFIG,
    EXIT_ERROR,
    EXIT_FAILED,
    EXIT_NO_DRILLS,
    EXIT_OK,
    exit_code_for,
    main,
)


@pytest.mark.parametrize(
    ("verdicts", "pytest_code", "expected"),
    [
        (["passed", "passed"], 0, EXIT_OK),
        (["passed", "failed"], 1, EXIT_FAILED),
        (["failed", "error"], 1, EXIT_ERROR),
        (["passed", "aborted"], 2, EXIT_ABORTED),
        ([], 4, EXIT_CONFIG),
        ([], 5, EXIT_NO_DRILLS),
    ],
)
def test_exit_codes_from_verdicts(verdicts: list[str], pytest_code: int, expected: int) -> None:
    journal = (
        {"drills": [{"verdict": v} for v in verdicts]} if verdicts or pytest_code != 5 else None
    )
    assert exit_code_for(journal, pytest_code) == expected


def test_bad_arguments_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["validate", "--no-such-flag"])
    assert info.value.code == EXIT_CONFIG
    assert "unrecognized arguments" in capsys.readouterr().err


def test_rollback_with_nothing_pending(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "drillbook.yaml").write_text("environment: test\n")
    monkeypatch.chdir(tmp_path)
    assert main(["rollback"]) == EXIT_OK
    assert "nothing pending" in capsys.readouterr().out


def test_run_passes_the_main_job_through_pytest(tmp_path: Path) -> None:
    (tmp_path / "drillbook.yaml").write_text(
        "environment: test\ndefaults: {probe_interval: 50ms, stable_for: 200ms}\ntargets:\n"
        "  svc: {backend: local, command: ['{python}', '-m', 'drillbook.backends.local.demo_service', '--port', '{port}'],"
        " port: auto, restart: always, restart_delay: 200ms}\n"
    )
    (tmp_path / "scenarios").mkdir()
    (tmp_path / "scenarios" / "k.yaml").write_text(
        "id: kill_it\nobjectives: {rto: 20s}\nfault: {type: process.kill, target: svc}\n"
        "probes: [{name: h, type: http, target: svc}]\nrecovery: [{kind: automatic}]\n"
    )
    (tmp_path / "drills").mkdir()
    (tmp_path / "drills" / "test_scenarios.py").write_text(
        "def test_scenario(drill_scenario, drill):\n    drill.run(drill_scenario)\n"
    )
    out = subprocess.run(
        [sys.executable, "-m", "drillbook.cli", "run", "-k", "kill_it"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == EXIT_OK, out.stdout + out.stderr
    assert "kill_it" in out.stdout and "PASSED" in out.stdout
    (tmp_path / "scenarios" / "k.yaml").write_text(
        (tmp_path / "scenarios" / "k.yaml").read_text().replace("rto: 20s", "rto: 1ms")
    )
    out = subprocess.run(
        [sys.executable, "-m", "drillbook.cli", "run", "--", "-p", "no:cacheprovider", "-rf"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == EXIT_FAILED, out.stdout + out.stderr
    assert "short test summary info" in out.stdout  # -rf reached pytest


def test_a_third_party_backend_registers_through_the_entry_point_group(tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "acme_drills-1.0.dist-info").mkdir(parents=True)
    (site / "acme_drills-1.0.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: acme-drills\nVersion: 1.0\n"
    )
    (site / "acme_drills-1.0.dist-info" / "entry_points.txt").write_text(
        "[drillbook.backends]\nacme = acme_drills:register\n"
    )
    (site / "acme_drills.py").write_text(
        textwrap.dedent(
            """
            from drillbook.backends.base import Fault

            class Meteor(Fault):
                def inject(self): pass
                def verify_injected(self): return True
                def revert(self): pass

            def register(registry):
                registry.add_backend("acme", lambda settings: None)
                registry.add_fault("acme.meteor", "acme", Meteor, help="a meteor strike")
            """
        )
    )
    env = {**os.environ, "PYTHONPATH": f"{site}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    (tmp_path / "drillbook.yaml").write_text("environment: test\n")
    out = subprocess.run(
        [sys.executable, "-m", "drillbook.cli", "list", "-v"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "acme.meteor" in out.stdout


def test_core_commands_leave_the_feature_modules_unimported(tmp_path: Path) -> None:
    # A drill's start-up should not pay for the evidence signer's or the sandbox's imports.
    (tmp_path / "drillbook.yaml").write_text("environment: test\n")
    code = (
        "import sys; from drillbook.cli import main; rc = main(['validate', '-q']); "
        "print(rc, sorted(m for m in sys.modules if m.endswith('.commands')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert out.stdout.strip() == "0 []", out.stdout + out.stderr


def test_help_and_feature_subcommands_still_load_the_features(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    assert all(name in text for name in ("run", "evidence", "sandbox", "trend", "history"))
    with pytest.raises(SystemExit) as info:
        main(["--config", "x.yaml", "evidence", "--help"])
    assert info.value.code == 0
    assert "verify" in capsys.readouterr().out


def test_a_run_that_drilled_nothing_exits_5_not_0(tmp_path: Path) -> None:
    """A scheduled ``drillbook run drills/ -k ...`` whose selection matched nothing must not
    look like a run that passed (pytest's own 5, carried through)."""
    (tmp_path / "drillbook.yaml").write_text("environment: test\ntargets: {}\n")
    (tmp_path / "drills").mkdir()
    (tmp_path / "drills" / "test_one.py").write_text("def test_one():\n    pass\n")
    run = subprocess.run(
        [sys.executable, "-m", "drillbook.cli", "run", "drills/", "-k", "no_such_drill"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == EXIT_NO_DRILLS, run.stdout + run.stderr

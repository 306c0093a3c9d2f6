"""Production guard: every way of pointing a destructive fault at production is refused, with
nothing touched, unless the file says ``allow_production: true`` AND the command line says
``--drill-allow-production``. Blast-radius caps refuse over-wide selections the same way.

The victim is a real process (SIGSTOP would freeze it); "nothing touched" means it is still
running, and no intent was ever written.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from drillbook.config import Overrides, load_config
from drillbook.engine import Drill
from drillbook.model import FaultSpec, ProbeSpec

REPO = Path(__file__).resolve().parents[2]


def _state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as fh:
        return fh.read().rsplit(") ", 1)[1][:1]


@pytest.fixture
def victims(tmp_path: Path) -> Iterator[list[int]]:
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import time; time.sleep(600)",
                f"drillbook-guard-{tmp_path.name}",
            ]
        )
        for _ in range(3)
    ]
    (tmp_path / "victim.pid").write_text(str(procs[0].pid))
    try:
        yield [p.pid for p in procs]
    finally:
        for p in procs:
            os.kill(p.pid, signal.SIGCONT)
            p.kill()
            p.wait()


def _write_config(root: Path, head: str) -> Path:
    path = root / "drillbook.yaml"
    path.write_text(
        head
        + textwrap.dedent(
            f"""\
            safety: {{max_targets: 1, max_percent: 50}}
            targets:
              victim: {{backend: local, pid_file: victim.pid}}
              herd: {{backend: local, match: "drillbook-guard-{root.name}"}}
            """
        )
    )
    return path


def _attempt(
    root: Path,
    head: str,
    *,
    env_name: str | None = None,
    cli_allow: bool = False,
    environ: dict[str, str] | None = None,
    target: str = "victim",
) -> tuple[str, list[str]]:
    path = _write_config(root, head)
    cfg = load_config(
        Overrides(config_path=path, environment=env_name, allow_production=cli_allow),
        workdir=root,
        environ=environ or {},
    )
    drill = Drill("guard", cfg)
    try:
        drill.steady_state(ProbeSpec("command", "alive", {"command": ["true"]}))
        drill.inject(FaultSpec("process.stop", {}, (target,)))
        result = drill.finish()
    except BaseException as exc:
        result = drill.finish(exc)
    return result.verdict.value, result.reasons


def _untouched(root: Path, pids: list[int]) -> None:
    for pid in pids:
        assert _state(pid) in ("S", "R"), f"pid {pid} was touched: state {_state(pid)}"
    ledger = root / ".drillbook" / "intents.jsonl"
    assert not ledger.exists(), ledger.read_text()


REFUSED = [
    ("file_production", "environment: production\n", {}),
    ("file_prod", "environment: prod\n", {}),
    ("file_prd", "environment: prd\n", {}),
    ("file_live", "environment: live\n", {}),
    ("file_eu_production", "environment: eu-production\n", {}),
    ("file_Production_caps", "environment: Production\n", {}),
    ("file_prod_numbered", "environment: prod2\n", {}),
    ("file_flag", "environment: staging\nproduction: true\n", {}),
    ("cli_env", "environment: sandbox\n", {"env_name": "production"}),
    ("cli_env_live", "environment: staging\n", {"env_name": "us-live"}),
    ("env_var", "environment: sandbox\n", {"environ": {"DRILLBOOK_ENVIRONMENT": "production"}}),
    ("env_var_prod", "environment: sandbox\n", {"environ": {"DRILLBOOK_ENVIRONMENT": "prod_eu"}}),
    ("file_consent_only", "environment: production\nallow_production: true\n", {}),
    ("cli_consent_only", "environment: production\n", {"cli_allow": True}),
    ("flag_cli_consent_only", "environment: staging\nproduction: true\n", {"cli_allow": True}),
    (
        "env_var_file_consent_only",
        "environment: sandbox\nallow_production: true\n",
        {"environ": {"DRILLBOOK_ENVIRONMENT": "production"}},
    ),
    (
        "cli_env_cli_consent_only",
        "environment: sandbox\n",
        {"env_name": "prod", "cli_allow": True},
    ),
]


@pytest.mark.parametrize(("name", "head", "kw"), REFUSED, ids=[r[0] for r in REFUSED])
def test_production_refused_nothing_touched(
    tmp_path: Path, victims: list[int], name: str, head: str, kw: dict[str, object]
) -> None:
    verdict, reasons = _attempt(tmp_path, head, **kw)  # type: ignore[arg-type]
    assert verdict == "error", (verdict, reasons)
    assert "refused" in reasons[0] and "production" in reasons[0], reasons
    _untouched(tmp_path, victims)


def test_both_keys_allow_and_revert(tmp_path: Path, victims: list[int]) -> None:
    """Positive control: with both consents the fault really happens (and is reverted), so the
    refusals above are the guard's doing, not a fault that could never work."""
    _, reasons = _attempt(
        tmp_path, "environment: production\nallow_production: true\n", cli_allow=True
    )
    assert not any("refused" in r for r in reasons), reasons
    # Reverted intents move from the live ledger to its archive.
    ledger = (tmp_path / ".drillbook" / "intents.archive.jsonl").read_text()
    assert '"op":"injected"' in ledger and '"op":"reverted"' in ledger
    assert _state(victims[0]) in ("S", "R")  # SIGCONT by the revert


def test_blast_radius_caps_refuse_wide_selection(tmp_path: Path, victims: list[int]) -> None:
    verdict, reasons = _attempt(tmp_path, "environment: sandbox\n", target="herd")
    assert verdict == "error", (verdict, reasons)
    assert "refused" in reasons[0] and ("max_targets" in reasons[0] or "max_percent" in reasons[0])
    _untouched(tmp_path, victims)


@pytest.mark.parametrize(
    ("how", "args", "extra_env"),
    [
        ("--drill-env", ["--drill-env", "production"], {}),
        ("DRILLBOOK_ENVIRONMENT", [], {"DRILLBOOK_ENVIRONMENT": "production"}),
    ],
)
def test_real_run_refuses_production(
    tmp_path: Path, victims: list[int], how: str, args: list[str], extra_env: dict[str, str]
) -> None:
    _write_config(tmp_path, "environment: sandbox\n")
    (tmp_path / "scenarios").mkdir()
    (tmp_path / "scenarios" / "freeze.yaml").write_text(
        "id: freeze\nobjectives: {rto: 10s}\ntimeout: 20s\n"
        "fault: {type: process.stop, target: victim}\n"
        'probes: [{name: alive, type: command, command: ["true"]}]\n'
        "recovery: [{kind: scripted, type: process.continue, target: victim}]\n"
    )
    (tmp_path / "drills").mkdir()
    shutil.copy(REPO / "drills" / "test_scenarios.py", tmp_path / "drills" / "test_scenarios.py")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRILLBOOK_")}
    env.update(extra_env)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "drills/", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out[-1500:]
    assert "refused" in out and "production" in out, out[-1500:]
    assert "Traceback" not in out
    _untouched(tmp_path, victims)

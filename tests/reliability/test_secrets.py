"""Secrets: canaries planted in DSNs, tokens, the environment and the config never reach a
journal, events file, report, log, history, intent ledger or evidence bundle.

One real run (``python -m pytest drills/`` in a throwaway project, i.e. what ``drillbook run``
does, with ``--drill-evidence``) of a drill that kills and recovers a real local service while
its probes and recovery step print secret-shaped strings; then every byte the run wrote, plus its
console output, is searched for every canary (tar.gz archives are opened and searched too).
"""

from __future__ import annotations

import gzip
import os
import secrets
import shutil
import subprocess
import sys
import tarfile
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _canary(tag: str) -> str:
    return f"CANARY{tag}{secrets.token_hex(6)}"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, dict[str, str]]:
    root = tmp_path_factory.mktemp("secrets")
    c = {
        "dsn": _canary("dsn"),
        "target_token": _canary("tt"),
        "backend_key": _canary("bk"),
        "env_pg": _canary("pg"),
        "env_api": _canary("api"),
        "env_aws": "AKIA" + secrets.token_hex(8).upper(),
        "probe_token": _canary("pt"),
        "bearer": _canary("bearer"),
        "step_password": _canary("sp"),
        "url_password": _canary("up"),
    }
    (root / "drillbook.yaml").write_text(
        textwrap.dedent(
            f"""\
            environment: sandbox
            safety: {{max_targets: 1, max_percent: 100}}
            backends:
              local: {{api_key: {c["backend_key"]}}}
            targets:
              demo:
                backend: local
                command: ["{{python}}", "-m", "drillbook.backends.local.demo_service", "--port", "{{port}}"]
                port: auto
                health: /health
                restart: always
                restart_delay: 200ms
                dsn: "postgresql://app:{c["dsn"]}@127.0.0.1:5/app"
                token: {c["target_token"]}
            """
        )
    )
    (root / "scenarios").mkdir()
    (root / "scenarios" / "leaky.yaml").write_text(
        textwrap.dedent(
            f"""\
            id: leaky
            description: a drill whose probes and steps print secrets
            objectives: {{rto: 30s, severity: P2}}
            probe_interval: 100ms
            stable_for: 500ms
            timeout: 60s
            fault: {{type: process.kill, target: demo, signal: KILL}}
            probes:
              - {{name: health, type: http, target: demo}}
              - name: chatty
                type: command
                command: ["sh", "-c", "echo token={c["probe_token"]} Authorization: Bearer {c["bearer"]}"]
            recovery:
              - kind: scripted
                name: noisy step
                type: command
                command:
                  - sh
                  - -c
                  - >-
                    echo connecting to postgresql://u:{c["url_password"]}@db/x
                    password={c["step_password"]} $AWS_ACCESS_KEY_ID; exit 0
            """
        )
    )
    (root / "drills").mkdir()
    shutil.copy(REPO / "drills" / "test_scenarios.py", root / "drills" / "test_scenarios.py")
    (root / "pytest.ini").write_text("[pytest]\naddopts = -p no:cacheprovider\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRILLBOOK_")}
    env.update(
        PGPASSWORD=c["env_pg"],
        DRILLBOOK_API_TOKEN=c["env_api"],
        AWS_ACCESS_KEY_ID=c["env_aws"],
        AWS_SECRET_ACCESS_KEY=_canary("awssecret"),
    )
    c["env_aws_secret"] = env["AWS_SECRET_ACCESS_KEY"]
    keygen = subprocess.run(
        [
            sys.executable,
            "-m",
            "drillbook.cli",
            "evidence",
            "keygen",
            "--out",
            str(root.parent / f"{root.name}-signing.key"),
        ],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert keygen.returncode == 0, keygen.stderr
    env["DRILLBOOK_SIGNING_KEY_FILE"] = str(root.parent / f"{root.name}-signing.key")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-v", "drills/", "--drill-evidence"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    console = proc.stdout + proc.stderr
    try:
        from drillbook.backends.local.service import LocalService
        from drillbook.config import Overrides, load_config

        cfg = load_config(Overrides(config_path=root / "drillbook.yaml"), workdir=root)
        LocalService(cfg.target("demo"), cfg.state_dir, cfg.workdir).stop()
    except Exception:
        pass
    return root, console, c


def _written_text(root: Path) -> dict[str, str]:
    """Every file the run wrote (not its inputs), decoded; archives opened."""
    inputs = {"drillbook.yaml", "pytest.ini"}
    out: dict[str, str] = {}
    for path in root.rglob("*"):
        rel = path.relative_to(root)
        if not path.is_file() or rel.parts[0] in ("scenarios", "drills") or str(rel) in inputs:
            continue
        data = path.read_bytes()
        if path.name.endswith((".tar.gz", ".tgz")):
            with tarfile.open(path) as tar:
                for member in tar.getmembers():
                    f = tar.extractfile(member)
                    if f is not None:
                        out[f"{rel}!{member.name}"] = f.read().decode("utf-8", "replace")
            continue
        if path.suffix == ".gz":
            data = gzip.decompress(data)
        out[str(rel)] = data.decode("utf-8", "replace")
    return out


def test_drill_ran_and_wrote_everything(run: tuple[Path, str, dict[str, str]]) -> None:
    """The run must have really happened, or the absence of canaries proves nothing."""
    root, console, _ = run
    assert "1 passed" in console, console[-2000:]
    files = _written_text(root)
    names = " ".join(files)
    for expected in ("journal.json", "events.jsonl", "intents.jsonl"):
        assert expected in names, sorted(files)
    assert any("report" in n and n.endswith((".html", ".md")) for n in files), sorted(files)
    assert any("!" in n for n in files), f"no evidence archive was written: {sorted(files)}"
    # The secret-shaped output did reach the journal, redacted: the probes really printed it.
    journal = next(v for k, v in files.items() if k.endswith("journal.json"))
    assert "token=***" in journal or "***" in journal


def test_no_canary_anywhere(run: tuple[Path, str, dict[str, str]]) -> None:
    root, console, canaries = run
    files = _written_text(root)
    files["<console output>"] = console
    leaks = [
        f"{name} in {where}"
        for where, text in files.items()
        for name, value in canaries.items()
        if value in text
    ]
    assert not leaks, leaks

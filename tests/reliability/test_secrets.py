"""Secrets: canaries planted in DSNs, tokens, the environment and the config never reach a
journal, events file, report, log, history, intent ledger, evidence bundle or the terminal.

One real run (``python -m pytest drills/`` in a throwaway project, i.e. what ``drillbook run``
does, with ``--drill-evidence``) of two drills on a real local service: ``leaky`` recovers while
its probes and recovery step print secret-shaped strings; ``failing`` has a recovery command that
echoes secrets in every shape (``PGPASSWORD=…``, ``DB_PASSWORD=…``, ``AWS_SECRET_ACCESS_KEY=…``,
JSON ``"password": "…"``, ``--password x``, and bare values of the environment's secrets) and
then fails, a probe whose detail is a bare secret, and a python probe whose exception message
quotes one. drillbook.yaml holds secrets as strings, numbers, lists and nested maps under secret
keys; the evidence bundle's environment snapshot carries that config. Then every byte the run
wrote, plus its console output, is searched for every canary (archives opened too).
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
        # failing drill: shapes only the patterns can catch (these values are nowhere else)
        "pg_assign": _canary("pgassign"),
        "db_assign": _canary("dbassign"),
        "aws_assign": _canary("awsassign"),
        "json_password": _canary("json"),
        "flag_password": _canary("flag"),
        # values only registration can catch (printed bare)
        "env_db_password": _canary("envdb"),
        "env_service_token": _canary("envtok"),
        "env_stripe_key": _canary("envkey"),
        "yaml_list_token": _canary("list"),
        "yaml_nested": _canary("nested"),
        "yaml_number": str(secrets.randbelow(10**11) + 10**11),
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
                tokens: [{c["yaml_list_token"]}]
                credentials: {{user: app, pin: {c["yaml_number"]}, extra: {{value: {c["yaml_nested"]}}}}}
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
    (root / "scenarios" / "failing.yaml").write_text(
        textwrap.dedent(
            f"""\
            id: failing
            description: a drill whose recovery command echoes secrets and fails
            objectives: {{rto: 30s, severity: P2}}
            probe_interval: 100ms
            stable_for: 500ms
            timeout: 30s
            fault: {{type: process.kill, target: demo, signal: KILL}}
            probes:
              - {{name: health, type: http, target: demo}}
              - name: bare
                type: command
                command: ["sh", "-c", "echo $DB_PASSWORD; exit 0"]
              - {{name: raises, type: python, callable: "leakyprobe:check"}}
            recovery:
              - kind: scripted
                name: echoing step
                type: command
                command:
                  - sh
                  - -c
                  - >-
                    sleep 1;
                    echo PGPASSWORD={c["pg_assign"]} DB_PASSWORD={c["db_assign"]}
                    AWS_SECRET_ACCESS_KEY={c["aws_assign"]};
                    echo '{{"password": "{c["json_password"]}"}}';
                    echo mysql --password {c["flag_password"]} -u app;
                    echo $DB_PASSWORD $SERVICE_TOKEN $STRIPE_KEY {c["yaml_list_token"]}
                    {c["yaml_number"]} {c["yaml_nested"]} $PGPASSWORD $AWS_SECRET_ACCESS_KEY;
                    exit 3
            """
        )
    )
    (root / "leakyprobe.py").write_text(
        textwrap.dedent(
            """\
            import os

            calls = 0


            def check(**_):
                # Healthy for the steady-state check, then an exception quoting a secret.
                global calls
                calls += 1
                if calls > 1:
                    raise RuntimeError("cannot log in with " + os.environ["SERVICE_TOKEN"])
                return True
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
        DB_PASSWORD=c["env_db_password"],
        SERVICE_TOKEN=c["env_service_token"],
        STRIPE_KEY=c["env_stripe_key"],
        PYTHONPATH=os.pathsep.join([str(root), *filter(None, [os.environ.get("PYTHONPATH", "")])]),
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
    inputs = {"drillbook.yaml", "pytest.ini", "leakyprobe.py"}
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
    assert "1 passed" in console and "1 failed" in console, console[-3000:]
    # The failing drill's reason (the echoing step's output) reached the terminal, scrubbed.
    assert "DB_PASSWORD=***" in console, console[-3000:]
    files = _written_text(root)
    names = " ".join(files)
    for expected in ("journal.json", "events.jsonl", "intents.jsonl"):
        assert expected in names, sorted(files)
    assert any("report" in n and n.endswith((".html", ".md")) for n in files), sorted(files)
    assert any("!" in n for n in files), f"no evidence archive was written: {sorted(files)}"
    # The secret-shaped output did reach the journal, redacted: the probes really printed it.
    journal = next(v for k, v in files.items() if k.endswith("journal.json"))
    assert "token=***" in journal or "***" in journal
    # The failing drill's step really ran and its echoed output reached the journal, scrubbed.
    assert "PGPASSWORD=***" in journal and "DB_PASSWORD=***" in journal, journal[-3000:]
    assert "AWS_SECRET_ACCESS_KEY=***" in journal
    events = next(v for k, v in files.items() if k.endswith("events.jsonl"))
    assert "cannot log in with ***" in events, "the python probe's exception never reached events"
    # The snapshot of the config went into the bundle (the canaries could have been there).
    assert any(k.endswith("environment.json") for k in files), sorted(files)


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

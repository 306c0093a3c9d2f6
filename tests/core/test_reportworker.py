"""The direct run's report helper (:mod:`drillbook.reportworker`) and its start-up heap settings.

Real processes throughout: the local demo service as the target, ``python -m drillbook.cli`` as
the harness, the forked helper found through ``/proc``. What must hold: the helper's reports are
byte for byte what in-process rendering makes of the same ``journal.json``; a helper that dies
leaves the parent to render; a parent killed with SIGKILL leaves no helper behind.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

CONFIG = """\
environment: test
defaults: {probe_interval: 20ms, stable_for: 100ms, probe_timeout: 1s}
targets:
  svc:
    backend: local
    command: ["{python}", "-m", "drillbook.backends.local.demo_service", "--port", "{port}"]
    port: auto
    restart: always
    restart_delay: 100ms
"""

SCENARIO = """\
id: svc_restart
objectives: {rto: 20s, severity: P2}
fault: {type: process.kill, target: svc, signal: KILL}
probes:
  - {name: health, type: http, target: svc}
recovery:
  - {kind: automatic}
"""

REPORTS = ("report.html", "summary.md", "drills.csv")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "drillbook.yaml").write_text(CONFIG)
    (tmp_path / "scenarios").mkdir()
    (tmp_path / "scenarios" / "svc_restart.yaml").write_text(SCENARIO)
    return tmp_path


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRILLBOOK_")}
    env.pop("GITHUB_STEP_SUMMARY", None)
    env.update(extra)
    return env


def _run(cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "drillbook.cli", "run", "scenarios/svc_restart.yaml"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _run_dir(root: Path) -> Path:
    doc = json.loads((root / "reports" / "latest" / "journal.json").read_text())
    return root / "reports" / str(doc["run_id"])


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(x) for x in text.split()]


def _alive(pid: int) -> bool:
    """Running (a zombie nobody reaped yet counts as gone: it runs nothing)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(") ", 1)[1][:1] != "Z"


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _helper_of(proc: subprocess.Popen[str], deadline_s: float = 60) -> int:
    """The forked helper: the harness's child running the same command line as the harness."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        mine = _cmdline(proc.pid)
        for child in _children(proc.pid):
            if mine and _cmdline(child) == mine:
                return child
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.01)
    raise AssertionError("no report helper was forked")


def _stop_service(project: Path) -> None:
    """The demo service's supervisor a SIGKILLed harness started outlives it: stop it here."""
    state = project / ".drillbook" / "local" / "svc.json"
    if not state.exists():
        return
    data = json.loads(state.read_text())
    for key in ("child_pid", "supervisor_pid"):
        pid = data.get(key)
        if isinstance(pid, int) and _alive(pid):
            os.kill(pid, signal.SIGTERM)


def _in_process(run_dir: Path, out: Path) -> None:
    """What rendering in this interpreter makes of the run's journal.json."""
    code = textwrap.dedent(
        f"""
        import json, shutil
        from pathlib import Path
        from drillbook.report import write_run_reports
        src, out = Path({str(run_dir)!r}), Path({str(out)!r})
        out.mkdir()
        for name in ("journal.json", "events.jsonl"):
            shutil.copy(src / name, out / name)
        doc = json.loads((out / "journal.json").read_text())
        write_run_reports(out, doc, step_summary=False)
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120, env=_env())


def test_helper_reports_match_in_process_rendering_byte_for_byte(
    project: Path, tmp_path: Path
) -> None:
    out = _run(project, _env(DRILLBOOK_REPORT_WORKER="1"))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "svc_restart  PASSED" in out.stdout and "reports: " in out.stdout
    run_dir = _run_dir(project)
    # Its warm-up (a render and a history record in memory) wrote nothing anywhere.
    assert sorted(p.name for p in project.iterdir()) == [
        ".drillbook",
        "drillbook.yaml",
        "reports",
        "scenarios",
    ]
    _in_process(run_dir, tmp_path / "again")
    for name in REPORTS:
        assert (run_dir / name).read_bytes() == (tmp_path / "again" / name).read_bytes(), name
    with sqlite3.connect(project / "reports" / "history.sqlite") as db:
        rows = db.execute("SELECT run_id, drill_id, verdict FROM drills").fetchall()
    assert rows == [(run_dir.name, "svc_restart", "passed")]

    # The same run without the helper prints the same table and writes the same files.
    off = _run(project, _env(DRILLBOOK_REPORT_WORKER="0"))
    assert off.returncode == 0, off.stdout + off.stderr
    table = [line.split()[:2] for line in out.stdout.splitlines() if "svc_restart" in line]
    assert [line.split()[:2] for line in off.stdout.splitlines() if "svc_restart" in line] == table
    assert all((_run_dir(project) / name).is_file() for name in REPORTS)


def test_the_helper_renders_in_its_own_process(project: Path, tmp_path: Path) -> None:
    """Asked directly: the answer comes from another pid, the files are the reports."""
    assert _run(project, _env(DRILLBOOK_REPORT_WORKER="0")).returncode == 0
    run_dir = _run_dir(project)
    expected = {name: (run_dir / name).read_bytes() for name in REPORTS}
    for name in REPORTS:
        (run_dir / name).unlink()
    code = textwrap.dedent(
        f"""
        import json, os
        from pathlib import Path
        from drillbook.reportworker import ReportWorker
        worker = ReportWorker.start({{"DRILLBOOK_REPORT_WORKER": "1"}})
        reply = worker.finish(
            Path({str(run_dir)!r}),
            history_path=Path({str(tmp_path / "h.sqlite")!r}),
            table_records=[{{"id": "svc_restart", "verdict": "passed", "measures": {{}},
                             "objectives": {{}}}}],
        )
        print(json.dumps({{"me": os.getpid(), "pid": reply.pid, "problems": reply.problems,
                           "written": [str(p) for p in reply.written], "table": reply.table}}))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=_env()
    )
    assert done.returncode == 0, done.stderr
    reply: dict[str, Any] = json.loads(done.stdout)
    assert reply["pid"] != reply["me"] and reply["problems"] == []
    assert sorted(Path(p).name for p in reply["written"]) == sorted(REPORTS)
    assert "svc_restart" in reply["table"] and "PASSED" in reply["table"]
    for name in REPORTS:
        assert (run_dir / name).read_bytes() == expected[name], name
    with sqlite3.connect(tmp_path / "h.sqlite") as db:
        assert db.execute("SELECT count(*) FROM drills").fetchone() == (1,)


def test_a_helper_that_died_leaves_the_parent_to_render(project: Path) -> None:
    # A drill long enough to kill the helper while it runs: recovery waits for a slow restart.
    (project / "drillbook.yaml").write_text(
        CONFIG.replace("restart_delay: 100ms", "restart_delay: 2s")
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "drillbook.cli", "run", "scenarios/svc_restart.yaml"],
        cwd=project,
        env=_env(DRILLBOOK_REPORT_WORKER="1"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        helper = _helper_of(proc)
        os.kill(helper, signal.SIGKILL)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, stdout + stderr
    assert "svc_restart  PASSED" in stdout and "warning" not in stdout
    assert all((_run_dir(project) / name).is_file() for name in REPORTS)


def test_a_parent_killed_mid_drill_leaves_no_helper(project: Path) -> None:
    (project / "drillbook.yaml").write_text(CONFIG.replace("restart: always", "restart: never"))
    (project / "scenarios" / "svc_restart.yaml").write_text(SCENARIO + "timeout: 2m\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "drillbook.cli", "run", "scenarios/svc_restart.yaml"],
        cwd=project,
        env=_env(DRILLBOOK_REPORT_WORKER="1"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    ledger = project / ".drillbook" / "intents.jsonl"
    try:
        helper = _helper_of(proc)  # type: ignore[arg-type]
        deadline = time.monotonic() + 60
        while '"injected"' not in (ledger.read_text() if ledger.exists() else ""):
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
        proc.kill()
        proc.wait()
        deadline = time.monotonic() + 30
        while _alive(helper):
            assert time.monotonic() < deadline, "the helper outlived its parent"
            time.sleep(0.02)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        # What the killed run injected is reverted the supported way.
        subprocess.run(
            [sys.executable, "-m", "drillbook.cli", "rollback", "--force"],
            cwd=project,
            env=_env(),
            capture_output=True,
            timeout=120,
        )
        _stop_service(project)
    ops = [json.loads(x)["op"] for x in ledger.read_text().splitlines()]
    assert ops[-1] == "reverted"


def test_the_drill_runs_with_the_collector_on_and_the_startup_heap_frozen(project: Path) -> None:
    """gc is off only while the program loads; a probe inside the drill sees it back on."""
    (project / "gcprobe.py").write_text(
        textwrap.dedent(
            """
            import gc, json, pathlib
            def check():
                pathlib.Path("gc.json").write_text(
                    json.dumps([gc.isenabled(), gc.get_freeze_count()])
                )
                return True
            """
        )
    )
    (project / "scenarios" / "svc_restart.yaml").write_text(
        SCENARIO.replace(
            "probes:\n", "probes:\n  - {name: gc, type: python, callable: 'gcprobe:check'}\n"
        )
    )
    out = _run(project, _env(PYTHONPATH=str(project)))
    assert out.returncode == 0, out.stdout + out.stderr
    enabled, frozen = json.loads((project / "gc.json").read_text())
    assert enabled is True and frozen > 10_000


@pytest.mark.parametrize(("setting", "in_parent"), [("1", False), ("0", True)])
def test_the_helper_reads_and_validates_so_the_parent_never_loads_yaml_or_the_validator(
    project: Path, setting: str, in_parent: bool
) -> None:
    """With the helper, the config and the scenarios come back from it: the parent never
    imports PyYAML or the scenario validator (seen from a probe inside the drill); without it,
    it does."""
    (project / "modprobe.py").write_text(
        textwrap.dedent(
            """
            import json, pathlib, sys
            def check():
                seen = [m in sys.modules for m in ("drillbook.schemacheck", "yaml")]
                pathlib.Path("mods.json").write_text(json.dumps(seen))
                return True
            """
        )
    )
    (project / "scenarios" / "svc_restart.yaml").write_text(
        SCENARIO.replace(
            "probes:\n", "probes:\n  - {name: m, type: python, callable: 'modprobe:check'}\n"
        )
    )
    out = _run(project, _env(DRILLBOOK_REPORT_WORKER=setting, PYTHONPATH=str(project)))
    assert out.returncode == 0, out.stdout + out.stderr
    assert json.loads((project / "mods.json").read_text()) == [in_parent, in_parent]


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        ("defaults: {probe_interval: soon}\n", "drillbook.yaml:1: defaults.probe_interval:"),
        ("targets: [\n", "drillbook.yaml:"),
    ],
)
def test_a_bad_config_reads_the_same_with_or_without_the_helper(
    project: Path, broken: str, message: str
) -> None:
    """The helper cannot read it, so the parent reads it again and says why, as it always did:
    the same words, exit 2, nothing injected."""
    (project / "drillbook.yaml").write_text(broken)
    outs = [_run(project, _env(DRILLBOOK_REPORT_WORKER=s)) for s in ("1", "0")]
    assert [o.returncode for o in outs] == [2, 2]
    assert outs[0].stderr == outs[1].stderr and message in outs[0].stderr
    assert "Traceback" not in outs[0].stderr and outs[0].stderr.count("\n") == 1
    assert not (project / ".drillbook" / "intents.jsonl").exists()

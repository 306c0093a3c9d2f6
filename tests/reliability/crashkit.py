"""The crash-matrix machinery, shared by tests/reliability and benchmarks/crash_matrix.py.

A trial builds a throwaway project (drillbook.yaml, one scenario, drills/, and a conftest.py that
pauses the harness at a chosen phase), starts the target, runs the harness — a real
``python -m pytest drills/`` with the drillbook plugin, i.e. what ``drillbook run`` runs — waits
until it reports being paused at the phase, sends it a signal, and then checks the outcome:

* SIGKILL: nothing inside the harness can run, so ``drillbook rollback`` (a new process) must
  rebuild the fault from the intent ledger and revert it;
* SIGINT / SIGTERM / SIGHUP: the harness itself must revert before it exits; no rollback is run.

Either way the target must be healthy again and the intent ledger must hold nothing pending.

The pause is test-only and lives entirely in the project's conftest.py: it wraps the registered
fault and recovery step (never the engine) so the harness blocks right after the intent is
written (inside ``inject`` before the real inject), right after inject (``verify_injected``
passed, state already in the ledger), during recovery (inside the scripted step), or during revert
(inside ``revert`` before the real revert). ``mid_inject`` pauses after the real inject but before
``inject`` returns, i.e. before the engine has written ``fault.state()`` to the ledger.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "CELLS",
    "PHASES",
    "SIGNALS",
    "Cell",
    "Project",
    "TrialResult",
    "availability",
    "make_project",
    "run_trial",
]

REPO = Path(__file__).resolve().parents[2]
PHASES = ("intent", "inject", "recovery", "revert")
EXTRA_PHASES = ("mid_inject",)
SIGNALS: Mapping[str, signal.Signals] = {
    "SIGKILL": signal.SIGKILL,
    "SIGINT": signal.SIGINT,
    "SIGTERM": signal.SIGTERM,
    "SIGHUP": signal.SIGHUP,
}

PAUSE_CONFTEST = '''\
"""Test-only: pause this harness at one drill phase (DRILLBOOK_TEST_PAUSE_AT)."""
import dataclasses
import os
import time
from pathlib import Path

from drillbook.backends.base import get_registry

PAUSE = os.environ.get("DRILLBOOK_TEST_PAUSE_AT", "")
MARKER = Path(os.environ.get("DRILLBOOK_TEST_MARKER", "/nonexistent/marker"))
FAULT = os.environ.get("DRILLBOOK_TEST_FAULT", "")
STEP = os.environ.get("DRILLBOOK_TEST_STEP", "")


def _pause(phase):
    if PAUSE != phase or MARKER.exists():
        return  # each trial pauses once, so a revert retried after a signal goes through
    MARKER.write_text(f"{os.getpid()} {phase}")
    end = time.monotonic() + 120
    while time.monotonic() < end:
        time.sleep(0.05)


def _wrap_fault(factory):
    def make(ctx):
        fault = factory(ctx)
        inject, verify, revert = fault.inject, fault.verify_injected, fault.revert

        def paused_inject():
            _pause("intent")
            inject()
            _pause("mid_inject")

        def paused_verify():
            ok = verify()
            if ok:
                _pause("inject")
            return ok

        def paused_revert():
            _pause("revert")
            revert()

        fault.inject, fault.verify_injected, fault.revert = paused_inject, paused_verify, paused_revert
        return fault

    return make


def _wrap_step(factory):
    def make(ctx):
        step = factory(ctx)
        run = step.run

        def paused_run():
            _pause("recovery")
            return run()

        step.run = paused_run
        return step

    return make


_reg = get_registry()
if FAULT in _reg.faults:
    _reg.faults[FAULT] = dataclasses.replace(
        _reg.faults[FAULT], factory=_wrap_fault(_reg.faults[FAULT].factory)
    )
if STEP in _reg.recoveries:
    _reg.recoveries[STEP] = dataclasses.replace(
        _reg.recoveries[STEP], factory=_wrap_step(_reg.recoveries[STEP].factory)
    )
'''


@dataclass(frozen=True)
class Cell:
    """One row of the matrix: a backend, a fault, the step that recovers from it, the target.

    ``target_yaml`` may hold ``@PORT@`` (a free port chosen per project); ``probe_yaml`` is the
    scenario's health probe. Local targets are started by the test and must be healthy before a
    trial; docker sandbox targets are brought up by the harness's own backend ``prepare``.
    """

    name: str
    backend: str
    fault: str
    step: str
    target_yaml: str
    fault_params: str = ""
    probe_yaml: str = "{name: health, type: http, target: demo, timeout: 500ms}"


LOCAL_TARGET = (
    '{backend: local, command: ["{python}", "-m", "drillbook.backends.local.demo_service", '
    '"--port", "{port}"], port: auto, health: /health, restart: always, restart_delay: 200ms}'
)

DOCKER_TARGET = (
    '{backend: docker, container: "drillbook-crash-@PORT@", '
    'sandbox: {image: "drillbook/busybox:latest", ports: {8080/tcp: @PORT@}, restart: always}}'
)

CELLS: tuple[Cell, ...] = (
    Cell("local/process.stop", "local", "process.stop", "process.continue", LOCAL_TARGET),
    Cell(
        "local/process.kill",
        "local",
        "process.kill",
        "process.start",
        LOCAL_TARGET,
        ", signal: KILL",
    ),
    Cell(
        "docker/docker.stop",
        "docker",
        "docker.stop",
        "docker.start",
        DOCKER_TARGET,
        probe_yaml="{name: port, type: tcp, host: 127.0.0.1, port: @PORT@, timeout: 500ms}",
    ),
)
DOCKER_HOST_DEFAULT = "unix:///run/drillbook-docker.sock"


def docker_env() -> dict[str, str]:
    host = os.environ.get("DOCKER_HOST") or (
        DOCKER_HOST_DEFAULT if Path(DOCKER_HOST_DEFAULT[7:]).exists() else ""
    )
    return {"DOCKER_HOST": host} if host else {}


def availability(cell: Cell) -> str | None:
    """None when the cell's backend can run here, else the one-line reason (for needs_backend)."""
    if cell.backend == "local":
        return None
    from drillbook.backends.base import get_registry

    info = get_registry().backends.get(cell.backend)
    if info is None:
        return "backend not registered"
    saved = {k: os.environ.get(k) for k in docker_env()}
    os.environ.update(docker_env())
    try:
        return info.available({})
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@dataclass
class Project:
    root: Path
    cell: Cell
    port: int = 0

    @property
    def ledger(self) -> Path:
        return self.root / ".drillbook" / "intents.jsonl"

    def config(self) -> Any:
        from drillbook.config import Overrides, load_config

        return load_config(Overrides(config_path=self.root / "drillbook.yaml"), workdir=self.root)

    def service(self) -> Any:
        from drillbook.backends.local.service import LocalService

        cfg = self.config()
        return LocalService(cfg.target("demo"), cfg.state_dir, cfg.workdir)

    def pending(self) -> list[Any]:
        from drillbook.intents import IntentLedger

        return IntentLedger(self.ledger).pending()


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def make_project(root: Path, cell: Cell) -> Project:
    root.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    (root / "pytest.ini").write_text("[pytest]\naddopts = -p no:cacheprovider\n")
    (root / "drillbook.yaml").write_text(
        textwrap.dedent(
            f"""\
            environment: sandbox
            safety: {{max_targets: 1, max_percent: 100, fault_ttl: 10m}}
            targets:
              demo: {cell.target_yaml.replace("@PORT@", str(port))}
            """
        )
    )
    (root / "scenarios").mkdir(exist_ok=True)
    (root / "scenarios" / "crash.yaml").write_text(
        textwrap.dedent(
            f"""\
            id: crash
            description: crash-matrix trial ({cell.name})
            objectives: {{rto: 60s, severity: P2}}
            probe_interval: 100ms
            stable_for: 300ms
            timeout: 90s
            fault: {{type: {cell.fault}, target: demo, ttl: 10m{cell.fault_params}}}
            probes:
              - {cell.probe_yaml.replace("@PORT@", str(port))}
            recovery:
              - {{kind: scripted, name: recover, type: {cell.step}, target: demo}}
            """
        )
    )
    (root / "drills").mkdir(exist_ok=True)
    shutil.copy(REPO / "drills" / "test_scenarios.py", root / "drills" / "test_scenarios.py")
    (root / "conftest.py").write_text(PAUSE_CONFTEST)
    return Project(root, cell, port)


@dataclass
class TrialResult:
    cell: str
    phase: str
    signal: str
    ok: bool
    harness_exit: int | None
    healthy: bool
    pending: int
    paused: bool
    rollback_exit: int | None = None
    detail: str = ""
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


def _env(project: Project, phase: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("DRILLBOOK_") or k == "DRILLBOOK_REQUIRE_BACKENDS"
    }
    env.update(
        DRILLBOOK_TEST_PAUSE_AT=phase,
        DRILLBOOK_TEST_MARKER=str(project.root / "paused.marker"),
        DRILLBOOK_TEST_FAULT=project.cell.fault,
        DRILLBOOK_TEST_STEP=project.cell.step,
        PYTHONUNBUFFERED="1",
    )
    if project.cell.backend == "docker":
        env.update(docker_env())
    return env


def _docker_client() -> Any:
    import docker

    return docker.DockerClient(base_url=docker_env().get("DOCKER_HOST"))


def _docker_name(project: Project) -> str:
    return f"drillbook-crash-{project.port}"


def healthy_docker(project: Project, wait_s: float, after_signal: bool) -> tuple[bool, str]:
    """The container runs and its published port accepts connections. After a signal the
    harness's session teardown removes its sandbox container, so there the proof is the run's
    own journal: every revert ok and verified."""
    import socket

    if after_signal:
        try:
            doc = json.loads((project.root / "reports" / "latest" / "journal.json").read_text())
            reverts = [r for d in doc["drills"] for r in d.get("reverts", [])]
        except (OSError, ValueError, KeyError) as exc:
            return False, f"no journal: {exc}"
        ok = bool(reverts) and all(r.get("ok") and r.get("verified") for r in reverts)
        return ok, f"journal reverts: {reverts}"
    deadline = time.monotonic() + wait_s
    why = ""
    while True:
        try:
            status = _docker_client().containers.get(_docker_name(project)).status
        except Exception as exc:
            status = f"{type(exc).__name__}: {exc}"
        try:
            with socket.create_connection(("127.0.0.1", project.port), timeout=1.0):
                port_ok = True
        except OSError as exc:
            port_ok, why = False, f"port: {exc}"
        if status == "running" and port_ok:
            return True, "container running, port open"
        why = f"container {status}; {why}"
        if time.monotonic() >= deadline:
            return False, why
        time.sleep(0.2)


def healthy(project: Project, wait_s: float = 10.0, after_signal: bool = False) -> tuple[bool, str]:
    """The target answers its health check and no process of it is stopped."""
    if project.cell.backend == "docker":
        return healthy_docker(project, wait_s, after_signal)
    from drillbook.backends.local.service import process_state

    service = project.service()
    deadline = time.monotonic() + wait_s
    why = ""
    while True:
        pids = service.pids()
        stopped = [p for p in pids if process_state(p) in ("T", "t")]
        try:
            with urllib.request.urlopen(service.url(), timeout=1.0) as resp:
                ok_http = resp.status == 200
                why = f"HTTP {resp.status}"
        except OSError as exc:
            ok_http = False
            why = f"{type(exc).__name__}: {exc}"
        if pids and not stopped and ok_http:
            return True, why
        if stopped:
            why = f"pids {stopped} still stopped (SIGSTOP)"
        elif not pids:
            why = "no process running"
        if time.monotonic() >= deadline:
            return False, why
        time.sleep(0.1)


def start_target(project: Project) -> None:
    if project.cell.backend == "local":
        project.service().start()


def stop_target(project: Project) -> None:
    if project.cell.backend == "docker":
        try:
            _docker_client().containers.get(_docker_name(project)).remove(force=True)
        except Exception:
            pass
        return
    service = project.service()
    from drillbook.backends.local.service import process_state

    for pid in service.pids():  # never leave a stopped child behind a test
        if process_state(pid) in ("T", "t"):
            os.kill(pid, signal.SIGCONT)
    service.stop()


def run_rollback(project: Project, in_process: bool = True) -> tuple[int, str]:
    """``drillbook rollback`` for the project: in this process (a different process from the
    killed harness, which is what matters) or as a fresh subprocess."""
    if in_process:
        import contextlib
        import io

        from drillbook.cli import main

        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            code = main(["--config", str(project.root / "drillbook.yaml"), "rollback"])
        return code, out.getvalue().strip()
    proc = subprocess.run(
        [sys.executable, "-m", "drillbook.cli", "--config", "drillbook.yaml", "rollback"],
        cwd=project.root,
        env=_env(project, ""),
        capture_output=True,
        text=True,
        timeout=120,
    )
    return proc.returncode, (proc.stdout + proc.stderr).strip()


def _default_signals() -> None:
    """In the harness child: default dispositions, so a runner that ignores SIGINT/SIGHUP (nohup,
    a background job of a non-interactive shell) does not make the harness ignore them too."""
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM):
        signal.signal(sig, signal.SIG_DFL)


def run_trial(
    project: Project,
    phase: str,
    sig: str,
    timeout: float = 90.0,
    rollback_in_process: bool = True,
    settle_s: float = 10.0,
) -> TrialResult:
    """One trial: harness paused at ``phase`` gets ``sig``; then judge the target and ledger."""
    started = time.monotonic()
    marker = project.root / "paused.marker"
    marker.unlink(missing_ok=True)
    (project.root / "reports" / "latest").unlink(missing_ok=True)  # judge this run's journal only
    ok_before, why = (
        healthy(project, wait_s=15.0) if project.cell.backend == "local" else (True, "")
    )
    if not ok_before:
        return TrialResult(
            project.cell.name,
            phase,
            sig,
            False,
            None,
            False,
            len(project.pending()),
            False,
            detail=f"target unhealthy before the trial: {why}",
        )
    log = open(project.root / "harness.log", "wb")
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pytest", "-q", "drills/", "-k", "crash"],
            cwd=project.root,
            env=_env(project, phase),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_default_signals,
        )
    finally:
        log.close()
    deadline = time.monotonic() + timeout
    paused = False
    while time.monotonic() < deadline and proc.poll() is None:
        if marker.exists():
            paused = True
            break
        time.sleep(0.02)
    if paused:
        os.kill(proc.pid, SIGNALS[sig])
    try:
        code = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        code = proc.wait()
        run_rollback(project)  # leave nothing behind for the next trial; this one has failed
        return TrialResult(
            project.cell.name,
            phase,
            sig,
            False,
            None,
            False,
            len(project.pending()),
            paused,
            detail=f"harness did not exit within {timeout:g}s after {sig}",
        )
    rollback_exit = None
    notes: list[str] = []
    if sig == "SIGKILL":
        in_process = rollback_in_process and project.cell.backend == "local"
        rollback_exit, out = run_rollback(project, in_process)
        notes.append(out[-300:])
    else:
        # A signal must be handled inside the harness: nothing may be left for rollback.
        pass
    is_healthy, why = healthy(project, wait_s=settle_s, after_signal=sig != "SIGKILL")
    pending = project.pending()
    ok = paused and is_healthy and not pending and (rollback_exit in (None, 0))
    detail = why if is_healthy else f"target not back: {why}"
    if pending:
        detail += f"; pending intents: {[(i.id, i.status) for i in pending]}"
    if not paused:
        tail = (project.root / "harness.log").read_text(errors="replace")[-600:]
        detail += f"; harness never paused at {phase} (exit {code}): {tail!r}"
    if pending:
        # Clean up for the next trial (the target has had time to settle); this trial has failed.
        run_rollback(project)
    if not is_healthy and project.cell.backend == "local":
        stop_target(project)
        start_target(project)
    return TrialResult(
        project.cell.name,
        phase,
        sig,
        ok,
        code,
        is_healthy,
        len(pending),
        paused,
        rollback_exit,
        detail,
        time.monotonic() - started,
        notes,
    )


def result_row(r: TrialResult) -> str:
    return json.dumps(r.__dict__, default=str)

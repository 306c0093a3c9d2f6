"""Shared helpers for the resource/disk/TLS/clock/database fault tests: building a fault the way
the engine does, reading the kernel's own counters (``ps``, ``/proc``, ``df``, ``openssl``)
independently of drillbook's code, and the crash cells (SIGKILL the harness after inject, then
``drillbook rollback`` or the TTL watchdog must leave nothing behind)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from drillbook.backends.base import Context, get_registry
from drillbook.model import TargetSpec

REPO = Path(__file__).resolve().parents[2]
SRC = REPO / "src"


def build(kind: str, name: str, params: Mapping[str, Any], tmp: Path, **targets: Any) -> Any:
    """A fault, probe or step from the registry, on a local target named ``host``."""
    reg = get_registry()
    table = {"fault": reg.faults, "probe": reg.probes, "recovery": reg.recoveries}[kind]
    spec = [
        TargetSpec(name=n, backend=t.pop("backend", "local"), params=t) for n, t in targets.items()
    ]
    if not spec:
        spec = [TargetSpec(name="host", backend="local", params={"match": "no-such-process-x9"})]
    ctx = Context(
        params=dict(params), targets=tuple(spec), workdir=tmp, state_dir=tmp / ".drillbook"
    )
    return table[name].factory(ctx)


def wait_for(pred: Callable[[], bool], timeout: float = 30.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what or pred}")


def ps_group(pgid: int) -> list[tuple[int, int]]:
    """(pid, rss KiB) of the live processes in a process group, as ``ps`` reports them."""
    out = subprocess.run(
        ["ps", "-eo", "pid=,pgid=,rss=,stat="], capture_output=True, text=True, check=True
    ).stdout
    rows = []
    for line in out.splitlines():
        pid, group, rss, stat = line.split()[:4]
        if int(group) == pgid and not stat.startswith("Z"):
            rows.append((int(pid), int(rss)))
    return rows


def ps_matching(needle: str) -> list[int]:
    out = subprocess.run(["ps", "-eo", "pid=,stat=,args="], capture_output=True, text=True).stdout
    found = []
    for line in out.splitlines():
        pid, stat, args = [*line.strip().split(None, 2), "", ""][:3]
        if needle in args and not stat.startswith("Z") and "ps -eo" not in args:
            found.append(int(pid))
    return found


# -- crash cells ----------------------------------------------------------------------------


def make_project(root: Path, scenario: str, targets: str = "") -> Path:
    """A throwaway project: drillbook.yaml (local ``host`` target), one scenario, drills/."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "pytest.ini").write_text("[pytest]\naddopts = -p no:cacheprovider\n")
    (root / "drillbook.yaml").write_text(
        textwrap.dedent(
            """\
            environment: sandbox
            safety: {max_targets: 3, max_percent: 100, require_opt_in: true, fault_ttl: 15m}
            targets:
              host: {backend: local, match: no-such-process-x9}
            """
        )
        + targets
    )
    (root / "scenarios").mkdir(exist_ok=True)
    (root / "scenarios" / "crash.yaml").write_text(textwrap.dedent(scenario))
    (root / "drills").mkdir(exist_ok=True)
    shutil.copy(REPO / "drills" / "test_scenarios.py", root / "drills" / "test_scenarios.py")
    return root


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(SRC), env.get("PYTHONPATH", "")) if p)
    env.pop("DRILLBOOK_NO_WATCHDOG", None)
    return env


def ledger(root: Path) -> list[dict[str, Any]]:
    path = root / ".drillbook" / "intents.jsonl"
    if not path.exists():
        return []
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def injected_state(root: Path) -> dict[str, Any] | None:
    for rec in reversed(ledger(root)):
        if rec.get("op") == "injected":
            return dict(rec.get("state") or {})
    return None


def pending(root: Path) -> bool:
    """An intent without a ``reverted`` line."""
    ids = {r.get("id") for r in ledger(root) if r.get("op") == "intent"}
    done = {r.get("id") for r in ledger(root) if r.get("op") == "reverted"}
    return bool(ids - done)


def crash_after_inject(
    root: Path, ready: Callable[[dict[str, Any]], bool], timeout: float = 120.0
) -> dict[str, Any]:
    """Run the harness until the fault is injected (its state is in the ledger and ``ready``,
    the test's own look at the effect, agrees), SIGKILL it, and return that state. The
    scenario's recovery step must keep the harness busy meanwhile."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "drills/"],
        cwd=root,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = injected_state(root)
            if state and ready(state):
                break
            if proc.poll() is not None:
                out = proc.stdout.read().decode() if proc.stdout else ""
                raise AssertionError(f"harness ended before inject:\n{out[-3000:]}")
            time.sleep(0.1)
        else:
            raise AssertionError("the fault was never injected")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        return state
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        if proc.stdout:
            proc.stdout.close()


def rollback(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "drillbook.cli", "--config", "drillbook.yaml", "rollback"],
        cwd=root,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )

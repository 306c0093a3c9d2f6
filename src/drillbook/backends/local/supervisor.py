"""A tiny process supervisor for local service targets (what systemd's Restart= does).

Why drillbook ships one: the local backend must drill a real restart policy without asking the
user to install systemd units. It runs as its own process (so killing the harness does not kill
the service), owns the service as its child (so the child is reaped at once: an orphan left to a
slow init stays a zombie, and its port and pid look taken), restarts it per policy after a
delay, and keeps ``<state>/<name>.json`` current so faults and the reaper in other processes
find the service's pid.

``python -m drillbook.backends.local.supervisor STATE_FILE RESTART DELAY_S -- CMD...``
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

__all__ = ["main", "read_state"]


def read_state(path: Path) -> dict[str, object] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _write(path: Path, data: dict[str, object]) -> None:
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(data), encoding="utf-8")
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) < 5 or args[3] != "--":
        print(
            "usage: supervisor STATE_FILE always|on-failure|never DELAY_S -- CMD...",
            file=sys.stderr,
        )
        return 2
    state_path, policy, delay, cmd = Path(args[0]), args[1], float(args[2]), args[4:]
    stopping = False
    child: subprocess.Popen[bytes] | None = None

    def on_term(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        if child is not None and child.poll() is None:
            child.terminate()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    restarts = 0
    state: dict[str, object] = {"supervisor_pid": os.getpid(), "cmd": cmd, "policy": policy}
    while not stopping:
        child = subprocess.Popen(cmd, stdin=subprocess.DEVNULL)
        state.update(
            child_pid=child.pid,
            restarts=restarts,
            started_at=time.time(),
            last_exit=state.get("last_exit"),
        )
        _write(state_path, state)
        while True:
            try:
                code = child.wait()
                break
            except InterruptedError:
                continue
        state["last_exit"] = code
        state["child_pid"] = None
        _write(state_path, state)
        if stopping or policy == "never" or (policy == "on-failure" and code == 0):
            break
        restarts += 1
        end = time.monotonic() + delay
        while not stopping and time.monotonic() < end:
            time.sleep(min(0.02, max(0.0, end - time.monotonic())))
    if child is not None and child.poll() is None:
        child.terminate()
        try:
            child.wait(timeout=5)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    state["child_pid"] = None
    state["supervisor_pid"] = None
    _write(state_path, state)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

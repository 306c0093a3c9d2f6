"""The sandbox supervisor: the long-lived parent of every sandbox server.

Why a separate process: the sandbox must outlive ``drillbook sandbox up`` and be driven by faults
and steps in other processes, yet a killed postmaster must be reaped at once (an orphan left to a
slow init stays a zombie, holding postmaster.pid, and blocks a restart). So this daemon starts each
``postgres -D`` and the app as its own children, marks itself a child subreaper so orphaned server
backends come back to it too, and reaps continuously. It restarts nothing by itself: recovery is
the drill's job. Control is a tiny JSON-over-HTTP API on 127.0.0.1 (port written to state.json).

Run: ``python -m drillbook.backends.postgres.sandbox.supervisor ROOT``.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import subprocess
import sys
import threading
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

from drillbook.backends.postgres.sandbox.jsonhttp import JsonHandler
from drillbook.backends.postgres.sandbox.state import NODE_APP, load_state, update_state
from drillbook.clock import get_clock
from drillbook.procs import pid_alive

__all__ = ["Supervisor", "main"]

_PR_SET_CHILD_SUBREAPER = 36
_STOP_WAIT_S = 15.0


def _become_subreaper() -> None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: orphans go to init, still reaped eventually
        pass


class Supervisor:
    """Starts, stops and reaps the sandbox's children; never restarts them on its own."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.children: dict[str, int] = {}  # node name -> pid
        self.exits: dict[str, int] = {}  # node name -> last exit status
        self.lock = threading.Lock()
        self.stopping = threading.Event()

    # -- children ---------------------------------------------------------------------------
    def _command(self, name: str, node: dict[str, Any], state: dict[str, Any]) -> list[str]:
        if name == NODE_APP:
            return [sys.executable, "-m", "drillbook.backends.postgres.sandbox.app", str(self.root)]
        return [str(Path(state["bin_dir"]) / "postgres"), "-D", node["data_dir"]]

    def start(self, name: str) -> int:
        with self.lock:
            if name in self.children:
                pid = self.children[name]
                if pid_alive(pid):
                    return pid
                self._reap_pid(name, pid)  # killed a moment ago, not yet reaped: do it now
            state = load_state(self.root)
            node = state["nodes"][name]
            log = open(self.root / "logs" / f"{name}.log", "ab")
            kwargs: dict[str, Any] = {}
            if name != NODE_APP and state.get("uid") is not None:
                kwargs = {"user": state["uid"], "group": state["gid"], "extra_groups": []}
            proc = subprocess.Popen(
                self._command(name, node, state),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=str(self.root),
                **kwargs,
            )
            log.close()
            self.children[name] = proc.pid
            self._set_pid(name, proc.pid)
            # The Popen object is dropped on purpose: the reaper loop below owns waiting.
            proc.returncode = 0
            return proc.pid

    def _reap_pid(self, name: str, pid: int) -> None:
        """Called with the lock held: wait for a dead child and forget it."""
        try:
            _, status = os.waitpid(pid, 0)
            self.exits[name] = status
        except ChildProcessError:
            pass
        del self.children[name]
        self._set_pid(name, None)

    def _set_pid(self, name: str, pid: int | None) -> None:
        def change(data: dict[str, Any]) -> None:
            data["nodes"][name]["pid"] = pid

        update_state(self.root, change)

    def stop(self, name: str, timeout_s: float = _STOP_WAIT_S) -> bool:
        """Fast shutdown (SIGINT for postgres, SIGTERM for the app), SIGKILL after the timeout."""
        with self.lock:
            pid = self.children.get(name)
        if pid is None:
            return True
        sig = signal.SIGTERM if name == NODE_APP else signal.SIGINT
        self._signal(pid, sig)
        deadline = get_clock().monotonic() + timeout_s
        while get_clock().monotonic() < deadline:
            with self.lock:
                if name not in self.children:
                    return True
            get_clock().sleep(0.02)
        self._signal(pid, signal.SIGKILL)
        deadline = get_clock().monotonic() + 5.0
        while get_clock().monotonic() < deadline:
            with self.lock:
                if name not in self.children:
                    return False
            get_clock().sleep(0.02)
        return False

    @staticmethod
    def _signal(pid: int, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)

    def reap_forever(self) -> None:
        while not self.stopping.is_set():
            self.reap_once()
            get_clock().sleep(0.02)

    def reap_once(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            with self.lock:
                names = [n for n, p in self.children.items() if p == pid]
                for name in names:
                    del self.children[name]
                    self.exits[name] = status
            for name in names:
                self._set_pid(name, None)

    def status(self) -> dict[str, Any]:
        with self.lock:
            return {"pid": os.getpid(), "children": dict(self.children), "exits": dict(self.exits)}

    def shutdown(self) -> None:
        for name in [NODE_APP, *sorted(n for n in self.children if n != NODE_APP)]:
            self.stop(name)
        self.stopping.set()


class _Handler(JsonHandler):
    server: _Server

    def do_GET(self) -> None:
        self._reply(200, self.server.supervisor.status())

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = json.loads(self.rfile.read(length) or b"{}")
        sup = self.server.supervisor
        try:
            if self.path == "/start":
                self._reply(200, {"pid": sup.start(body["name"])})
            elif self.path == "/stop":
                clean = sup.stop(body["name"], float(body.get("timeout_s", _STOP_WAIT_S)))
                self._reply(200, {"clean": clean})
            elif self.path == "/shutdown":
                sup.shutdown()
                self._reply(200, {"ok": True})
                threading.Thread(target=self.server.shutdown, daemon=True).start()
            else:
                self._reply(404, {"error": f"unknown {self.path}"})
        except Exception as exc:
            self._reply(500, {"error": f"{type(exc).__name__}: {exc}"})


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, supervisor: Supervisor) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.supervisor = supervisor


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    root = Path(args[0]).resolve()
    _become_subreaper()
    sup = Supervisor(root)
    server = _Server(sup)

    def stop_all() -> None:
        sup.shutdown()
        server.shutdown()

    def on_term(signum: int, frame: object) -> None:
        threading.Thread(target=stop_all, daemon=True).start()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    signal.signal(signal.SIGHUP, on_term)

    def change(data: dict[str, Any]) -> None:
        data["supervisor"] = {
            "pid": os.getpid(),
            "port": server.server_address[1],
            "started_at": get_clock().wall().isoformat(),
        }

    update_state(root, change)
    reaper = threading.Thread(target=sup.reap_forever, daemon=True)
    reaper.start()
    server.serve_forever(poll_interval=0.1)
    sup.stopping.set()
    reaper.join(timeout=2)
    sup.reap_once()

    def clear(data: dict[str, Any]) -> None:
        data["supervisor"] = {"pid": None, "port": None}

    update_state(root, clear)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Local service targets: a command drillbook supervises, or an existing process found by pid file
or command-line pattern.

Target params (drillbook.yaml ``targets.<name>``, backend ``local``):
``command`` (list or string; ``{port}`` is replaced), ``port`` (a number or ``auto``),
``health`` (path for the http probe, default ``/health``), ``restart`` (always | on-failure |
never), ``restart_delay`` (duration), ``start_timeout``; or, for a process drillbook does not
start, ``pid_file`` / ``match`` (a regex over the command line) and optionally ``start_command``.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from drillbook.backends.local.supervisor import read_state
from drillbook.clock import get_clock
from drillbook.durations import parse_duration
from drillbook.errors import ConfigError, FaultError
from drillbook.model import TargetSpec
from drillbook.procs import pid_alive

__all__ = ["LocalService", "free_port"]

_children: dict[int, subprocess.Popen[bytes]] = {}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _reap() -> None:
    for pid, proc in list(_children.items()):
        if proc.poll() is not None:
            _children.pop(pid, None)


class LocalService:
    """One local target; all state lives in files so other processes (the reaper) agree."""

    def __init__(self, target: TargetSpec, state_dir: Path, workdir: Path | None = None) -> None:
        self.target = target
        self.params = dict(target.params)
        self.dir = state_dir / "local"
        self.state_path = self.dir / f"{target.name}.json"
        self.port_path = self.dir / f"{target.name}.port"
        #: Where a fault proxy (network.degrade, http.faults) puts itself in the clients' path:
        #: while it exists, drillbook's clients of this target use the port it names.
        self.route_path = self.dir / f"{target.name}.route"
        self.workdir = workdir or Path.cwd()

    # -- configuration -----------------------------------------------------
    @property
    def managed(self) -> bool:
        return bool(self.params.get("command"))

    def _duration(self, key: str, default: float) -> float:
        if key not in self.params:
            return default
        try:
            return parse_duration(self.params[key])
        except ValueError as exc:
            raise ConfigError(str(exc), field=f"targets.{self.target.name}.{key}") from None

    @property
    def port(self) -> int | None:
        value = self.params.get("port")
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        try:
            return int(self.port_path.read_text().strip())
        except (OSError, ValueError):
            return None

    @property
    def client_port(self) -> int | None:
        """The port clients use: a fault proxy's while one is routed in, else the service's."""
        try:
            return int(json.loads(self.route_path.read_text())["port"])
        except (OSError, ValueError, KeyError, TypeError):
            return self.port

    def url(self, path: str | None = None) -> str:
        port = self.client_port
        if port is None:
            raise ConfigError(
                f"target {self.target.name} has no known port (is it started?)",
                field=f"targets.{self.target.name}.port",
            )
        return f"http://127.0.0.1:{port}{path or self.params.get('health', '/health')}"

    def _command(self, port: int | None) -> list[str]:
        raw = self.params.get("command")
        argv: list[str] = shlex.split(raw) if isinstance(raw, str) else [str(a) for a in raw or []]
        if not argv:
            raise ConfigError("expected `command:`", field=f"targets.{self.target.name}.command")
        argv = [
            a.replace("{port}", str(port or "")).replace("{python}", sys.executable) for a in argv
        ]
        return argv

    # -- state -----------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return read_state(self.state_path) or {}

    def supervisor_pid(self) -> int | None:
        pid = self.state().get("supervisor_pid")
        return pid if isinstance(pid, int) and pid_alive(pid) else None

    def pids(self) -> list[int]:
        """The service's process ids (the supervised child, or what pid_file / match finds)."""
        if self.managed:
            pid = self.state().get("child_pid")
            return [pid] if isinstance(pid, int) and pid_alive(pid) else []
        if self.params.get("pid_file"):
            try:
                pid = int((self.workdir / str(self.params["pid_file"])).read_text().strip())
            except (OSError, ValueError):
                return []
            return [pid] if pid_alive(pid) else []
        if self.params.get("match"):
            return find_processes(str(self.params["match"]))
        raise ConfigError(
            "a local target needs `command:`, `pid_file:` or `match:`",
            field=f"targets.{self.target.name}",
        )

    def running(self) -> bool:
        return bool(self.pids())

    def listening(self) -> bool:
        port = self.port
        if port is None:
            return self.running()
        # A plain socket to the literal address: create_connection would resolve "127.0.0.1"
        # through getaddrinfo and import the idna codec inside a drill's revert.
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.settimeout(0.5)
            try:
                sock.connect(("127.0.0.1", port))
            except OSError:
                return False
            return True

    # -- lifecycle ----------------------------------------------------------------
    def start(self, timeout: float | None = None) -> bool:
        """Start the supervised service unless it runs; True if this call started it."""
        _reap()
        if not self.managed:
            cmd = self.params.get("start_command")
            if self.running() or not cmd:
                return False
            argv = shlex.split(cmd) if isinstance(cmd, str) else [str(a) for a in cmd]
            subprocess.Popen(
                argv,
                start_new_session=True,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            return True
        if self.supervisor_pid() is not None:
            return False
        self.dir.mkdir(parents=True, exist_ok=True)
        value = self.params.get("port")
        port: int | None
        if value in (None, "auto"):
            port = free_port() if value == "auto" else None
        elif isinstance(value, int) and not isinstance(value, bool):
            port = value
        else:
            raise ConfigError(
                "expected a port number or `auto`", field=f"targets.{self.target.name}.port"
            )
        if port is not None:
            self.port_path.write_text(str(port))
        policy = str(self.params.get("restart", "always"))
        if policy not in ("always", "on-failure", "never"):
            raise ConfigError(
                "expected always, on-failure or never", field=f"targets.{self.target.name}.restart"
            )
        delay = self._duration("restart_delay", 0.5)
        log = open(self.dir / f"{self.target.name}.log", "ab")
        try:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "drillbook.backends.local.supervisor",
                    str(self.state_path),
                    policy,
                    str(delay),
                    "--",
                    *self._command(port),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
                cwd=self.workdir,
            )
        finally:
            log.close()
        _children[proc.pid] = proc
        deadline = get_clock().monotonic() + (timeout or self._duration("start_timeout", 15.0))
        while get_clock().monotonic() < deadline:
            if self.running() and self.listening():
                return True
            if proc.poll() is not None:
                break
            get_clock().sleep(0.05)
        raise FaultError(
            f"local target {self.target.name} did not start (see {self.dir}/{self.target.name}.log)"
        )

    def stop(self, timeout: float = 10.0) -> None:
        pid = self.supervisor_pid()
        if pid is None:
            return
        for sig in (signal.SIGCONT, signal.SIGTERM):
            for child in self.pids():
                if sig == signal.SIGCONT:
                    os.kill(child, sig)
            if sig == signal.SIGTERM:
                os.kill(pid, sig)
        deadline = get_clock().monotonic() + timeout
        while get_clock().monotonic() < deadline and pid_alive(pid):
            _reap()
            get_clock().sleep(0.05)
        if pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
        proc = _children.pop(pid, None)
        if proc is not None:
            proc.wait(timeout=5)


def find_processes(pattern: str, exclude: Sequence[int] = ()) -> list[int]:
    """Pids whose command line matches ``pattern`` (never this process or its parent)."""
    try:
        regex = re.compile(pattern)
    except re.error as exc:
        raise ConfigError(f"invalid regex: {exc}", field="match") from None
    mine = {os.getpid(), os.getppid(), *exclude}
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in mine:
            continue
        try:
            cmdline = (
                (entry / "cmdline")
                .read_bytes()
                .replace(b"\0", b" ")
                .decode(errors="replace")
                .strip()
            )
        except OSError:
            continue
        if cmdline and regex.search(cmdline) and pid_alive(int(entry.name)):
            found.append(int(entry.name))
    return sorted(found)

"""``stress.cpu``, ``stress.memory``, ``stress.io``: resource pressure on a local target's host.

The hog is stress-ng where it is installed (``engine: auto``), else the bounded Python worker
(:mod:`drillbook.pressure.hogworker`); ``engine:`` forces one. Either way it runs in its own
session (one ``killpg`` ends it and its workers), with its own deadline (``duration``, stress-ng's
``--timeout``), and its pid and start time go into ``state()`` so ``drillbook rollback`` and the
TTL watchdog end exactly that process group after the harness died.

Caps (refused before anything starts, as a SafetyError): CPU workers at most the host's cores;
memory at most ``backends.local.max_hog_bytes`` (default 2 GiB) and never more than MemAvailable
less a 256 MiB reserve; I/O file at most 1 GiB.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from drillbook.backends.base import Context, Fault
from drillbook.clock import epoch
from drillbook.durations import parse_duration
from drillbook.errors import ConfigError, FaultError, SafetyError
from drillbook.pressure import procs
from drillbook.pressure.sizes import parse_size

__all__ = ["CpuStress", "IoStress", "MemoryStress", "stress_ng"]

_DEFAULT_MEM_CAP = 2 * 1024**3
_RESERVE = 256 * 1024**2
_IO_CAP = 1024**3


def stress_ng() -> str | None:
    """stress-ng's path, or None (then the Python worker stands in)."""
    return shutil.which("stress-ng")


class _Hog(Fault):
    kind = "cpu"

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self._state: dict[str, Any] = {}
        self._proc: subprocess.Popen[bytes] | None = None

    # -- parameters ------------------------------------------------------------
    def _duration(self) -> float:
        try:
            return parse_duration(self.ctx.param("duration", "10m"), allow_zero=False)
        except ValueError as exc:
            raise ConfigError(str(exc), field="duration") from None

    def _engine(self) -> str:
        choice = str(self.ctx.param("engine", "auto"))
        if choice == "python" or (choice == "auto" and stress_ng() is None):
            return "python"
        if stress_ng() is None:
            raise FaultError("engine: stress-ng asked for, but stress-ng is not installed")
        return "stress-ng"

    def _argv(self, engine: str, seconds: int) -> list[str]:
        raise NotImplementedError

    def _what(self) -> str:
        raise NotImplementedError

    def plan(self) -> str:
        return (
            f"stress.{self.kind}: {self._what()} on the host of {self.ctx.target().name} "
            f"for at most {self._duration():g}s ({self._engine()})"
        )

    # -- the fault -------------------------------------------------------------
    def _python(self, *args: str) -> list[str]:
        worker = Path(__file__).with_name("hogworker.py")
        return [sys.executable, "-P", str(worker), self.kind, *args]

    def inject(self) -> None:
        engine = self._engine()
        seconds = max(1, int(self._duration()))
        argv = self._argv(engine, seconds)
        log_dir = self.ctx.state_dir / "pressure"
        log_dir.mkdir(parents=True, exist_ok=True)
        with open(log_dir / f"stress-{self.kind}.log", "ab") as log:
            self._proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
                close_fds=True,
            )
        pid = self._proc.pid
        self._state.update(
            {
                "pid": pid,
                "start_time": procs.start_time(pid),
                "engine": engine,
                "argv": argv,
                "deadline_epoch": epoch() + seconds,
            }
        )

    def _pgid(self) -> int | None:
        pid = self._state.get("pid")
        return int(pid) if isinstance(pid, int) else None

    def running(self) -> bool:
        pgid = self._pgid()
        return pgid is not None and bool(procs.group_members(pgid))

    def exit_status(self) -> int | None:
        """The hog's exit status when this process started it and it has ended."""
        return None if self._proc is None else self._proc.poll()

    def verify_injected(self) -> bool:
        return self.running()

    def revert(self) -> None:
        pgid = self._pgid()
        if pgid is not None:
            start = self._state.get("start_time")
            procs.kill_group(pgid, int(start) if isinstance(start, int) else None)
        if self._proc is not None:
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        folder = self._state.get("dir")
        if folder:
            shutil.rmtree(folder, ignore_errors=True)

    def verify_reverted(self) -> bool:
        folder = self._state.get("dir")
        return not self.running() and not (folder and os.path.exists(folder))

    def revert_report(self) -> str:
        code = self.exit_status()
        if code is not None and code in (-9, 137):
            return "the hog had been SIGKILLed before revert (an OOM kill?)"
        return ""

    def state(self) -> Mapping[str, Any]:
        return dict(self._state)

    def load_state(self, state: Mapping[str, Any]) -> None:
        self._state = dict(state)


class CpuStress(_Hog):
    """Busy workers on this host's cores (``workers``, ``load`` percent each)."""

    kind = "cpu"

    def _workers(self) -> int:
        cores = os.cpu_count() or 1
        workers = int(self.ctx.param("workers", 1))
        if not 1 <= workers <= cores:
            raise SafetyError(f"stress.cpu refused: workers={workers}, this host has {cores} cores")
        return workers

    def _what(self) -> str:
        return f"{self._workers()} worker(s) at {int(self.ctx.param('load', 100))}%"

    def _argv(self, engine: str, seconds: int) -> list[str]:
        load = int(self.ctx.param("load", 100))
        workers = self._workers()
        if engine == "stress-ng":
            return [
                str(stress_ng()),
                "--cpu",
                str(workers),
                "--cpu-load",
                str(load),
                "--timeout",
                f"{seconds}s",
                "--quiet",
            ]
        return self._python(
            "--seconds", str(seconds), "--workers", str(workers), "--load", str(load)
        )

    def verify_injected(self) -> bool:
        pgid = self._pgid()
        if pgid is None:
            return False
        # stress-ng: a parent and its workers; the Python worker: the workers themselves.
        return len(procs.group_members(pgid)) >= self._workers()


class MemoryStress(_Hog):
    """Hold ``size`` bytes (or ``percent`` of the target's memory limit) resident on this host."""

    kind = "memory"

    def _target_limit(self) -> tuple[int, str]:
        """The target's cgroup memory limit, else the host's MemTotal."""
        from drillbook.backends.local.service import LocalService

        try:
            pids = LocalService(self.ctx.target(), self.ctx.state_dir, self.ctx.workdir).pids()
        except ConfigError:
            pids = []
        for pid in pids:
            limit = procs.memory_limit_of(pid)
            if limit is not None:
                return limit, f"cgroup limit of pid {pid}"
        return procs.mem_total(), "host MemTotal"

    def size(self) -> int:
        if "size" in self.ctx.params:
            size = parse_size(self.ctx.param("size"), field="size")
        else:
            percent = float(self.ctx.param("percent", 0))
            limit, _ = self._target_limit()
            size = int(limit * percent / 100.0)
        cap = parse_size(
            self.ctx.settings.get("max_hog_bytes", _DEFAULT_MEM_CAP), field="max_hog_bytes"
        )
        if size > cap:
            raise SafetyError(
                f"stress.memory refused: {size} bytes is over backends.local.max_hog_bytes={cap}"
            )
        headroom = procs.mem_available() - _RESERVE
        if size > headroom:
            raise SafetyError(
                f"stress.memory refused: {size} bytes would leave this host under 256 MiB "
                f"available (MemAvailable less the reserve is {max(0, headroom)})"
            )
        if size <= 0:
            raise ConfigError("expected size > 0 or percent > 0", field="size")
        return size

    def _what(self) -> str:
        return f"{self.size()} bytes resident"

    def _argv(self, engine: str, seconds: int) -> list[str]:
        size = self.size()
        self._state["bytes"] = size
        if engine == "stress-ng":
            return [
                str(stress_ng()),
                "--vm",
                "1",
                "--vm-bytes",
                str(size),
                "--vm-keep",
                "--oomable",
                "--timeout",
                f"{seconds}s",
                "--quiet",
            ]
        return self._python("--seconds", str(seconds), "--bytes", str(size))

    def resident(self) -> int:
        pgid = self._pgid()
        return procs.group_rss(pgid) if pgid is not None else 0

    def verify_injected(self) -> bool:
        # Resident, not merely allocated: 90 % of the size (page rounding, the worker's own code).
        return self.resident() >= 0.9 * int(self._state.get("bytes", 0))


class IoStress(_Hog):
    """Write and fsync ``size`` bytes again and again in a private folder under ``path``."""

    kind = "io"

    def _size(self) -> int:
        size = parse_size(self.ctx.param("size", "64MiB"), field="size")
        if not 0 < size <= _IO_CAP:
            raise SafetyError(f"stress.io refused: size {size} is over the 1 GiB cap")
        return size

    def _folder(self) -> Path:
        raw = self.ctx.param("path")
        base = (self.ctx.workdir / str(raw)) if raw else self.ctx.state_dir / "pressure"
        return base / f"drillbook-io-{os.urandom(4).hex()}"

    def _what(self) -> str:
        return f"fsynced writes of {self._size()} bytes"

    def _argv(self, engine: str, seconds: int) -> list[str]:
        size = self._size()
        folder = self._folder()
        folder.parent.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(folder.parent).free
        if size + _RESERVE > free:
            raise SafetyError(
                f"stress.io refused: {size} bytes would leave {folder.parent} under 256 MiB free"
            )
        folder.mkdir()
        self._state["dir"] = str(folder)
        if engine == "stress-ng":
            return [
                str(stress_ng()),
                "--hdd",
                "1",
                "--hdd-bytes",
                str(size),
                "--temp-path",
                str(folder),
                "--timeout",
                f"{seconds}s",
                "--quiet",
            ]
        return self._python("--seconds", str(seconds), "--bytes", str(size), "--dir", str(folder))

    def verify_injected(self) -> bool:
        folder = self._state.get("dir")
        if not (self.running() and folder):
            return False
        return any(True for _ in Path(folder).rglob("*"))

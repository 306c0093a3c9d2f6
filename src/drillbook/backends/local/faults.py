"""Faults on local processes: ``process.kill`` (any signal) and ``process.stop`` (SIGSTOP)."""

from __future__ import annotations

import os
import signal
from collections.abc import Mapping
from typing import Any

from drillbook.backends.base import Context, Fault, Selection
from drillbook.backends.local.service import LocalService
from drillbook.clock import get_clock
from drillbook.errors import FaultError
from drillbook.procs import parse_signal, pid_alive, process_state

__all__ = ["ProcessKill", "ProcessStop"]


class _LocalFault(Fault):
    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.service = LocalService(ctx.target(), ctx.state_dir, ctx.workdir)
        self.pids: list[int] = []

    def resolve(self) -> Selection:
        # Remember the pids now: they go into the intent before anything is signalled.
        self.pids = self.service.pids()
        return Selection(tuple(f"pid {p}" for p in self.pids), len(self.pids))

    def state(self) -> Mapping[str, Any]:
        return {"pids": self.pids}

    def load_state(self, state: Mapping[str, Any]) -> None:
        self.pids = [int(p) for p in state.get("pids", [])]


class ProcessKill(_LocalFault):
    """Send a signal (default SIGKILL) to the target's processes; the restart policy, a recovery
    step, or the revert brings the service back."""

    def plan(self) -> str:
        sig = parse_signal(self.ctx.param("signal", "KILL")).name
        return (
            f"{sig} {self.service.target.name} ({', '.join(self.resolve().chosen) or 'no process'})"
        )

    def inject(self) -> None:
        sig = parse_signal(self.ctx.param("signal", "KILL"))
        self.pids = self.service.pids()
        if not self.pids:
            raise FaultError(f"{self.service.target.name}: no running process to signal")
        for pid in self.pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    def verify_injected(self) -> bool:
        sig = parse_signal(self.ctx.param("signal", "KILL"))
        if sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGABRT):
            return all(not pid_alive(p) for p in self.pids)
        return True  # other signals (HUP, USR1) leave the process running by design

    def revert(self) -> None:
        """Make sure the service runs again (the supervisor usually already did it)."""
        if self.service.running():
            return
        if self.service.managed and self.service.supervisor_pid() is not None:
            deadline = get_clock().monotonic() + 10
            while get_clock().monotonic() < deadline and not self.service.running():
                get_clock().sleep(0.05)
            if self.service.running():
                return
        self.service.start()

    def verify_reverted(self) -> bool:
        return self.service.running() and self.service.listening()


class ProcessStop(_LocalFault):
    """Freeze the target's processes with SIGSTOP (a hang, not a crash); revert sends SIGCONT.

    A frozen process never recovers by itself, which is why the TTL watchdog exists."""

    def plan(self) -> str:
        return f"SIGSTOP {self.service.target.name} ({', '.join(self.resolve().chosen) or 'no process'})"

    def inject(self) -> None:
        self.pids = self.service.pids()
        if not self.pids:
            raise FaultError(f"{self.service.target.name}: no running process to stop")
        for pid in self.pids:
            os.kill(pid, signal.SIGSTOP)

    def verify_injected(self) -> bool:
        return all(process_state(p) in ("T", "t") for p in self.pids)

    def revert(self) -> None:
        for pid in self.pids or self.service.pids():
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass

    def verify_reverted(self) -> bool:
        pids = self.pids or self.service.pids()  # no saved pids: judge what runs now
        return all(process_state(p) not in ("T", "t") for p in pids if pid_alive(p))

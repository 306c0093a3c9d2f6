"""Faults on a container's life: kill, stop, pause, restart, remove.

Each records, before acting, what revert needs (IDs, names, whether it ran, the full inspect for
``docker.remove``), verifies the engine shows the effect, and reverts idempotently: a revert that
finds the container already healthy does nothing.

``docker.kill`` has two modes, because they are different failures:
- ``via: engine`` (default) is ``docker kill``: the engine counts it as a manual stop, so a restart
  policy does *not* bring the container back (Docker's documented restart-policy rule; see
  docs/docker.md);
- ``via: process`` signals the container's main process from the host, as an OOM kill or a crash
  would, so the restart policy does bring it back. It needs the engine on this machine; the PID's
  cgroup is checked to belong to the container before any signal is sent.
"""

from __future__ import annotations

import logging
import os
import signal as signal_mod
from pathlib import Path
from typing import Any

from drillbook.backends.docker.common import DockerFault, duration_param, is_running
from drillbook.backends.docker.recreate import recreate, start_if_needed
from drillbook.backends.docker.sealed import discard, seal, unseal
from drillbook.errors import ConfigError, FaultError
from drillbook.procs import parse_signal, pid_alive

__all__ = [
    "KillFault",
    "PauseFault",
    "RemoveFault",
    "RestartFault",
    "StopFault",
]

log = logging.getLogger("drillbook")

_FATAL = {"KILL", "TERM", "INT", "QUIT", "ABRT", "SEGV"}


def _signal_name(value: Any) -> str:
    """The engine's spelling (``KILL``) of a signal given as ``KILL``, ``SIGKILL`` or ``9``."""
    return parse_signal(value if value is not None else "KILL").name.removeprefix("SIG")


class _RunningFault(DockerFault):
    """A fault whose revert is "the target runs again, if it ran before".

    The target is found again by what names it (identity.py), so a container that Compose, a
    restart policy or an operator re-created counts, whether or not it is healthy yet.
    """

    def _record(self) -> None:
        self._state["containers"] = []
        for c in self.containers():
            data = self.must_inspect(c.id)
            st = data["State"]
            self.records.append(
                {
                    **self.identity(data),
                    "was_running": bool(st.get("Running")),
                    "pid": int(st.get("Pid") or 0),
                    "started_at": st.get("StartedAt"),
                    "restart_count": int(data.get("RestartCount") or 0),
                }
            )

    def revert(self) -> None:
        self._revert_notes = []
        for rec in self.records:
            if not rec.get("was_running"):
                continue
            data = self.must_current(rec)
            # A restart policy (or Compose) already on it gets its chance first.
            policy_on_it = bool(data["State"].get("Restarting"))
            if not is_running(data) and not (policy_on_it and self.wait_current(rec, is_running)):
                start_if_needed(self.client, str(data["Id"]))
                if not self.wait_current(rec, is_running):
                    raise FaultError(f"{self.name} revert: {rec['name']} did not come back running")
            self.note_reverted(rec)

    def verify_reverted(self) -> bool:
        return all(is_running(self.current(rec)) for rec in self.records if rec.get("was_running"))


class KillFault(_RunningFault):
    name = "docker.kill"

    def _signal(self) -> str:
        return _signal_name(self.ctx.param("signal", "KILL"))

    def _via(self) -> str:
        via = str(self.ctx.param("via", "engine"))
        if via not in ("engine", "process"):
            raise ConfigError("expected engine or process", field="via")
        return via

    def describe(self) -> str:
        return f"docker.kill SIG{self._signal()} via {self._via()}"

    def inject(self) -> None:
        sig = self._signal()
        via = self._via()
        self._record()
        self._state.update({"signal": sig, "via": via})
        for rec in self.records:
            if via == "engine":
                self.client.api.kill(rec["id"], signal=sig)
            else:
                self._kill_process(rec, sig)

    @staticmethod
    def _kill_process(rec: dict[str, Any], sig: str) -> None:
        pid = int(rec["pid"])
        if pid <= 0:
            raise FaultError(f"docker.kill: {rec['name']} has no running process")
        try:
            cgroup = Path(f"/proc/{pid}/cgroup").read_text()
        except OSError as exc:
            raise FaultError(
                f"docker.kill via process: pid {pid} of {rec['name']} is not visible here "
                "(is the engine on another machine? use via: engine)"
            ) from exc
        if rec["id"] not in cgroup:
            raise FaultError(
                f"docker.kill via process: pid {pid} does not belong to container {rec['name']}"
            )
        os.kill(pid, getattr(signal_mod, "SIG" + sig))

    def verify_injected(self) -> bool:
        if self._state.get("signal") not in _FATAL:
            return True  # a non-fatal signal (HUP, USR1) has no state to observe

        via_process = self._state.get("via") == "process"

        def died(rec: dict[str, Any]) -> bool:
            if via_process and _process_gone(rec):
                # Seen on the host at once; the engine's inspect blocks while it restarts the
                # container, which would push t_inject past the real moment of failure.
                return True
            data = self.inspect(rec["id"])
            if data is None:
                return True
            st = data["State"]
            return (
                not st.get("Running")
                or bool(st.get("Restarting"))
                or int(st.get("Pid") or 0) != rec["pid"]
                or st.get("StartedAt") != rec["started_at"]
                or int(data.get("RestartCount") or 0) > rec["restart_count"]
            )

        return all(died(rec) for rec in self.records)


def _process_gone(rec: dict[str, Any]) -> bool:
    """The killed main process is dead or reaped (a zombie counts as dead)."""
    pid = int(rec["pid"])
    try:
        cgroup = Path(f"/proc/{pid}/cgroup").read_text()
    except OSError:
        return True
    return rec["id"] not in cgroup or not pid_alive(pid)


class StopFault(_RunningFault):
    name = "docker.stop"

    def describe(self) -> str:
        return "docker.stop"

    def inject(self) -> None:
        grace = duration_param(self.ctx, "grace", 10.0)
        self._record()
        for rec in self.records:
            self.client.api.stop(rec["id"], timeout=int(grace))

    def verify_injected(self) -> bool:
        return all(
            not (self.inspect(rec["id"]) or {}).get("State", {}).get("Running")
            for rec in self.records
        )


class PauseFault(_RunningFault):
    name = "docker.pause"

    def inject(self) -> None:
        self._record()
        for rec in self.records:
            self.client.api.pause(rec["id"])

    def verify_injected(self) -> bool:
        return all(
            bool((self.inspect(rec["id"]) or {}).get("State", {}).get("Paused"))
            for rec in self.records
        )


class RestartFault(_RunningFault):
    name = "docker.restart"

    def inject(self) -> None:
        grace = duration_param(self.ctx, "grace", 10.0)
        self._record()
        for rec in self.records:
            self.client.api.restart(rec["id"], timeout=int(grace))

    def verify_injected(self) -> bool:
        def restarted(rec: dict[str, Any]) -> bool:
            st = (self.inspect(rec["id"]) or {}).get("State", {})
            return bool(st.get("StartedAt") != rec["started_at"])

        return all(restarted(rec) for rec in self.records)


class RemoveFault(DockerFault):
    """Force-remove the container; revert re-creates it from the inspect saved in ``state()``.

    Named volumes survive; anonymous volumes do not (the re-created container gets new ones).
    If something else (Compose, an operator) already re-created the target, revert only makes
    sure it runs.
    """

    name = "docker.remove"

    def inject(self) -> None:
        self._state["containers"] = []
        found = self.containers()
        for c in found:
            data = self.must_inspect(c.id)
            self.records.append({**self.identity(data), "inspect": seal(self.ctx, data)})
        for rec in self.records:
            self.client.api.remove_container(rec["id"], force=True, v=False)

    def verify_injected(self) -> bool:
        return all(self.inspect(rec["id"]) is None for rec in self.records)

    def revert(self) -> None:
        self._revert_notes = []
        for rec in self.records:
            saved, complete = unseal(rec["inspect"])
            data = self.current(rec)
            if data is None:
                if not complete:
                    log.warning(
                        "docker.remove revert: the sealed inspect of %s is gone; re-creating it "
                        "without its environment variables",
                        rec["name"],
                    )
                recreate(self.client, saved)
            elif saved["State"].get("Running"):
                start_if_needed(self.client, str(data["Id"]))
            if saved["State"].get("Running") and not self.wait_current(rec, is_running):
                raise FaultError(f"docker.remove revert: {rec['name']} did not come back running")
            self.note_reverted(rec)
            discard(rec["inspect"])

    def verify_reverted(self) -> bool:
        for rec in self.records:
            data = self.current(rec)
            if data is None:
                return False
            if rec["inspect"]["State"].get("Running") and not is_running(data):
                return False
        return True

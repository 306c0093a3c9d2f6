"""Processes on this machine: signal names as runbooks write them, and "is it still running".

One copy of each, because every backend that touches a process (local services, the PostgreSQL
sandbox, a container's main process) needs the same answers: ``KILL``, ``SIGKILL`` and ``9`` are
one signal, and a zombie is gone (it holds no lock, no port, serves nothing; ``kill(pid, 0)``
still succeeds on it, which is why that test alone is wrong).
"""

from __future__ import annotations

import os
import signal
from typing import Any

from drillbook.errors import ConfigError

__all__ = ["SIGNAL", "parse_signal", "pid_alive", "process_state"]

_NAMES = sorted(n for n in signal.Signals.__members__ if not n.startswith("SIG_"))

#: The ``params_schema`` of a signal parameter: ``KILL``, ``SIGKILL`` or a signal number.
SIGNAL: dict[str, Any] = {
    "oneOf": [
        {"enum": sorted({*_NAMES, *(n.removeprefix("SIG") for n in _NAMES)})},
        {"type": "integer", "enum": sorted(int(s) for s in signal.Signals)},
    ]
}


def parse_signal(value: Any) -> signal.Signals:
    """``KILL``, ``sigterm``, ``9`` → the signal; ConfigError (field ``signal``) otherwise."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return signal.Signals(value)
        except ValueError:
            pass
    elif isinstance(value, str):
        name = value.strip().upper()
        name = name if name.startswith("SIG") else "SIG" + name
        if name in signal.Signals.__members__:
            return signal.Signals[name]
    raise ConfigError(f"unknown signal {value!r}; expected e.g. KILL, TERM, 9", field="signal")


def process_state(pid: int) -> str | None:
    """The one-letter state from /proc (R, S, T, Z...), or None if there is no such process."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            return fh.read().rsplit(") ", 1)[1][:1]
    except (OSError, IndexError):
        return None


def pid_alive(pid: int | None) -> bool:
    """True while ``pid`` runs; a zombie (Z) or a dead task (X) counts as gone.

    Without /proc (not Linux) it falls back to ``kill(pid, 0)``, which cannot see zombies.
    """
    if not pid or pid <= 0:
        return False
    state = process_state(pid)
    if state is not None:
        return state not in ("Z", "X")
    if os.path.isdir("/proc/self"):
        return False  # /proc works and has no such pid
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True

"""Running a target's own commands (``start_command``, ``stop_command``...) and keeping the cause
of a failure.

Commands are split like a shell would (``shlex``) but run without one: ``a || b`` or a pipe needs
``sh -c '...'`` (docs/postgres.md). A failure's message keeps the lines that say why (PostgreSQL's
``FATAL``/``PANIC``/``ERROR`` lines, a tool's ``Error:``) and the end of the output: the last few
hundred characters alone dropped the root cause (issue 21).
"""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

from drillbook.errors import RecoveryError
from drillbook.redact import redact_text

__all__ = ["lock_held", "root_cause", "run_command", "tail_log"]

_CAUSE = re.compile(r"\b(FATAL|PANIC|ERROR|Error|error|could not|No such file)\b")
_LOCK = re.compile(r'lock file "[^"]+" already exists')


def root_cause(text: str, limit: int = 1200) -> str:
    """The lines of ``text`` that name a cause, then its last lines, within ``limit`` chars."""
    text = redact_text(text)  # before any cut: a cut key name would let its value through
    lines = [line.rstrip() for line in text.strip().splitlines() if line.strip()]
    causes = [line for line in lines if _CAUSE.search(line)]
    tail = lines[-3:]
    picked: list[str] = []
    for line in [*causes[:6], *tail]:
        if line not in picked:
            picked.append(line)
    out = " | ".join(picked)
    return out if len(out) <= limit else out[: limit - 3] + "..."


def lock_held(text: str) -> bool:
    """True when PostgreSQL refused to start because an old postmaster's lock file is there."""
    return bool(_LOCK.search(text))


def tail_log(path: Path, lines: int = 40) -> str:
    """The end of a server log (empty when it cannot be read)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - 64 * 1024))
            data = f.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(data.splitlines()[-lines:])


def run_command(command: str, timeout_s: float, what: str) -> str:
    """Run ``command`` (no shell); raise RecoveryError with its root cause when it fails."""
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise RecoveryError(f"{what} {command!r} cannot be parsed: {exc}") from None
    if not argv:
        raise RecoveryError(f"{what} is empty")
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout_s, check=False, cwd="/"
        )
    except subprocess.TimeoutExpired:
        raise RecoveryError(f"{what} {command!r} timed out after {timeout_s:.0f}s") from None
    except OSError as exc:
        raise RecoveryError(f"{what} {command!r} cannot run: {exc}") from None
    if done.returncode != 0:
        output = f"{done.stderr}\n{done.stdout}"
        raise RecoveryError(
            f"{what} {command!r} failed (exit {done.returncode}): {root_cause(output)}"
        )
    return str(done.stdout)

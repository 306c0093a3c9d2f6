"""The GameDay console: walks the people in the room through the runbook, one step at a time.

After the fault is injected, each manual step is shown with its instruction and command, a clock
since t_inject against the RTO and the severity's response target, and single keys: ``d`` done,
``f`` failed, ``s`` skipped, then an optional note ("step 4 assumed access we did not have").
Scripted steps are announced and run when reached. Ctrl-C aborts the drill, which reverts, as
always: the terminal stays in a mode where Ctrl-C is a signal, and is restored on the way out.

It reads keys from ``/dev/tty``, so it works whatever stdin is; without a terminal (CI) a manual
step needs ``--answer``, which the engine applies before asking this console. The state is kept
in one snapshot that :mod:`.live` serves read-only to people following along.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import threading
from collections.abc import Iterator, Mapping
from typing import IO, Any

from drillbook.clock import get_clock
from drillbook.durations import format_duration
from drillbook.errors import RecoveryError
from drillbook.operator import ManualOutcome, StepInfo, open_tty

__all__ = ["GameDay", "clock_line"]

_KEYS = {"d": "done", "f": "failed", "s": "skipped"}
_FENCE = re.compile(r"^\s*(```|~~~)")
_COMMENT = re.compile(r"^\s*<!--.*-->\s*$")


def _mmss(seconds: float) -> str:
    seconds = max(0, int(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


def clock_line(step: StepInfo, now_mono: float) -> str:
    """``03:12 since inject · RTO 15:00 (21% used) · P1 response target 1:00:00``."""
    parts = []
    elapsed = None if step.t_zero_mono is None else now_mono - step.t_zero_mono
    if elapsed is not None:
        parts.append(f"{_mmss(elapsed)} since inject")
    if step.rto_s:
        used = "" if elapsed is None else f" ({elapsed / step.rto_s:.0%} used)"
        over = " OVER" if elapsed is not None and elapsed > step.rto_s else ""
        parts.append(f"RTO {_mmss(step.rto_s)}{used}{over}")
    if step.response_target_s:
        parts.append(f"{step.severity} response target {_mmss(step.response_target_s)}")
    return " · ".join(parts) or "no clock: nothing injected"


def _split_instruction(text: str) -> tuple[list[str], list[str]]:
    """The instruction's prose lines and its commands (the lines inside fenced blocks)."""
    prose: list[str] = []
    commands: list[str] = []
    inside = False
    for line in text.split("\n"):
        if _FENCE.match(line):
            inside = not inside
            continue
        if _COMMENT.match(line):
            continue
        (commands if inside else prose).append(line.rstrip())
    return [p for p in prose if p.strip()], [c for c in commands if c.strip()]


class GameDay:
    """An :class:`~drillbook.operator.Operator` for people at a terminal."""

    def __init__(self, tty_path: str = "/dev/tty", out: IO[str] | None = None) -> None:
        self.tty_path = tty_path
        self.out = out
        self._lock = threading.Lock()
        self._state: dict[str, Any] = {"drill": None, "current": None, "steps": []}

    # ---------------------------------------------------------------- live state
    def snapshot(self) -> dict[str, Any]:
        """A copy of the live state, with the clock as of now (what the live page shows)."""
        with self._lock:
            state = {**self._state, "steps": [dict(s) for s in self._state["steps"]]}
        current = state.get("current")
        if isinstance(current, Mapping) and current.get("t_zero_mono") is not None:
            elapsed = get_clock().monotonic() - float(current["t_zero_mono"])
            state["elapsed_s"] = round(elapsed, 1)
        return state

    def _set(self, **changes: Any) -> None:
        with self._lock:
            self._state.update(changes)

    # ---------------------------------------------------------------- the operator
    def step_started(self, step: StepInfo) -> None:
        with self._lock:
            if self._state["drill"] != step.drill_id:
                self._state.update(drill=step.drill_id, steps=[])
            self._state["current"] = {
                "index": step.index,
                "total": step.total,
                "name": step.name,
                "kind": step.kind,
                "t_zero_mono": step.t_zero_mono,
                "rto_s": step.rto_s,
                "response_target_s": step.response_target_s,
                "severity": step.severity,
            }
        if step.kind == "scripted":
            with contextlib.suppress(OSError):  # a display problem must not break the drill
                self._announce(step)

    def _announce(self, step: StepInfo) -> None:
        cmd = step.params.get("command")
        shown = cmd[-1] if isinstance(cmd, list) and cmd else cmd or step.name
        with self._terminal(required=False) as tty:
            self._header(tty, step)
            for line in str(shown).split("\n"):
                tty.write(f"    $ {line}\n")
            tty.write("    running (marked safe in the runbook) ...\n")
            tty.flush()

    def step_finished(self, step: StepInfo, record: Mapping[str, Any]) -> None:
        entry = {
            "index": step.index,
            "name": step.name,
            "kind": step.kind,
            "result": record.get("result") or ("done" if record.get("ok") else "failed"),
            "duration_s": record.get("duration_s"),
            "note": record.get("note", ""),
            "detail": record.get("detail", ""),
        }
        with self._lock:
            self._state["steps"].append(entry)
            self._state["current"] = None
        if step.kind == "scripted":
            with contextlib.suppress(OSError), self._terminal(required=False) as tty:
                mark = "done" if record.get("ok") else f"FAILED: {record.get('detail', '')}"
                tty.write(f"    {mark} in {format_duration(record.get('duration_s'))}\n")
                tty.flush()

    def manual_step(self, step: StepInfo) -> ManualOutcome:
        clock = get_clock()
        with self._terminal(required=True) as tty:
            self._header(tty, step)
            prose, commands = _split_instruction(step.instruction)
            for line in prose:
                tty.write(f"    {line.strip()}\n")
            for line in commands:
                tty.write(f"    $ {line.strip()}\n")
            tty.write("\n")
            result = self._read_key(tty, step, clock)
            tty.write(f"\n    {result}. Note (Enter for none): ")
            tty.flush()
            note = tty.readline().strip()
            tty.write("\n")
            tty.flush()
        return ManualOutcome(result, note[:2000])

    # ---------------------------------------------------------------- terminal
    def _header(self, tty: IO[str], step: StepInfo) -> None:
        rule = f"== GameDay {step.drill_id} · step {step.index}/{step.total} ({step.kind}) =="
        tty.write(f"\n{rule}\n  {step.name}\n")

    @contextlib.contextmanager
    def _terminal(self, *, required: bool) -> Iterator[IO[str]]:
        if self.out is not None:
            yield self.out
            return
        try:
            tty = open_tty(self.tty_path)
        except OSError:
            if required:
                raise RecoveryError(
                    "a GameDay manual step needs a terminal; without one (CI) answer each step "
                    "with --answer 'STEP=done'"
                ) from None
            import sys

            yield sys.stderr
            return
        with tty:
            yield tty

    def _read_key(self, tty: IO[str], step: StepInfo, clock: Any) -> str:
        """Wait for d / f / s, redrawing the clock every second."""
        import termios
        import tty as ttymod

        fd = tty.fileno()
        saved = termios.tcgetattr(fd)
        try:
            ttymod.setcbreak(fd)  # keys without Enter; Ctrl-C stays a signal
            while True:
                tty.write(
                    f"\r  {clock_line(step, clock.monotonic())}   "
                    "[d] done  [f] failed  [s] skipped \x1b[K"
                )
                tty.flush()
                ready, _, _ = select.select([fd], [], [], 1.0)
                if not ready:
                    continue
                key = os.read(fd, 1).decode("utf-8", "replace").lower()  # unbuffered
                if key in _KEYS:
                    return _KEYS[key]
        finally:
            termios.tcsetattr(fd, termios.TCSADRAIN, saved)

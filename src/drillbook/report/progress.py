"""Progress while the engine waits for recovery: elapsed against the RTO and the latest probe state.

A long silent wait looks like a hang; on a terminal one live line is redrawn in place, while in
CI (no TTY, logs kept forever) one plain line is printed every ``interval_s`` seconds instead.
Timing comes from the ``elapsed_s`` the engine passes in, so the class needs no clock of its own.
"""

from __future__ import annotations

import sys
from typing import TextIO

from drillbook.report.fmt import fmt_s

__all__ = ["Progress"]


class Progress:
    """``update()`` as often as you like; ``close()`` when the wait is over."""

    def __init__(
        self,
        stream: TextIO | None = None,
        is_tty: bool | None = None,
        *,
        label: str = "recovering",
        interval_s: float = 5.0,
        width: int = 24,
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.is_tty = self.stream.isatty() if is_tty is None else is_tty
        self.label = label
        self.interval_s = interval_s
        self.width = width
        self._last_printed: float | None = None
        self._last_len = 0
        self._open = False

    def line(self, elapsed_s: float, rto_s: float | None, probe_summary: str) -> str:
        """The text of one progress line (without carriage return or newline)."""
        if rto_s is not None and rto_s > 0:
            frac = min(elapsed_s / rto_s, 1.0)
            filled = round(frac * self.width)
            bar = "[" + "#" * filled + "-" * (self.width - filled) + "]"
            over = "  OVER RTO" if elapsed_s > rto_s else ""
            timing = f"{fmt_s(elapsed_s)} / RTO {fmt_s(rto_s)} {bar} {elapsed_s / rto_s * 100:3.0f}%{over}"
        else:
            timing = f"{fmt_s(elapsed_s)} (no RTO)"
        return f"{self.label} {timing}  {probe_summary}".rstrip()

    def update(self, elapsed_s: float, rto_s: float | None, probe_summary: str) -> None:
        text = self.line(elapsed_s, rto_s, probe_summary)
        if self.is_tty:
            pad = " " * max(self._last_len - len(text), 0)
            self.stream.write("\r" + text + pad)
            self._last_len = len(text)
            self._open = True
            self.stream.flush()
            return
        if self._last_printed is None or elapsed_s - self._last_printed >= self.interval_s:
            self.stream.write(text + "\n")
            self.stream.flush()
            self._last_printed = elapsed_s

    def close(self, final: str | None = None) -> None:
        """End the live line (TTY) and print ``final`` if given."""
        if self.is_tty and self._open:
            self.stream.write("\r" + " " * self._last_len + "\r" if final else "\n")
            self._open = False
        if final:
            self.stream.write(final + "\n")
        self.stream.flush()

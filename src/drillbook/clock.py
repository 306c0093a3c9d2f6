"""The one clock.

All time in drillbook goes through a :class:`Clock`: wall time (UTC, for people and auditors) and
monotonic time (for every duration, because wall clocks jump). Tests swap in :class:`FakeClock` so
timing logic can be checked exactly without sleeping.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol

__all__ = [
    "Clock",
    "FakeClock",
    "SystemClock",
    "epoch",
    "get_clock",
    "real_wall",
    "set_clock",
    "utc_iso",
]


class Clock(Protocol):
    """What the engine needs from time."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards."""
        ...

    def wall(self) -> datetime:
        """The current UTC time, timezone-aware."""
        ...

    def sleep(self, seconds: float) -> None:
        """Wait; the fake clock advances instead."""
        ...

    def wait(self, event: threading.Event, seconds: float) -> None:
        """Wait until ``event`` is set, ``seconds`` at most; the fake clock advances instead
        (it moves only when slept on, so nothing would ever set the event in time)."""
        ...


class SystemClock:
    """The real clock: ``time.monotonic`` and ``datetime.now(UTC)``."""

    def monotonic(self) -> float:
        return time.monotonic()

    def wall(self) -> datetime:
        return datetime.now(UTC)

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)

    def wait(self, event: threading.Event, seconds: float) -> None:
        event.wait(seconds)


class FakeClock:
    """A clock that moves only when told (or when something sleeps on it)."""

    def __init__(self, start: datetime | None = None, monotonic: float = 1000.0) -> None:
        self._wall0 = start or datetime(2026, 1, 1, tzinfo=UTC)
        self._mono0 = monotonic
        self._now = monotonic
        self._lock = threading.Lock()

    def monotonic(self) -> float:
        with self._lock:
            return self._now

    def wall(self) -> datetime:
        with self._lock:
            return self._wall0 + timedelta(seconds=self._now - self._mono0)

    def sleep(self, seconds: float) -> None:
        self.advance(max(0.0, seconds))

    def wait(self, event: threading.Event, seconds: float) -> None:
        self.advance(max(0.0, seconds))

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds


_clock: Clock = SystemClock()


def get_clock() -> Clock:
    """The process-wide clock."""
    return _clock


def set_clock(clock: Clock) -> Clock:
    """Replace the process-wide clock; returns the previous one so tests can restore it."""
    global _clock
    previous, _clock = _clock, clock
    return previous


def epoch() -> float:
    """Real seconds since the epoch, for a time another process or system compares against: an
    intent's expiry (the watchdog reads it), a lock's lease, the ledger's rows (stamped by the
    database), alert times (stamped by Prometheus). Never faked: the other side is not."""
    return time.time()


def real_wall() -> datetime:
    """:func:`epoch` as an aware UTC datetime: for a moment another system judges on its own
    clock (a certificate's validity, an Alertmanager silence). Never faked."""
    return datetime.fromtimestamp(time.time(), UTC)


_iso_second: tuple[int, str] = (-1, "")


def utc_iso(moment: datetime) -> str:
    """ISO 8601 with milliseconds and a ``Z``: the one format every journal uses.

    The seconds part is remembered: every probe sample is stamped, thousands a second at scale,
    and strftime is most of the cost."""
    global _iso_second
    second = round(moment.timestamp() - moment.microsecond / 1e6)
    cached = _iso_second
    if cached[0] == second:
        prefix = cached[1]
    else:
        prefix = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
        _iso_second = (second, prefix)
    return f"{prefix}.{moment.microsecond // 1000:03d}Z"

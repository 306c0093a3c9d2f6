"""Bounded polling with backoff, in place of boto3 waiters.

A boto3 waiter has its own fixed delay and attempt count and knows nothing of the drill: it can
keep a drill waiting long after the RTO has been missed. Every wait in the aws backend goes
through :func:`poll_until`, which backs off and stops at the drill's deadline (``ctx.deadline``
on the drillbook clock) or at a local timeout, whichever comes first.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from drillbook.backends.base import Context

__all__ = ["PollTimeout", "deadline_for", "poll_until"]

T = TypeVar("T")


class PollTimeout(TimeoutError):
    """The condition did not hold before the deadline."""


def deadline_for(ctx: Context, timeout_s: float | None) -> float:
    """The earlier of the drill's deadline and now + ``timeout_s`` (monotonic seconds)."""
    now = ctx.clock.monotonic()
    candidates = [d for d in (ctx.deadline,) if d is not None]
    if timeout_s is not None:
        candidates.append(now + timeout_s)
    return min(candidates) if candidates else now + 900.0


def poll_until(
    ctx: Context,
    check: Callable[[], T | None],
    *,
    what: str,
    timeout_s: float | None = None,
    first_delay_s: float = 0.2,
    max_delay_s: float = 5.0,
    factor: float = 1.6,
) -> T:
    """Call ``check`` until it returns something other than None; back off between calls.

    Raises :class:`PollTimeout` naming ``what`` when the deadline passes first. The last sleep is
    clipped to the deadline, so the wait never outlives it by more than one ``check`` call.
    """
    deadline = deadline_for(ctx, timeout_s)
    delay = first_delay_s
    attempts = 0
    while True:
        attempts += 1
        result = check()
        if result is not None:
            return result
        remaining = deadline - ctx.clock.monotonic()
        if remaining <= 0:
            raise PollTimeout(f"timed out waiting for {what} after {attempts} checks")
        ctx.clock.sleep(min(delay, remaining))
        delay = min(delay * factor, max_delay_s)

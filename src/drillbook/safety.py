"""Checks that refuse a drill before anything is touched, and signal handling that makes revert run.

ARCHITECTURE.md, "The safety model": production needs two keys (file and command line);
blast-radius caps are enforced after targets are resolved, and an empty selection is an error,
never a no-op. Both apply to every fault that changes a target's state, which is every fault
that does not declare itself read-only (:attr:`drillbook.backends.base.Fault.read_only`): a fault
that "only" moves traffic or flips a health check changes production as surely as one that kills
a process. SIGTERM and SIGHUP become an exception in the main thread so the engine's ``finally``
reverts before exit, exactly as it does for Ctrl-C.
"""

from __future__ import annotations

import math
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from drillbook.backends.base import Selection
from drillbook.config import Config
from drillbook.errors import SafetyError

__all__ = ["Interrupted", "check_blast_radius", "check_environment", "signals_raise"]


class Interrupted(KeyboardInterrupt):
    """A termination signal arrived mid-drill. A KeyboardInterrupt so ``except Exception`` in
    probe code cannot swallow it, and so pytest stops the session after the revert."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(f"received {signal.Signals(signum).name}")


def check_environment(config: Config, *, read_only: bool = False) -> None:
    """Refuse production unless both the file and the command line allow it."""
    if read_only or not config.production:
        return
    if not config.allow_production:
        raise SafetyError(
            f"environment {config.environment!r} is production: refused. Set "
            f"`allow_production: true` in {config.source} AND pass --drill-allow-production"
        )
    if not config.cli_allow_production:
        raise SafetyError(
            f"environment {config.environment!r} is production: refused. "
            f"{config.source} allows it; pass --drill-allow-production as well"
        )


def check_blast_radius(
    selection: Selection,
    config: Config,
    *,
    fault_type: str,
    read_only: bool = False,
) -> None:
    """Enforce max_targets / max_percent after resolving; an empty selection is an error."""
    chosen = len(selection.chosen)
    if chosen == 0:
        raise SafetyError(f"{fault_type}: the selector matched nothing; refusing an empty drill")
    if read_only:
        return
    cap = config.safety.max_targets
    if cap is not None and chosen > cap:
        raise SafetyError(f"{fault_type}: {chosen} targets selected, safety.max_targets is {cap}")
    pct = config.safety.max_percent
    if pct is not None and selection.candidates > 0:
        allowed = max(1, math.floor(selection.candidates * pct / 100.0))
        if chosen > allowed:
            raise SafetyError(
                f"{fault_type}: {chosen} of {selection.candidates} candidates selected "
                f"({100.0 * chosen / selection.candidates:.0f}%), safety.max_percent is {pct:g}%"
            )


@contextmanager
def signals_raise() -> Iterator[None]:
    """Within the block, SIGTERM and SIGHUP raise :class:`Interrupted` in the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        raise Interrupted(signum)

    previous = {}
    for sig in (signal.SIGTERM, signal.SIGHUP):
        try:
            previous[sig] = signal.signal(sig, handler)
        except (ValueError, OSError):
            pass
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)

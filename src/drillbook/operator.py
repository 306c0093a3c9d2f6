"""The interface between the engine and the people doing a drill's manual steps.

The engine times manual steps but should not know how a person is asked: a plain prompt, a
GameDay console with a clock and single keys (:mod:`drillbook.runbook.gameday`), a page several
people follow. An :class:`Operator` in the config (``Config.operator``) is asked for every manual
step that ``--answer`` did not answer, and told when each recovery step starts and ends, so a
display can follow scripted steps too. Without one, the engine's own prompt is used, as before.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import IO, Any, Protocol

__all__ = ["STEP_RESULTS", "ManualOutcome", "Operator", "StepInfo", "open_tty"]

#: What a person can say about a manual step.
STEP_RESULTS = ("done", "failed", "skipped")


@dataclass(frozen=True)
class StepInfo:
    """A recovery step as a display needs it: which, of how many, and the clocks to show."""

    drill_id: str
    index: int  # 1-based among the scenario's recovery steps
    total: int
    name: str
    kind: str  # automatic | scripted | manual
    instruction: str = ""
    params: Mapping[str, Any] = field(default_factory=dict)
    #: monotonic time of t_inject (or of the drill's start when nothing is injected)
    t_zero_mono: float | None = None
    rto_s: float | None = None
    response_target_s: float | None = None
    severity: str = ""


@dataclass(frozen=True)
class ManualOutcome:
    """The person's answer: ``done``, ``failed`` or ``skipped``, and an optional note.

    A failed step does not stop the drill (the room carries on with the runbook, as it would in
    an incident); it is recorded and fails the drill's checks. A skipped one is recorded only."""

    result: str
    note: str = ""

    def __post_init__(self) -> None:
        if self.result not in STEP_RESULTS:
            raise ValueError(f"result must be one of {STEP_RESULTS}, got {self.result!r}")


class Operator(Protocol):
    """Asks people for manual steps; follows every step. Must not raise for a display error."""

    def manual_step(self, step: StepInfo) -> ManualOutcome:
        """Show the step and wait for the person's answer (KeyboardInterrupt aborts the drill)."""
        ...

    def step_started(self, step: StepInfo) -> None:
        """A recovery step begins (scripted ones run right after this)."""
        ...

    def step_finished(self, step: StepInfo, record: Mapping[str, Any]) -> None:
        """A recovery step ended; ``record`` is what the journal holds for it."""
        ...


def open_tty(path: str = "/dev/tty") -> IO[str]:
    """The controlling terminal for reading and writing; OSError when there is none.

    Unbuffered underneath: ``open(path, "r+")`` fails on a terminal (a buffered read-write file
    must be seekable), and keys read with ``os.read`` must not sit in a buffer."""
    import io

    return io.TextIOWrapper(io.FileIO(path, "r+"), encoding="utf-8", write_through=True)

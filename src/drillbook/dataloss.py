"""Ledger writes → the data recovery lost, in time (RPA). Pure: no I/O, no clock.

At the bottom of the layers (beside model and durations) so any ledger backend can compute RPA the
one way :data:`drillbook.timeline.DEFINITIONS` describes, without importing above itself.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Protocol

__all__ = ["AckedWrite", "DataLoss", "data_loss"]


class AckedWrite(Protocol):
    """A ledger write whose COMMIT was acknowledged: ``sent`` when it left the harness, ``at``
    when its answer came (epoch seconds, the harness's clock); the server committed in between."""

    @property
    def seq(self) -> int: ...
    @property
    def sent(self) -> float: ...
    @property
    def at(self) -> float: ...


@dataclass(frozen=True)
class DataLoss:
    """What recovery lost of the acknowledged writes; times are epoch seconds."""

    rpa_s: float | None  # None: nothing was acknowledged, so nothing could be measured
    lost_writes: int
    acknowledged: int
    survived: int
    oldest_lost_at: float | None = None  # acknowledgement of the oldest lost write
    newest_lost_at: float | None = None  # acknowledgement of the newest lost write
    recovery_point: float | None = None  # every acknowledged write before it survived
    lost_before_inject: int = 0  # of lost_writes, acknowledged by t_inject
    oldest_lost_seq: int | None = None


def data_loss(
    writes: Sequence[AckedWrite],
    survived: Collection[int],
    *,
    ledger_start: float,
    t_inject: float | None = None,
) -> DataLoss:
    """RPA from the acknowledged writes and the sequence numbers found after recovery.

    Writes come from one writer in sequence order, so "the last write that survived before the
    oldest lost one" is the surviving write with the highest seq below it. The span is taken
    from when that write was *sent* (its commit is no earlier) to when the newest lost write was
    *acknowledged* (its commit is no later): the widest span the evidence allows."""
    acks = sorted(writes, key=lambda a: a.seq)
    lost = [a for a in acks if a.seq not in survived]
    kept = len(acks) - len(lost)
    if not acks:
        return DataLoss(None, 0, 0, 0)
    if not lost:
        return DataLoss(0.0, 0, len(acks), kept, recovery_point=acks[-1].at)
    oldest = lost[0]
    anchor = next((a for a in reversed(acks) if a.seq < oldest.seq and a.seq in survived), None)
    point = (
        (anchor.sent or anchor.at)
        if anchor is not None
        else min(ledger_start, oldest.sent or oldest.at)
    )
    newest = max(a.at for a in lost)
    return DataLoss(
        rpa_s=max(newest - point, 0.0),
        lost_writes=len(lost),
        acknowledged=len(acks),
        survived=kept,
        oldest_lost_at=oldest.at,
        newest_lost_at=newest,
        recovery_point=point,
        lost_before_inject=sum(1 for a in lost if t_inject is not None and a.at <= t_inject),
        oldest_lost_seq=oldest.seq,
    )

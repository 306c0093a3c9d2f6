"""Blast radius, one meaning on every backend: which of a target's matches a fault acts on.

A target in ``drillbook.yaml`` names what is under drill (a label selector, a tag, a Compose
service); a fault may narrow it with ``count: N`` or ``percent: P``. Every backend chooses through
:func:`select`, so the words mean the same everywhere:

- no ``count`` and no ``percent``: every match. The target is the declaration of what is under
  drill, and ``safety.max_targets`` / ``max_percent`` refuse an over-wide selection before
  anything is injected (ARCHITECTURE.md says why "all", not "one").
- ``count: N``: N of the matches (all of them when fewer match).
- ``percent: P``: P% of the matches, rounded up, and at least one of a non-empty set, so
  ``percent: 10`` of three containers is one, never none.
- The subset is drawn at random from the matches sorted by name, with a seed: ``seed: S`` replays
  a drill exactly; without it a fresh seed is drawn and returned in :class:`Picked` so the engine
  records it in the journal (the ``plan`` event) for the replay.
"""

from __future__ import annotations

import math
import random
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from drillbook.errors import ConfigError

__all__ = ["RENAMED", "SELECTION_PARAMS", "Picked", "select"]

T = TypeVar("T")

#: The parameters every fault that narrows its target's matches accepts (merge into its schema).
SELECTION_PARAMS: Mapping[str, Any] = {
    "count": {"type": "integer", "minimum": 1},
    "percent": {"type": "number", "exclusiveMinimum": 0, "maximum": 100},
    "seed": {"type": "integer", "minimum": 0},
}

#: Former per-backend spellings, refused with the name to use instead (scenario validation).
RENAMED: Mapping[str, str] = {"pick": "count", "pick_percent": "percent"}


@dataclass(frozen=True)
class Picked(Generic[T]):
    """What :func:`select` chose: the subset (sorted by name), how many matched, the seed used."""

    chosen: tuple[T, ...]
    candidates: int
    #: The seed of the random draw; None when nothing was drawn (every match was taken).
    seed: int | None


def _how_many(total: int, params: Mapping[str, Any]) -> int:
    count = params.get("count")
    percent = params.get("percent")
    if count is not None and percent is not None:
        raise ConfigError("give count or percent, not both", field="percent")
    if count is not None:
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ConfigError(f"expected a whole number >= 1, got {count!r}", field="count")
        return min(count, total)
    if percent is not None:
        if isinstance(percent, bool) or not isinstance(percent, int | float):
            raise ConfigError(f"expected 0 < percent <= 100, got {percent!r}", field="percent")
        if not 0 < float(percent) <= 100:
            raise ConfigError(f"expected 0 < percent <= 100, got {percent!r}", field="percent")
        return min(total, max(1, math.ceil(total * float(percent) / 100.0))) if total else 0
    return total


def select(
    candidates: Sequence[T],
    params: Mapping[str, Any],
    *,
    key: Callable[[T], str] = str,
) -> Picked[T]:
    """Choose ``count`` or ``percent`` of ``candidates`` (every one by default), seeded.

    ``key`` names a candidate (a container's name, an instance id); the draw is over the
    candidates sorted by it, so the same seed and the same matches give the same subset.
    """
    ordered = sorted(candidates, key=key)
    n = _how_many(len(ordered), params)
    given = params.get("seed")
    if given is not None and (isinstance(given, bool) or not isinstance(given, int) or given < 0):
        raise ConfigError(f"expected a whole number >= 0, got {given!r}", field="seed")
    if n >= len(ordered) and given is None:
        return Picked(tuple(ordered), len(ordered), None)
    seed = int(given) if given is not None else secrets.randbelow(2**31)
    drawn = random.Random(seed).sample(ordered, n)
    return Picked(tuple(sorted(drawn, key=key)), len(ordered), seed)

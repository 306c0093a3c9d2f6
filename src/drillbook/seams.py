"""The seams between the drill core and the feature packages it serves.

The engine (engine.py and the parts beside it) names no feature package: what it needs from one
is a small protocol here, and the composition root (:mod:`drillbook.features`, used by the
pytest plugin and the CLI's runner) wires the real implementations in. Each is given as a
loader, called when the drill first needs it, so ``import drillbook`` stays light and a feature
that cannot load (boto3 missing) fails the one drill that uses it, with its reason.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TextIO

from drillbook.clock import Clock
from drillbook.config import Config
from drillbook.model import AlertsSpec

__all__ = [
    "AlertWatchFactory",
    "PolicyObjectives",
    "ProgressFactory",
    "ProgressLine",
    "Seams",
    "TeamResults",
]


class PolicyObjectives(Protocol):
    """RTO and RPO, in seconds, that a resiliency policy sets for one disruption type."""

    def __call__(
        self, settings: Mapping[str, Any], policy_arn: str, disruption: str
    ) -> tuple[float, float]: ...


class ProgressLine(Protocol):
    """The live "elapsed vs RTO" line while a drill waits for recovery."""

    def update(self, elapsed_s: float, rto_s: float | None, probe_summary: str) -> None: ...

    def close(self, final: str | None = None) -> None: ...


class ProgressFactory(Protocol):
    def __call__(
        self, stream: TextIO | None = None, is_tty: bool | None = None, *, label: str = ...
    ) -> ProgressLine: ...


class TeamResults(Protocol):
    """Start/end/abort notifications and the Pushgateway export of a drill's record."""

    def notification_targets(self, settings: Mapping[str, Any]) -> Sequence[Mapping[str, Any]]: ...

    def notify(
        self,
        targets: Sequence[Mapping[str, Any]],
        event: str,
        drill: str,
        run_id: str,
        record: Mapping[str, Any] | None = None,
    ) -> list[tuple[str, str]]: ...

    def pushgateway_url(self, settings: Mapping[str, Any]) -> str | None: ...

    def push_results(self, url: str, record: Mapping[str, Any], run_id: str) -> None: ...


class AlertWatchFactory(Protocol):
    """Builds one drill's alert observation (prepare, start, await, resolve, stop)."""

    def __call__(
        self, spec: AlertsSpec, config: Config, clock: Clock, event: Callable[..., None]
    ) -> Any: ...


@dataclass(frozen=True)
class Seams:
    """What a drill can call on beyond its backends; a loader left None is a feature not wired
    (no progress line, no notifications; a scenario that needs one is refused, not judged)."""

    policy_objectives: Callable[[], PolicyObjectives] | None = None
    progress: Callable[[], ProgressFactory] | None = None
    team: Callable[[], TeamResults] | None = None
    alert_watch: Callable[[], AlertWatchFactory] | None = None

"""What every docker fault, probe and step shares: the client, the targets, params, waits.

Why a base class: the safety steps (resolve → identity re-check → opt-in) and the crash-safety
contract (``state()`` holds everything revert needs, as JSON) must be the same for every fault;
each concrete fault then only says how to inject, verify and revert.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from drillbook.backends.base import Context, Fault, Selection
from drillbook.backends.docker.engine import check_identity, client_for, describe_endpoint
from drillbook.backends.docker.identity import current, describe, health_of, identity
from drillbook.backends.docker.recreate import container_inspect
from drillbook.backends.docker.targets import check_opt_in, resolve_containers, wait_for
from drillbook.backends.selection import select
from drillbook.durations import parse_duration
from drillbook.errors import ConfigError, FaultError

__all__ = ["DockerFault", "duration_param", "is_running", "wait_state"]


def duration_param(ctx: Context, name: str, default: float) -> float:
    value = ctx.params.get(name)
    if value is None:
        return default
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise ConfigError(str(exc), field=name) from exc


def is_running(data: Mapping[str, Any] | None) -> bool:
    """Running and serving: not paused, not between restarts."""
    if data is None:
        return False
    state = data.get("State", {})
    return bool(state.get("Running")) and not state.get("Paused") and not state.get("Restarting")


def wait_state(
    ctx: Context,
    client: Any,
    ref: str,
    predicate: Callable[[Mapping[str, Any] | None], bool],
    timeout_s: float,
) -> bool:
    """Poll the container's inspect document until ``predicate`` holds (bounded)."""
    return wait_for(ctx, lambda: predicate(container_inspect(client, ref)), timeout_s)


class DockerFault(Fault):
    """Base of the docker faults: targets, identity, opt-in, and a JSON state."""

    #: The registered name, for messages and plans.
    name = "docker.fault"

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self._state: dict[str, Any] = {"containers": []}
        self._chosen: list[Any] | None = None
        self._candidates = 0
        self._seed: int | None = None
        self._revert_notes: list[str] = []

    @property
    def client(self) -> Any:
        return client_for(self.ctx.settings)

    def containers(self) -> list[Any]:
        """What this fault acts on: every match, or ``count``/``percent`` of them (seeded).

        Chosen once per fault, so the plan, the opt-in check and the inject see the same
        containers even when a random subset is drawn.
        """
        if self._chosen is None:
            found = resolve_containers(self.client, self.ctx.targets)
            picked = select(found, self.ctx.params, key=lambda c: str(c.name))
            self._candidates = picked.candidates
            self._seed = picked.seed
            self._chosen = list(picked.chosen)
        return self._chosen

    def resolve(self) -> Selection:
        found = self.containers()
        return Selection(
            chosen=tuple(str(c.name) for c in found), candidates=self._candidates, seed=self._seed
        )

    def preflight(self) -> None:
        check_identity(self.client, self.ctx.settings)
        if not self.read_only:
            check_opt_in(self.containers(), self.ctx.settings, self.name)

    def describe(self) -> str:
        """What the fault does, in a few words (``plan`` adds where)."""
        return self.name

    def plan(self) -> str:
        names = ", ".join(str(c.name) for c in self.containers())
        return f"{self.describe()} on {names} ({describe_endpoint(self.ctx.settings)})"

    def state(self) -> Mapping[str, Any]:
        return dict(self._state)

    def load_state(self, state: Mapping[str, Any]) -> None:
        self._state = dict(state)

    @property
    def records(self) -> list[dict[str, Any]]:
        recs: list[dict[str, Any]] = self._state.setdefault("containers", [])
        return recs

    def timeout_s(self) -> float:
        return duration_param(self.ctx, "timeout", 20.0)

    def inspect(self, ref: str) -> Mapping[str, Any] | None:
        return container_inspect(self.client, ref)

    def must_inspect(self, ref: str) -> Mapping[str, Any]:
        data = self.inspect(ref)
        if data is None:
            raise FaultError(f"{self.name}: container {ref} disappeared")
        return data

    @staticmethod
    def identity(data: Mapping[str, Any]) -> dict[str, Any]:
        """The start of a record: ID, name and Compose labels (see identity.py)."""
        return identity(data)

    def current(self, rec: Mapping[str, Any]) -> dict[str, Any] | None:
        """The container ``rec`` means now: the same one, or the one that re-created it.

        Revert and ``verify_reverted`` go through this, never through a stored ID alone.
        """
        return current(self.client, rec, self.ctx.targets)

    def must_current(self, rec: Mapping[str, Any]) -> dict[str, Any]:
        data = self.current(rec)
        if data is None:
            raise FaultError(
                f"{self.name} revert: container {rec['name']} no longer exists and nothing the "
                "target names replaced it"
            )
        return data

    def wait_current(self, rec: Mapping[str, Any], predicate: Callable[[Any], bool]) -> bool:
        """Poll (bounded) until the container ``rec`` means now satisfies ``predicate``.

        Resolved afresh on every poll: Compose may replace the container while revert waits.
        """
        return wait_for(self.ctx, lambda: predicate(self.current(rec)), self.timeout_s())

    def note_reverted(self, rec: Mapping[str, Any]) -> None:
        """Say which container the target is after revert, once its health has settled.

        A HEALTHCHECK still ``starting`` is not an answer yet: wait (bounded) for one, but never
        fail the revert over health; a re-created container is the same target, healthy or not.
        """
        self.wait_current(rec, lambda d: d is None or health_of(d) != "starting")
        self._revert_notes.append(describe(rec, self.current(rec)))

    def revert_report(self) -> str:
        return "; ".join(self._revert_notes)

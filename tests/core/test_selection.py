"""Blast radius means one thing on every backend: drillbook.backends.selection.select.

The rules (every match by default; ``count``; ``percent`` rounded up, at least one; a seeded
draw recorded in the journal so ``seed:`` replays the drill) are checked on the helper, then
through the engine: the seed a dry run draws is in the journal's ``plan`` event and in the
printed plan, and passing it back picks the same targets.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from drillbook.backends.base import Fault, Registry, Selection, params
from drillbook.backends.selection import SELECTION_PARAMS, select
from drillbook.config import Config, SafetySettings
from drillbook.engine import Drill, DryRun
from drillbook.errors import ConfigError
from drillbook.journal import RunJournal
from drillbook.model import FaultSpec, TargetSpec

NAMES = [f"c{i:02d}" for i in range(10)]


def test_every_match_by_default_and_nothing_drawn() -> None:
    picked = select(list(reversed(NAMES)), {})
    assert picked.chosen == tuple(NAMES) and picked.candidates == 10 and picked.seed is None


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ({"count": 3}, 3),
        ({"count": 50}, 10),  # more than match: all of them
        ({"percent": 30}, 3),
        ({"percent": 25}, 3),  # 2.5 rounded up
        ({"percent": 1}, 1),  # never zero of a non-empty set
        ({"percent": 100}, 10),
    ],
)
def test_count_and_percent(given: dict[str, float], expected: int) -> None:
    picked = select(NAMES, given)
    assert len(picked.chosen) == expected and picked.candidates == 10
    assert list(picked.chosen) == sorted(picked.chosen)
    assert set(picked.chosen) <= set(NAMES)


def test_an_empty_set_stays_empty() -> None:
    assert select([], {"percent": 50}).chosen == ()


def test_the_seed_replays_the_draw_and_differs_between_seeds() -> None:
    first = select(NAMES, {"count": 3})
    assert first.seed is not None
    again = select(list(reversed(NAMES)), {"count": 3, "seed": first.seed})
    assert again.chosen == first.chosen and again.seed == first.seed
    draws = {select(NAMES, {"count": 3, "seed": s}).chosen for s in range(20)}
    assert len(draws) > 1  # seeded, not "the first three"


@pytest.mark.parametrize(
    ("given", "field"),
    [
        ({"count": 1, "percent": 10}, "percent"),
        ({"count": 0}, "count"),
        ({"percent": 0}, "percent"),
        ({"percent": 101}, "percent"),
        ({"seed": -1, "count": 1}, "seed"),
    ],
)
def test_bad_values_name_their_field(given: dict[str, int], field: str) -> None:
    with pytest.raises(ConfigError) as err:
        select(NAMES, given)
    assert err.value.field == field


class _Pick(Fault):
    """A fault over ten named things, choosing through the helper like every backend's."""

    def resolve(self) -> Selection:
        picked = select(NAMES, self.ctx.params)
        return Selection(picked.chosen, picked.candidates, picked.seed)

    def plan(self) -> str:
        return "pick"

    def inject(self) -> None:
        raise AssertionError("a dry run injects nothing")

    def verify_injected(self) -> bool:
        return True

    def revert(self) -> None:
        pass


def _dry_run(tmp_path: Path, given: dict[str, int]) -> tuple[list[str], dict[str, object]]:
    registry = Registry()
    registry.add_backend("acme", lambda settings: None)
    registry.add_fault("acme.pick", "acme", _Pick, params_schema=params(SELECTION_PARAMS))
    config = Config(
        source="test",
        workdir=tmp_path,
        targets={"things": TargetSpec("things", "acme")},
        safety=SafetySettings(),
        reports_dir=tmp_path / "reports",
        state_dir=tmp_path / ".drillbook",
        dry_run=True,
    )
    journal = RunJournal(config.reports_dir, environment={"name": "sandbox"})
    printed: list[str] = []
    drill = Drill("d", config, journal=journal, registry=registry, on_plan=printed.append)
    with pytest.raises(DryRun):
        drill.inject(FaultSpec("acme.pick", given, ("things",)))
    journal.finish()
    events = [json.loads(line) for line in journal.events_path.read_text().splitlines()]
    (plan,) = [e for e in events if e.get("kind") == "plan"]
    return printed, plan


def test_the_seed_is_in_the_journal_and_replays_the_drill(tmp_path: Path) -> None:
    printed, plan = _dry_run(tmp_path / "a", {"count": 2})
    seed = plan["seed"]
    assert isinstance(seed, int) and len(plan["resolved"]) == 2  # type: ignore[arg-type]
    assert printed and printed[0].endswith(f"(seed {seed})")
    _, replay = _dry_run(tmp_path / "b", {"count": 2, "seed": seed})
    assert replay["resolved"] == plan["resolved"] and replay["seed"] == seed

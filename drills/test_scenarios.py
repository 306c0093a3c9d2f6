"""Every scenario in scenarios/*.yaml, one test each: ``pytest drills/ -k <scenario id>``."""

from __future__ import annotations

from drillbook.model import Scenario
from drillbook.plugin import DrillFixture


def test_scenario(drill_scenario: Scenario, drill: DrillFixture) -> None:
    drill.run(drill_scenario)

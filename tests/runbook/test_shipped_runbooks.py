"""Every shipped scenario has its runbook under docs/runbooks/, in one of the two shapes, and the
runbook's severity and RTO say what the scenario judges."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from drillbook.durations import parse_duration
from drillbook.runbook.findings import runbook_section
from drillbook.runbook.parse import parse_runbook

REPO = Path(__file__).resolve().parents[2]
SCENARIOS = sorted((REPO / "scenarios").glob("*.yaml"))
RUNBOOKS = REPO / "docs" / "runbooks"


def scenario(path: Path) -> dict:  # type: ignore[type-arg]
    data: dict = yaml.safe_load(path.read_text())  # type: ignore[type-arg]
    return data


def test_there_are_shipped_scenarios() -> None:
    assert len(SCENARIOS) >= 10


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_scenario_runbook_exists_and_agrees(path: Path) -> None:
    data = scenario(path)
    link = str(data.get("runbook", ""))
    target = REPO / link.split("#", 1)[0]
    assert link.startswith("docs/runbooks/"), f"{path.name}: runbook: {link!r}"
    assert target.is_file(), f"{path.name}: runbook {link} does not exist"
    book = parse_runbook(target.read_text(encoding="utf-8"))
    assert book.shape in ("incident", "procedure"), f"{link}: shape {book.shape}"
    procedure = book.section("procedure", "resolution")
    assert procedure is not None and procedure.steps, f"{link}: no numbered steps"
    assert "```sh" in target.read_text(encoding="utf-8"), f"{link}: no shell block"
    objectives = data.get("objectives", {})
    assert book.severity == objectives.get("severity", "P2"), link
    if "rto" in objectives:
        assert book.rto_s == parse_duration(str(objectives["rto"])), link


def test_every_runbook_belongs_to_a_scenario() -> None:
    linked = {str(scenario(p).get("runbook", "")).split("#")[0] for p in SCENARIOS}
    for md in RUNBOOKS.glob("*.md"):
        if md.name != "README.md":
            assert f"docs/runbooks/{md.name}" in linked, f"{md.name} is linked by no scenario"


def test_no_runbook_section_for_a_drill_without_runbook_steps() -> None:
    drill = {
        "runbook": "docs/runbooks/pod_kill.md",
        "steps": [{"name": "ReplicaSet", "kind": "automatic", "ok": True, "duration_s": 0.0}],
    }
    assert runbook_section(drill) is None
    drill["steps"].append({"name": "page", "kind": "manual", "ok": True, "duration_s": 30.0})
    drill["objectives"] = {"rto_s": 60.0}
    section = runbook_section(drill)
    assert section is not None
    assert [(r.name, r.result, r.rto_share) for r in section.steps] == [("page", "done", 0.5)]
    assert any("took 50% of the RTO" in c for c in section.changes)

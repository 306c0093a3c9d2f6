"""Objectives read from a Resilience Hub resiliency policy (moto models the policy API)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aws_world import boto

from drillbook.backends.base import get_registry
from drillbook.config import Config
from drillbook.engine import Drill
from drillbook.errors import ScenarioError
from drillbook.features import wired_seams
from drillbook.scenario import load_scenario

SCENARIO = """\
id: policy_judged
objectives:
  severity: P1
  resiliency_policy: {arn: "ARN", disruption: Region}
recovery:
  - {kind: manual, name: page, instruction: Page the on-call}
"""


def test_the_drill_is_judged_against_the_policy(aws: dict[str, Any], tmp_path: Path) -> None:
    rh = boto(aws, "resiliencehub")
    policy = {k: {"rtoInSecs": 3600, "rpoInSecs": 900} for k in ("AZ", "Hardware", "Software")}
    policy["Region"] = {"rtoInSecs": 1800, "rpoInSecs": 300}
    arn = rh.create_resiliency_policy(policyName="orders", tier="Critical", policy=policy)[
        "policy"
    ]["policyArn"]
    path = tmp_path / "s.yaml"
    path.write_text(SCENARIO.replace("ARN", arn))
    scenario = load_scenario(path, registry=get_registry())
    assert scenario.objectives.rto_s is None and scenario.objectives.resiliency_policy
    config = Config(
        source="test", workdir=tmp_path, state_dir=tmp_path / ".drillbook", backends={"aws": aws}
    )
    drill = Drill("policy_judged", config, scenario=scenario, seams=wired_seams())
    assert (drill.objectives.rto_s, drill.objectives.rpo_s) == (1800.0, 300.0)


def test_rto_and_a_policy_together_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    arn = "arn:aws:resiliencehub:us-east-1:123456789012:resiliency-policy/x"
    path.write_text(SCENARIO.replace("ARN", arn).replace("severity: P1", "severity: P1\n  rto: 5m"))
    with pytest.raises(
        ScenarioError, match=r"objectives\.resiliency_policy: give rto/rpo or a resiliency_policy"
    ):
        load_scenario(path, registry=get_registry())

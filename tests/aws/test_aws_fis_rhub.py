"""FIS (through botocore's Stubber: moto lacks StartExperiment/GetExperiment/StopExperiment) and
Resilience Hub objectives (moto models resiliency policies)."""

from __future__ import annotations

from typing import Any

import pytest
from aws_world import boto, make_ctx

from drillbook.backends.aws.fis import FisStartExperiment
from drillbook.backends.aws.resiliencehub import policy_objectives
from drillbook.clock import FakeClock
from drillbook.errors import ConfigError


def _stubbed_fis(aws: dict[str, Any]) -> tuple[Any, Any]:
    from botocore.stub import Stubber

    fis = boto(aws, "fis")
    return fis, Stubber(fis)


def _experiment(status: str) -> dict[str, Any]:
    return {"experiment": {"id": "EXP1", "state": {"status": status}}}


def test_fis_start_poll_and_stop_on_revert(aws: dict[str, Any]) -> None:
    from botocore.stub import ANY

    fis, stub = _stubbed_fis(aws)
    clock = FakeClock()
    ctx = make_ctx(aws, {"template_id": "EXT1"}, clock=clock, deadline=clock.monotonic() + 600)
    fault = FisStartExperiment(ctx)
    fault._fis = fis  # the stubbed client
    stub.add_response(
        "get_experiment_template",
        {"experimentTemplate": {"id": "EXT1", "tags": {}}},
        {"id": "EXT1"},
    )
    stub.add_response(
        "start_experiment",
        _experiment("initiating"),
        {"experimentTemplateId": "EXT1", "clientToken": ANY, "tags": {"drillbook": "drill"}},
    )
    stub.add_response("get_experiment", _experiment("initiating"), {"id": "EXP1"})
    stub.add_response("get_experiment", _experiment("running"), {"id": "EXP1"})
    # revert (after a crash: a fresh fault rebuilt from state)
    stub.add_response("get_experiment", _experiment("running"), {"id": "EXP1"})
    stub.add_response("stop_experiment", _experiment("stopping"), {"id": "EXP1"})
    stub.add_response("get_experiment", _experiment("stopping"), {"id": "EXP1"})
    stub.add_response("get_experiment", _experiment("stopped"), {"id": "EXP1"})
    stub.add_response("get_experiment", _experiment("stopped"), {"id": "EXP1"})
    with stub:
        assert fault.resolve().chosen == ("EXT1",)
        fault.inject()
        assert fault.verify_injected()
        again = FisStartExperiment(ctx)
        again._fis = fis
        again.load_state(fault.state())
        again.revert()
        assert again.verify_reverted()
        stub.assert_no_pending_responses()


def test_fis_template_without_opt_in_tag_is_refused(aws: dict[str, Any]) -> None:
    from drillbook.errors import SafetyError

    fis, stub = _stubbed_fis(aws)
    fault = FisStartExperiment(
        make_ctx(aws, {"template_id": "EXT1"}, settings={"require_opt_in": True})
    )
    fault._fis = fis
    stub.add_response("get_experiment_template", {"experimentTemplate": {"id": "EXT1", "tags": {}}})
    with stub, pytest.raises(SafetyError, match="opt-in"):
        fault.resolve()


def test_resiliency_policy_objectives_from_moto(aws: dict[str, Any]) -> None:
    rh = boto(aws, "resiliencehub")
    policy = {
        "AZ": {"rtoInSecs": 300, "rpoInSecs": 60},
        "Hardware": {"rtoInSecs": 600, "rpoInSecs": 60},
        "Software": {"rtoInSecs": 900, "rpoInSecs": 0},
        "Region": {"rtoInSecs": 3600, "rpoInSecs": 900},
    }
    arn = rh.create_resiliency_policy(policyName="orders", tier="Critical", policy=policy)[
        "policy"
    ]["policyArn"]
    assert policy_objectives(aws, arn, "Region") == (3600.0, 900.0)
    assert policy_objectives(aws, arn, "AZ") == (300.0, 60.0)
    with pytest.raises(ConfigError, match="expected one of"):
        policy_objectives(aws, arn, "Meteor")


def test_resiliency_policy_missing_disruption_with_stubber(aws: dict[str, Any]) -> None:
    from botocore.stub import Stubber

    rh = boto(aws, "resiliencehub")
    arn = "arn:aws:resiliencehub:us-east-1:123456789012:resiliency-policy/x"
    with Stubber(rh) as stub:
        stub.add_response(
            "describe_resiliency_policy",
            {"policy": {"policy": {"AZ": {"rtoInSecs": 60, "rpoInSecs": 5}}}},
            {"policyArn": arn},
        )
        with pytest.raises(ConfigError, match="no Region objectives"):
            policy_objectives(aws, arn, "Region", resiliencehub=rh)

"""The account guard: a wrong account or region is refused before anything mutates."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from aws_world import CallLog, instance_states, make_ctx, run_instances

from drillbook.backends.aws import available
from drillbook.backends.aws.clients import client
from drillbook.backends.aws.config import AwsSettings
from drillbook.backends.aws.ec2 import Ec2Stop
from drillbook.errors import SafetyError

TAGS = {"drillbook:chaos": "allowed", "app": "web"}


def test_wrong_account_is_refused_before_any_mutating_call(
    aws: dict[str, Any], call_log: CallLog
) -> None:
    ids = run_instances(aws, 2, TAGS)
    fault = Ec2Stop(
        make_ctx(aws, {"tags": {"app": "web"}}, settings={"allowed_accounts": ["999999999999"]})
    )
    assert fault.resolve().chosen == tuple(ids)
    with pytest.raises(SafetyError, match="999999999999"):
        fault.preflight()
    # Even calling inject directly (bypassing the engine) is refused by the same guard.
    with pytest.raises(SafetyError):
        fault.inject()
    assert "GetCallerIdentity" in call_log.operations()
    assert call_log.mutating() == [], call_log.calls
    assert set(instance_states(aws, ids).values()) == {"running"}


def test_wrong_region_is_refused_without_calling_aws(
    aws: dict[str, Any], call_log: CallLog
) -> None:
    run_instances(aws, 1, TAGS, region="eu-west-1")
    fault = Ec2Stop(make_ctx(aws, {"tags": {"app": "web"}, "region": "eu-west-1"}))
    with pytest.raises(SafetyError, match="eu-west-1 is not in"):
        fault.preflight()
    assert "GetCallerIdentity" not in call_log.operations()
    assert call_log.mutating() == []


def test_right_account_and_region_pass_and_the_fault_runs(
    aws: dict[str, Any], call_log: CallLog
) -> None:
    ids = run_instances(aws, 1, TAGS)
    fault = Ec2Stop(make_ctx(aws, {"ids": ids}))
    fault.resolve()
    fault.preflight()
    fault.inject()
    assert call_log.mutating() == ["StopInstances"]
    assert instance_states(aws, ids)[ids[0]] in ("stopping", "stopped")


@pytest.mark.parametrize("missing", ["allowed_accounts", "allowed_regions"])
def test_empty_allowlists_refuse(aws: dict[str, Any], missing: str) -> None:
    ids = run_instances(aws, 1, TAGS)
    fault = Ec2Stop(make_ctx(aws, {"ids": ids}, settings={missing: []}))
    with pytest.raises(SafetyError, match=missing):
        fault.preflight()


def test_opt_in_tag_filters_candidates_and_refuses_named_instances(aws: dict[str, Any]) -> None:
    tagged = run_instances(aws, 2, TAGS)
    untagged = run_instances(aws, 3, {"app": "web"})
    fault = Ec2Stop(make_ctx(aws, {"tags": {"app": "web"}}, settings={"require_opt_in": True}))
    sel = fault.resolve()
    assert sel.chosen == tuple(tagged) and sel.candidates == 2
    named = Ec2Stop(make_ctx(aws, {"ids": untagged[:1]}, settings={"require_opt_in": True}))
    with pytest.raises(SafetyError, match="opt-in"):
        named.resolve()
    nothing = Ec2Stop(
        make_ctx(
            aws, {"ids": untagged}, settings={"require_opt_in": True, "opt_in_tag": "other=yes"}
        )
    )
    with pytest.raises(SafetyError):
        nothing.resolve()


def test_sandbox_never_uses_real_aws_implicitly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DRILLBOOK_AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAREALLOOKING")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
    reason = available({"sandbox": True})
    assert reason is not None and "DRILLBOOK_AWS_ENDPOINT_URL" in reason
    with pytest.raises(SafetyError, match="refusing"):
        client(AwsSettings.from_mapping({"sandbox": True}), "ec2", "us-east-1")
    # Without sandbox, configured credentials make the backend available (a real account).
    assert available({}) is None


def test_unreachable_endpoint_is_unavailable_with_a_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    reason = available({"endpoint_url": f"http://127.0.0.1:{port}"})
    assert reason is not None and "does not answer" in reason


def test_import_does_not_load_boto3() -> None:
    code = "import sys, drillbook.backends.aws; print('boto3' in sys.modules, 'botocore' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False"

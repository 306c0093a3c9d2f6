"""Helpers for the aws tests: plain boto3 clients to arrange and check state, Contexts, a call log."""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from drillbook.backends.base import Context
from drillbook.model import TargetSpec

#: An image id moto knows in every region (DescribeImages takes seconds on moto: avoid it).
AMI = os.environ.get("DRILLBOOK_AWS_AMI", "ami-12c6146b")
OPT_IN = [{"Key": "drillbook:chaos", "Value": "allowed"}]


class CallLog:
    """Every AWS API call made through drillbook's clients, as (service, operation)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def hook(self, made: Any) -> None:
        service = made.meta.service_model.service_name

        def record(model: Any, **_: Any) -> None:
            self.calls.append((service, model.name))

        made.meta.events.register("before-call", record)

    def operations(self) -> list[str]:
        return [op for _, op in self.calls]

    def mutating(self) -> list[str]:
        reads = ("Describe", "Get", "List", "Test")
        return [op for op in self.operations() if not op.startswith(reads)]


def boto(aws: Mapping[str, Any], service: str, region: str = "us-east-1") -> Any:
    """A plain boto3 client for arranging and checking state (not drillbook's own)."""
    import boto3

    return boto3.client(service, region_name=region, endpoint_url=aws.get("endpoint_url"))


def moto_json(url: str, path: str) -> Any:
    with urllib.request.urlopen(f"{url}{path}", timeout=10) as resp:
        return json.loads(resp.read())


def make_ctx(
    aws: Mapping[str, Any],
    params: Mapping[str, Any] | None = None,
    targets: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    settings: Mapping[str, Any] | None = None,
    tmp: Path | None = None,
    **kwargs: Any,
) -> Context:
    specs = tuple(TargetSpec(n, "aws", dict(p)) for n, p in (targets or {}).items())
    extra: dict[str, Any] = {}
    if tmp is not None:
        extra = {"workdir": tmp, "state_dir": tmp / ".drillbook"}
    return Context(
        params=dict(params or {}),
        targets=specs,
        settings={**aws, **(settings or {})},
        **extra,
        **kwargs,
    )


#: (region, instance id) made by run_instances: terminated after each test on a real account.
CREATED: list[tuple[str, str]] = []


def real_account() -> bool:
    return os.environ.get("DRILLBOOK_AWS_REAL") == "1"


def moto_only_resource(what: str) -> None:
    """Skip on a real account: ``what`` is slow or costly to create there (RDS, ASG, Route 53)."""
    import pytest

    if real_account():
        pytest.skip(f"{what} is created only in moto (slow or costly in a real account)")


def run_instances(
    aws: Mapping[str, Any], n: int, tags: Mapping[str, str], region: str = "us-east-1"
) -> list[str]:
    ec2 = boto(aws, "ec2", region)
    resp = ec2.run_instances(
        ImageId=AMI,
        InstanceType="t3.micro",
        MinCount=n,
        MaxCount=n,
        TagSpecifications=[
            {"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
        ],
    )
    made = sorted(i["InstanceId"] for i in resp["Instances"])
    CREATED.extend((region, i) for i in made)
    return made


def instance_states(
    aws: Mapping[str, Any], ids: list[str], region: str = "us-east-1"
) -> dict[str, str]:
    ec2 = boto(aws, "ec2", region)
    resp = ec2.describe_instances(InstanceIds=ids)
    return {
        i["InstanceId"]: i["State"]["Name"] for r in resp["Reservations"] for i in r["Instances"]
    }


def demo_estate(aws: Mapping[str, Any]) -> dict[str, str]:
    """The sandbox's demo estate (RDS, replica, ASG, Route 53): moto only, by design."""
    import pytest

    from drillbook.backends.aws.config import AwsSettings
    from drillbook.backends.aws.sandbox import create_demo

    if real_account():
        pytest.skip("the demo estate is created in moto only (sandbox), never in a real account")
    return create_demo(AwsSettings.from_mapping(aws))

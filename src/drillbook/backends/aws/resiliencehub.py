"""Objectives from an AWS Resilience Hub resiliency policy, so RTO/RPO are written once.

A policy holds an RTO and RPO per disruption type (``AZ``, ``Hardware``, ``Software``,
``Region``). A scenario about losing an AZ should be judged against the policy's ``AZ`` numbers,
not a copy of them that drifts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drillbook.errors import ConfigError

from .clients import client
from .config import AwsSettings

__all__ = ["DISRUPTION_TYPES", "policy_objectives"]

DISRUPTION_TYPES = ("AZ", "Hardware", "Software", "Region")


def policy_objectives(
    settings: Mapping[str, Any] | AwsSettings,
    policy_arn: str,
    disruption: str,
    *,
    region: str | None = None,
    resiliencehub: Any = None,
) -> tuple[float, float]:
    """``(rto_s, rpo_s)`` for ``disruption`` from the policy. ``resiliencehub`` is an optional
    client (tests pass a stubbed one)."""
    if disruption not in DISRUPTION_TYPES:
        raise ConfigError(f"expected one of {', '.join(DISRUPTION_TYPES)}", field="disruption")
    s = settings if isinstance(settings, AwsSettings) else AwsSettings.from_mapping(settings)
    if resiliencehub is None:
        arn_region = policy_arn.split(":")[3] if policy_arn.count(":") >= 5 else None
        resiliencehub = client(s, "resiliencehub", region or arn_region or s.region)
    policy = resiliencehub.describe_resiliency_policy(policyArn=policy_arn)["policy"]
    entry = policy.get("policy", {}).get(disruption)
    if not entry:
        raise ConfigError(f"policy {policy_arn} has no {disruption} objectives", field="disruption")
    return float(entry["rtoInSecs"]), float(entry["rpoInSecs"])

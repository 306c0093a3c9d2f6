"""The account guard: identity re-checked right before anything mutates.

ARCHITECTURE.md, safety model rule 4: before every injection, STS GetCallerIdentity must name an allowed
account and each region the fault will touch must be allowed. STS is read-only, so refusing here
means nothing mutating has been called. An empty allowlist refuses too: a drill must name the
account it is meant for, or a mistyped profile could chaos-test production.
"""

from __future__ import annotations

from collections.abc import Iterable

from drillbook.errors import SafetyError

from .clients import client
from .config import AwsSettings

__all__ = ["check_identity"]


def check_identity(settings: AwsSettings, regions: Iterable[str]) -> str:
    """Return the caller's account id, or raise SafetyError before anything mutates."""
    wanted = sorted(set(regions))
    if not settings.allowed_accounts:
        raise SafetyError(
            "backends.aws.allowed_accounts is empty: refusing to inject into any account"
        )
    if not settings.allowed_regions:
        raise SafetyError(
            "backends.aws.allowed_regions is empty: refusing to inject into any region"
        )
    for region in wanted:
        if region not in settings.allowed_regions:
            allowed = ", ".join(settings.allowed_regions)
            raise SafetyError(
                f"AWS region {region} is not in backends.aws.allowed_regions ({allowed})"
            )
    region = wanted[0] if wanted else settings.region
    try:
        account = str(client(settings, "sts", region, fast=True).get_caller_identity()["Account"])
    except SafetyError:
        raise
    except Exception as exc:
        raise SafetyError(f"AWS identity check failed (STS GetCallerIdentity): {exc}") from exc
    if account not in settings.allowed_accounts:
        raise SafetyError(
            f"AWS account {account} is not in backends.aws.allowed_accounts "
            f"({', '.join(settings.allowed_accounts)}): refusing to inject"
        )
    return account

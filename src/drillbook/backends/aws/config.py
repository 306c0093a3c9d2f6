"""How the aws backend reads ``backends.aws`` settings and ``targets.<name>`` params.

One place decides the endpoint, region and safety settings, so a fault, a probe and the sandbox
set-up can never disagree about which account they are talking to. The rule that matters most:
a sandbox (demo) target is only ever used against an explicit endpoint URL (moto), never against
whatever real account the ambient credentials happen to reach.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from drillbook.errors import ConfigError
from drillbook.model import TargetSpec

__all__ = [
    "DEFAULT_OPT_IN_TAG",
    "ENDPOINT_ENV",
    "AwsSettings",
    "target_region",
]

#: The environment variable `scripts/testenv up aws` exports.
ENDPOINT_ENV = "DRILLBOOK_AWS_ENDPOINT_URL"
DEFAULT_OPT_IN_TAG = "drillbook:chaos=allowed"


def _str_list(value: Any, field: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str | int):
        return (str(value),)
    if isinstance(value, list | tuple):
        return tuple(str(v) for v in value)
    raise ConfigError("expected a list of strings", field=field)


@dataclass(frozen=True)
class AwsSettings:
    """The ``backends.aws`` section, with the environment filled in."""

    endpoint_url: str | None
    region: str
    profile: str | None
    allowed_accounts: tuple[str, ...]
    allowed_regions: tuple[str, ...]
    require_opt_in: bool
    opt_in_key: str
    opt_in_value: str
    #: Demo resources are created by ``prepare`` (moto only).
    sandbox: bool

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any] | None) -> AwsSettings:
        raw = raw or {}
        endpoint = raw.get("endpoint_url") or os.environ.get(ENDPOINT_ENV) or None
        region = str(
            raw.get("region")
            or os.environ.get("AWS_REGION")
            or os.environ.get("AWS_DEFAULT_REGION")
            or "us-east-1"
        )
        tag = str(raw.get("opt_in_tag") or DEFAULT_OPT_IN_TAG)
        key, sep, value = tag.partition("=")
        if not key or not sep:
            raise ConfigError("expected KEY=VALUE", field="backends.aws.opt_in_tag")
        return cls(
            endpoint_url=str(endpoint) if endpoint else None,
            region=region,
            profile=str(raw["profile"]) if raw.get("profile") else None,
            allowed_accounts=_str_list(
                raw.get("allowed_accounts"), "backends.aws.allowed_accounts"
            ),
            allowed_regions=_str_list(raw.get("allowed_regions"), "backends.aws.allowed_regions"),
            require_opt_in=bool(raw.get("require_opt_in", False)),
            opt_in_key=key,
            opt_in_value=value,
            sandbox=bool(raw.get("sandbox", False)),
        )

    def has_credentials(self) -> bool:
        """Credentials are configured somewhere boto3 looks (without importing boto3)."""
        if self.profile or os.environ.get("AWS_PROFILE"):
            return True
        if os.environ.get("AWS_ACCESS_KEY_ID") and os.environ.get("AWS_SECRET_ACCESS_KEY"):
            return True
        if os.environ.get("AWS_WEB_IDENTITY_TOKEN_FILE") or os.environ.get(
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"
        ):
            return True
        home = os.path.expanduser("~")
        return os.path.exists(os.path.join(home, ".aws", "credentials"))

    def opted_in(self, tags: Mapping[str, str]) -> bool:
        """True when opt-in is not required, or the resource carries the opt-in tag."""
        return not self.require_opt_in or tags.get(self.opt_in_key) == self.opt_in_value


def target_region(target: TargetSpec, settings: AwsSettings) -> str:
    """A target's region: its own ``region`` param, else the backend's default."""
    return str(target.params.get("region") or settings.region)

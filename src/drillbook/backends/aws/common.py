"""What every aws fault, step and probe shares: settings, clients, the guard, tag selection.

Faults subclass :class:`AwsFault`, whose ``preflight`` runs the account guard for every region
the fault touches; ``inject`` and ``revert`` call :meth:`AwsFault.guard` again, because a
``drillbook rollback`` in a new process must not start instances in whatever account its
credentials now point at either.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from drillbook.backends.base import Context, Fault, Probe, RecoveryStep
from drillbook.errors import ConfigError, FaultError, SafetyError
from drillbook.model import TargetSpec

from .clients import client
from .config import AwsSettings, target_region
from .guard import check_identity

log = logging.getLogger("drillbook.aws")

__all__ = [
    "AwsFault",
    "AwsMixin",
    "AwsProbe",
    "AwsStep",
    "tag_dict",
]


def tag_dict(tags: Iterable[Mapping[str, Any]] | None) -> dict[str, str]:
    """AWS's ``[{"Key": k, "Value": v}]`` as a dict (case of the keys kept)."""
    return {str(t.get("Key")): str(t.get("Value", "")) for t in (tags or [])}


class AwsMixin:
    """Shared helpers; needs ``self.ctx``."""

    ctx: Context

    @property
    def settings(self) -> AwsSettings:
        return AwsSettings.from_mapping(self.ctx.settings)

    def target_spec(self, name: str | None = None) -> TargetSpec:
        """The named target, or the single one."""
        if name is None:
            return self.ctx.target()
        for target in self.ctx.targets:
            if target.name == name:
                return target
        raise ConfigError(f"unknown target {name!r}", field="targets")

    def tparam(self, key: str, default: Any = None) -> Any:
        """A fault/step param, falling back to the target's own param of the same name."""
        if key in self.ctx.params:
            return self.ctx.params[key]
        if len(self.ctx.targets) == 1:
            return self.ctx.targets[0].params.get(key, default)
        return default

    def require(self, key: str) -> Any:
        value = self.tparam(key)
        if value in (None, "", [], {}):
            raise ConfigError(f"required by {type(self).__name__}", field=key)
        return value

    def region(self) -> str:
        explicit = self.ctx.params.get("region")
        if explicit:
            return str(explicit)
        if len(self.ctx.targets) == 1:
            return target_region(self.ctx.targets[0], self.settings)
        return self.settings.region

    def client(self, service: str, region: str | None = None, *, fast: bool = False) -> Any:
        return client(self.settings, service, region or self.region(), fast=fast)

    def check_opt_in(self, what: str, tags: Mapping[str, str]) -> None:
        s = self.settings
        if not s.opted_in(tags):
            raise SafetyError(f"{what} lacks the opt-in tag {s.opt_in_key}={s.opt_in_value}")


class AwsFault(AwsMixin, Fault):
    """Base for aws faults: identity guard in ``preflight``, ``inject`` and ``revert``."""

    def regions(self) -> set[str]:
        """Every region this fault mutates (the guard checks each)."""
        return {self.region()}

    def guard(self) -> str:
        return check_identity(self.settings, self.regions())

    def preflight(self) -> None:
        self.guard()

    def fail(self, message: str) -> FaultError:
        return FaultError(f"{type(self).__name__}: {message}")


class AwsStep(AwsMixin, RecoveryStep):
    """Base for aws recovery steps: they mutate too, so they pass the guard first."""

    def regions(self) -> set[str]:
        """Regions this step mutates; empty for global services (Route 53): account only."""
        return {self.region()}

    def guard(self) -> str:
        return check_identity(self.settings, self.regions())


class AwsProbe(AwsMixin, Probe):
    """Base for aws probes: read-only, fast clients, no guard (reading is not injecting)."""

    _clients: dict[tuple[str, str], Any]
    #: (service, region or None for the probe's own region) made up front: making a client loads
    #: botocore's service model, which must not eat into the first check's timeout.
    warm: tuple[tuple[str, str | None], ...] = ()

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self._clients = {}
        for service, region in self.warm:
            try:
                self.fast_client(service, region)
            except Exception as exc:
                log.debug("aws probe: cannot make a %s client yet: %s", service, exc)

    def fast_client(self, service: str, region: str | None = None) -> Any:
        key = (service, region or self.region())
        if key not in self._clients:
            self._clients[key] = self.client(service, key[1], fast=True)
        return self._clients[key]

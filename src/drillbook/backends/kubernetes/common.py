"""Shared plumbing for the Kubernetes faults, probes and steps.

Every Kubernetes fault inherits the same safety sequence from :class:`KubeFault`: the static
allowlist check in ``resolve`` (before any API call), the live identity and opt-in re-check in
``preflight``, both again at the top of ``inject``, and in a reaper process ``load_state`` refuses
to revert against a cluster other than the one the state was recorded on.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from typing import Any

from drillbook.backends.base import Context, Fault, Probe, RecoveryStep
from drillbook.clock import get_clock
from drillbook.errors import ConfigError, FaultError, SafetyError
from drillbook.model import ProbeResult

from .client import REQUEST_TIMEOUT, Kube, api_error_status, describe
from .targets import KubeTarget, Scope

__all__ = [
    "MANAGED_BY",
    "MARK_ANNOTATION",
    "KubeFault",
    "KubeProbe",
    "KubeStep",
    "T",
    "int_param",
    "is_not_found",
    "managed_labels",
    "short_hash",
    "wait_until",
]

#: Objects drillbook creates carry this label, so people (and the reaper) can find them.
MANAGED_BY = {"app.kubernetes.io/managed-by": "drillbook"}
#: Nodes and workloads drillbook changed carry this annotation (value: "<target>/<token>").
MARK_ANNOTATION = "drillbook.io/changed-by"
T = REQUEST_TIMEOUT


def managed_labels(target: str) -> dict[str, str]:
    return {**MANAGED_BY, "drillbook.io/target": target}


def short_hash(*parts: str) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:10]


def is_not_found(exc: BaseException) -> bool:
    return api_error_status(exc) == 404


def int_param(
    params: Mapping[str, Any], name: str, default: int | None, minimum: int = 0
) -> int | None:
    value = params.get(name, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"expected an integer >= {minimum}, got {value!r}", field=name)
    return value


def wait_until(
    ctx: Context,
    what: str,
    condition: Callable[[], bool],
    timeout_s: float,
    interval_s: float = 0.2,
    error: type[Exception] = FaultError,
) -> None:
    """Poll ``condition`` until true; FaultError after ``timeout_s`` or the drill's deadline."""
    clock = ctx.clock
    end = clock.monotonic() + timeout_s
    if ctx.deadline is not None:
        end = min(end, ctx.deadline)
    while True:
        if condition():
            return
        if clock.monotonic() >= end:
            raise error(f"timed out after {timeout_s:g}s waiting for {what}")
        clock.sleep(interval_s)


class _KubeBound:
    ctx: Context

    def _setup(self, ctx: Context) -> None:
        self.target = KubeTarget.from_spec(ctx.target())
        self.scope = Scope.from_settings(ctx.settings)
        self._kube: Kube | None = None

    @property
    def kube(self) -> Kube:
        if self._kube is None:
            self._kube = self.target.kube(self.ctx.workdir)
        return self._kube

    @property
    def ns(self) -> str:
        return self.target.namespace

    def get(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Read an object; None if it does not exist."""
        try:
            return fn(*args, _request_timeout=T)
        except Exception as exc:
            if is_not_found(exc):
                return None
            raise


class KubeFault(_KubeBound, Fault):
    """Base of every Kubernetes fault; subclasses implement ``_inject`` and friends."""

    #: Destructive faults refuse to run without a selector (label selector or explicit name).
    needs_selector = True

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self._setup(ctx)
        self._checked = False
        self._state: dict[str, Any] = {}

    # -- safety ----------------------------------------------------------------------------
    def selector(self) -> str:
        """The fault's label selector: the target's, narrowed by a ``selector`` param."""
        from .selectors import combine

        extra = self.ctx.param("selector")
        if isinstance(extra, Mapping):
            extra = ",".join(f"{k}={v}" for k, v in extra.items())
        return combine(self.target.selector, extra)

    def has_selector(self) -> bool:
        return bool(self.selector())

    def check_static(self) -> None:
        self.scope.check_static(self.target, self.ctx.workdir)
        if not self.read_only and self.needs_selector and not self.has_selector():
            raise SafetyError(
                f"{type(self).__name__} changes its targets and target {self.target.name!r} has no"
                " selector; add `selector:` to the target or the fault"
            )

    def preflight(self) -> None:
        self.check_static()
        self.scope.check_live(self.target, self.kube, self.ctx.workdir)
        self._checked = True

    def guard_inject(self) -> None:
        """Called first in every ``inject``: never act without the identity re-check."""
        if not self._checked:
            self.preflight()
        self._state.update(
            context=self.kube.identity.context,
            server=self.kube.identity.server,
            namespace=self.ns,
        )

    # -- crash safety ----------------------------------------------------------------------
    def state(self) -> Mapping[str, Any]:
        return dict(self._state)

    def load_state(self, state: Mapping[str, Any]) -> None:
        server = state.get("server")
        if server and server != self.kube.identity.server:
            raise SafetyError(
                f"state was recorded against {server}, but target {self.target.name!r} now points"
                f" at {self.kube.identity.server}; refusing to revert on another cluster"
            )
        self._state = dict(state)

    def token(self) -> str:
        """A marker unique to this injection, written on what we change (for fallback reverts).

        Saved as ``marker``: the intent ledger on disk hides values under secret-looking keys
        such as ``token``, and a revert rebuilt from it after a crash needs the real value."""
        tok = self._state.get("marker")
        if not tok:
            tok = short_hash(self.target.name, type(self).__name__, str(self.ctx.clock.wall()))
            self._state["marker"] = tok
        return f"{self.target.name}/{tok}"


class KubeProbe(_KubeBound, Probe):
    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self._setup(ctx)

    def safe_check(self) -> ProbeResult:
        """``check`` with API errors turned into a one-line not-ok result."""
        start = get_clock().monotonic()
        try:
            return self.check()
        except Exception as exc:
            return ProbeResult(False, get_clock().monotonic() - start, describe(exc))


class KubeStep(_KubeBound, RecoveryStep):
    """Recovery steps act on allowlisted namespaces only, like faults."""

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self._setup(ctx)

    def check(self) -> None:
        self.scope.check_static(self.target, self.ctx.workdir)

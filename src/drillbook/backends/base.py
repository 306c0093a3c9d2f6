"""The narrow seam between the engine and every platform.

The engine sees faults, probes, recovery steps and ledgers only through the four abstract classes
here, and finds them by name in a :class:`Registry`. A backend is a module whose ``register``
function adds its names; backends are found through the ``drillbook.backends`` entry-point group,
so a third party can add one without touching the core. Nothing here imports an SDK, and
``register`` imports no implementation module either: factories are named by :func:`lazy`
(``"module:Class"``) and imported when first called, so building the registry costs a drill only
the names, and a local drill never imports the kubernetes, aws, docker or postgres code.

Crash safety shapes the Fault contract: after ``inject`` the engine stores ``state()`` in the
fsynced intent ledger. If the harness dies, ``drillbook rollback`` rebuilds the fault from its
type, params, target names and that state (``load_state``) in a new process and calls ``revert``.
So a fault must keep everything revert needs in ``state()``, never only in memory.
"""

from __future__ import annotations

import importlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar

from drillbook.clock import Clock, get_clock
from drillbook.errors import ConfigError
from drillbook.model import ProbeResult, TargetSpec

__all__ = [
    "BUILTIN_BACKENDS",
    "COMMAND",
    "DURATION",
    "ENTRY_POINT_GROUP",
    "BackendInfo",
    "Context",
    "Fault",
    "LazyFactory",
    "Ledger",
    "LedgerMeasure",
    "Prepare",
    "Probe",
    "RecoveryStep",
    "Registration",
    "Registry",
    "Selection",
    "get_registry",
    "lazy",
    "params",
]

log = logging.getLogger("drillbook")

#: The entry-point group a backend package declares its ``register`` function in.
ENTRY_POINT_GROUP = "drillbook.backends"
#: Backends shipped with drillbook, loaded even when the package's entry points are not installed
#: (running from a source tree).
BUILTIN_BACKENDS: Mapping[str, str] = {
    "local": "drillbook.backends.local:register",
    "postgres": "drillbook.backends.postgres:register",
    "docker": "drillbook.backends.docker:register",
    "kubernetes": "drillbook.backends.kubernetes:register",
    "aws": "drillbook.backends.aws:register",
    "monitoring": "drillbook.backends.monitoring:register",
}


@dataclass(frozen=True)
class Context:
    """Everything a fault, probe, step or ledger may use. Built by the engine (or the reaper)."""

    params: Mapping[str, Any]
    targets: tuple[TargetSpec, ...] = ()
    environment: str = "sandbox"
    #: The config's ``backends.<name>`` section for this backend (allowlists, identity, opt-in).
    settings: Mapping[str, Any] = field(default_factory=dict)
    clock: Clock = field(default_factory=get_clock)
    #: Project root: relative paths in params and targets resolve against it.
    workdir: Path = field(default_factory=Path.cwd)
    #: drillbook's own state folder (intent ledger, sandbox state): ``<workdir>/.drillbook``.
    state_dir: Path = field(default_factory=lambda: Path.cwd() / ".drillbook")
    #: The drill's deadline on the monotonic clock, when there is one; waits must not outlive it.
    deadline: float | None = None
    #: Where a step may keep files a reader of the report needs (a scratch server's log): the
    #: drill's folder in the run's report folder; None outside a journaled run.
    artifacts_dir: Path | None = None
    #: Every target of this backend in drillbook.yaml, the fault's own included: for a revert
    #: that must look at the rest of a cluster (a killed primary must not start again beside
    #: the standby the drill promoted).
    peers: tuple[TargetSpec, ...] = ()

    def target(self) -> TargetSpec:
        """The single target, for faults and probes that act on exactly one."""
        if len(self.targets) != 1:
            names = ", ".join(t.name for t in self.targets) or "none"
            raise ConfigError(f"expected exactly one target, got {names}", field="targets")
        return self.targets[0]

    def param(self, name: str, default: Any = None) -> Any:
        return self.params.get(name, default)


@dataclass(frozen=True)
class Selection:
    """What a fault resolved its selector to, for the blast-radius caps."""

    chosen: tuple[str, ...]
    candidates: int  # how many matched before any count/percent was applied
    #: The seed of a random subset (:func:`drillbook.backends.selection.select`), recorded in the
    #: journal so ``seed:`` can replay the drill; None when nothing was drawn.
    seed: int | None = None


class Fault(ABC):
    """One injected failure. ``revert`` must be idempotent and safe to call from another process."""

    #: The one declaration of whether a fault changes its targets' state. Every fault does
    #: unless it says otherwise, and so gets the production guard, the max_targets/max_percent
    #: caps and a target to act on. Only a fault that changes nothing (an observation staged as
    #: a fault) may set this, and none of the built-in ones does: moving traffic, suspending a
    #: process or inverting a health check all change state.
    read_only: ClassVar[bool] = False

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def resolve(self) -> Selection:
        """Resolve the targets this fault will touch. Default: the configured target names."""
        names = tuple(t.name for t in self.ctx.targets)
        return Selection(chosen=names, candidates=len(names))

    def preflight(self) -> None:
        """Re-check identity and opt-in right before injecting; raise SafetyError to refuse."""

    def plan(self) -> str:
        """One line saying what will be done where (dry run, journal, report)."""
        where = ", ".join(t.name for t in self.ctx.targets)
        return f"{type(self).__name__} on {where}"

    @abstractmethod
    def inject(self) -> None:
        """Cause the failure. Record in ``state()`` what revert will need."""

    @abstractmethod
    def verify_injected(self) -> bool:
        """True once the failure is observable on the target."""

    @abstractmethod
    def revert(self) -> None:
        """Undo the failure; idempotent; must work after ``load_state`` in a fresh process."""

    def verify_reverted(self) -> bool:
        """True when nothing of the fault remains (the reaper and the engine both check)."""
        return True

    def revert_report(self) -> str:
        """What the last ``revert`` found, in one line for the timeline ("" for nothing to add).

        Why: the target may not be the object the fault touched (a container Compose re-created
        has a new ID); the report says which object is the target now, and in what state.
        """
        return ""

    def state(self) -> Mapping[str, Any]:
        """JSON-serialisable facts revert needs (pids, previous image, cordoned node...)."""
        return {}

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Restore ``state()`` in a new process before ``revert``."""


class Probe(ABC):
    """One health check. ``check`` never raises for an unhealthy target: it returns not-ok."""

    #: Set by probes whose ``acheck`` bounds itself to this many seconds (a native async probe
    #: with its own timeout): the scheduler then skips its own timer for them, one fewer timer
    #: per probe when a thousand run at 10 Hz. None: the scheduler bounds the call.
    deadline_s: float | None = None

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    @abstractmethod
    def check(self) -> ProbeResult: ...

    async def acheck(self) -> ProbeResult:
        """Asynchronous form used by the probe scheduler; override for native async I/O."""
        import asyncio  # here, not at import time: `import drillbook` must stay cheap

        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, self.safe_check)

    def safe_check(self) -> ProbeResult:
        """``check`` with any exception turned into a not-ok result (a probe must not crash a drill)."""
        start = get_clock().monotonic()
        try:
            return self.check()
        except Exception as exc:
            return ProbeResult(
                False, get_clock().monotonic() - start, f"{type(exc).__name__}: {exc}"
            )

    async def aopen(self) -> None:
        """Get ready on the running loop before the first tick (open a kept-alive connection).

        Why: a thousand probes opening their connections inside the first interval would make
        the first tick late by the cost of a thousand connects; the scheduler calls this for
        every probe before it starts the clock. It must not raise for an unreachable target."""

    async def aclose(self) -> None:
        """Release what ``acheck`` keeps on the running loop (a kept-alive connection).

        Called on that loop before it stops, because transports cannot be closed from another
        thread or after their loop is gone."""

    def close(self) -> None:
        """Release connections; called when the drill ends."""


class RecoveryStep(ABC):
    """A scripted recovery action, run and timed by the engine. Raise RecoveryError on failure."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    @abstractmethod
    def run(self) -> str:
        """Do the step; return a one-line detail for the timeline. Respect ``ctx.deadline``."""


@dataclass(frozen=True)
class LedgerMeasure:
    """What the RPO ledger found after recovery."""

    rpa_s: float | None  # span of the acknowledged writes lost (drillbook.dataloss.data_loss)
    lost_writes: int  # acknowledged writes that are gone
    acknowledged: int
    survived: int
    detail: str = ""
    # Epoch seconds (the harness's clock); None when nothing was lost.
    oldest_lost_at: float | None = None  # acknowledgement of the oldest lost write
    newest_lost_at: float | None = None  # acknowledgement of the newest lost write
    recovery_point: float | None = None  # every acknowledged write before it survived
    lost_before_inject: int = 0  # of lost_writes, acknowledged by t_inject


class Ledger(ABC):
    """The RPO writer/reader: commits sequence-numbered rows before and during the fault."""

    def __init__(self, ctx: Context, rate_per_s: float) -> None:
        self.ctx = ctx
        self.rate_per_s = rate_per_s

    @abstractmethod
    def start(self) -> None:
        """Create the ledger table if needed and start writing in the background."""

    @abstractmethod
    def stop(self) -> None:
        """Stop writing (idempotent)."""

    @abstractmethod
    def measure(self, t_inject_wall_epoch: float) -> LedgerMeasure:
        """Read back what survived; compare with what was acknowledged."""

    def history_start(self) -> float | None:
        """Wall epoch of the first acknowledged write (None: none yet). The engine waits until
        the history is longer than the RPO before the fault, and judges it afterwards."""
        return None


T = TypeVar("T")

#: A duration parameter: seconds (>= 0) or a spelling :func:`drillbook.durations.parse_duration`
#: accepts (``90s``, ``5m``, ``PT5M``).
DURATION: Mapping[str, Any] = {
    "oneOf": [
        {"type": "number", "minimum": 0},
        {"type": "string", "minLength": 1, "maxLength": 64},
    ]
}

#: A command: one shell string, or an argument list (run without a shell).
COMMAND: Mapping[str, Any] = {
    "oneOf": [
        {"type": "string", "minLength": 1},
        {"type": "array", "items": {"type": "string"}, "minItems": 1},
    ]
}


def params(
    properties: Mapping[str, Any] | None = None, *, required: Sequence[str] = ()
) -> dict[str, Any]:
    """A strict ``params_schema``: these properties, these required, and nothing else.

    Why strict: a mistyped parameter (``percnt: 10``) that is silently ignored makes the fault
    hit every target; with ``additionalProperties: false`` ``drillbook validate`` names it.
    """
    return {
        "type": "object",
        "properties": dict(properties or {}),
        "required": list(required),
        "additionalProperties": False,
    }


class LazyFactory(Generic[T]):
    """A factory named ``"module:attr"``, imported on its first call and then cached.

    Why: a registry holds some eighty names, and a drill should import only the code behind the
    few it uses (a local drill needs no SDK, and a backend whose SDK is missing must not stop the
    others). A spec that does not import fails where the factory is
    used, as a :class:`ConfigError` naming the spec; tests resolve every built-in spec so a typo
    fails there, not in a drill. ``resolve`` returns the target itself (usually the class).
    """

    __slots__ = ("_target", "spec")

    def __init__(self, spec: str) -> None:
        module, sep, attr = spec.partition(":")
        if not (module and sep and attr):
            raise ValueError(f"a lazy factory is named 'module:attr', got {spec!r}")
        self.spec = spec
        self._target: Callable[[Context], T] | None = None

    def resolve(self) -> Callable[[Context], T]:
        """Import the module and return the named attribute (the class or function)."""
        target = self._target
        if target is None:
            module_name, _, attr = self.spec.partition(":")
            try:
                found: Any = importlib.import_module(module_name)
                for part in attr.split("."):
                    found = getattr(found, part)
            except Exception as exc:
                raise ConfigError(
                    f"factory {self.spec} failed to load: {type(exc).__name__}: {exc}"
                ) from exc
            if not callable(found):
                raise ConfigError(f"factory {self.spec} is a {type(found).__name__}, not callable")
            self._target = target = found
        return target

    def __call__(self, ctx: Context) -> T:
        return self.resolve()(ctx)

    def __repr__(self) -> str:
        return f"lazy({self.spec!r})"


def lazy(spec: str) -> LazyFactory[Any]:
    """A factory for ``"package.module:Class"`` that imports it only when a drill builds one."""
    return LazyFactory(spec)


@dataclass(frozen=True)
class Registration(Generic[T]):
    name: str
    backend: str
    #: Builds one from a Context. Built-in backends pass a :func:`lazy` factory; any callable
    #: works (a class, a function, a wrapper around another factory).
    factory: Callable[[Context], T]
    help: str = ""
    #: JSON Schema for ``params``; ``drillbook validate`` checks scenarios against it.
    params_schema: Mapping[str, Any] | None = None


#: A backend's session set-up: given a Context whose ``targets`` are every target the collected
#: drills use, bring up what they need (the sandbox, a demo service, images) and tear it down on
#: exit. Entered once per pytest session, only when a selected drill needs the backend.
Prepare = Callable[[Context], AbstractContextManager[None]]


@dataclass(frozen=True)
class BackendInfo:
    name: str
    #: Returns None when the platform is reachable, else a one-line reason. Must be cheap-ish and
    #: must not import the SDK at registration time.
    available: Callable[[Mapping[str, Any]], str | None]
    help: str = ""
    prepare: Prepare | None = None


class Registry:
    """Names → factories, filled by each backend's ``register(registry)``."""

    def __init__(self) -> None:
        self.backends: dict[str, BackendInfo] = {}
        self.faults: dict[str, Registration[Fault]] = {}
        self.probes: dict[str, Registration[Probe]] = {}
        self.recoveries: dict[str, Registration[RecoveryStep]] = {}
        self.ledgers: dict[str, Registration[Ledger]] = {}
        self.broken: dict[str, str] = {}  # backend name -> why it failed to load

    def add_backend(
        self,
        name: str,
        available: Callable[[Mapping[str, Any]], str | None],
        help: str = "",
        *,
        prepare: Prepare | None = None,
    ) -> None:
        self.backends[name] = BackendInfo(name, available, help, prepare)

    def add_fault(
        self,
        name: str,
        backend: str,
        factory: Callable[[Context], Fault],
        *,
        help: str = "",
        params_schema: Mapping[str, Any] | None = None,
    ) -> None:
        self.faults[name] = Registration(name, backend, factory, help, params_schema)

    def add_probe(
        self,
        name: str,
        backend: str,
        factory: Callable[[Context], Probe],
        *,
        help: str = "",
        params_schema: Mapping[str, Any] | None = None,
    ) -> None:
        self.probes[name] = Registration(name, backend, factory, help, params_schema)

    def add_recovery(
        self,
        name: str,
        backend: str,
        factory: Callable[[Context], RecoveryStep],
        *,
        help: str = "",
        params_schema: Mapping[str, Any] | None = None,
    ) -> None:
        self.recoveries[name] = Registration(name, backend, factory, help, params_schema)

    def add_ledger(
        self,
        name: str,
        backend: str,
        factory: Callable[[Context], Ledger],
        *,
        help: str = "",
    ) -> None:
        # The ledger factory receives the Context; rate comes from ctx.params["rate_per_s"].
        self.ledgers[name] = Registration(name, backend, factory, help)

    def _lookup(
        self, kind: str, table: Mapping[str, Registration[T]], name: str
    ) -> Registration[T]:
        try:
            return table[name]
        except KeyError:
            known = ", ".join(sorted(table)) or "none"
            raise ConfigError(f"unknown {kind} {name!r}; known: {known}") from None

    def fault(self, name: str) -> Registration[Fault]:
        return self._lookup("fault", self.faults, name)

    def fault_is_read_only(self, name: str) -> bool:
        """What the fault's class declares (:attr:`Fault.read_only`); imports its module. A
        factory that does not load is not read-only: the guards apply when in doubt."""
        factory: Any = self.fault(name).factory
        try:
            target = factory.resolve() if isinstance(factory, LazyFactory) else factory
        except ConfigError:
            return False
        return getattr(target, "read_only", False) is True

    def probe(self, name: str) -> Registration[Probe]:
        return self._lookup("probe", self.probes, name)

    def recovery(self, name: str) -> Registration[RecoveryStep]:
        return self._lookup("recovery step", self.recoveries, name)

    def ledger(self, name: str) -> Registration[Ledger]:
        return self._lookup("ledger", self.ledgers, name)

    def load(self, spec: str, name: str) -> None:
        """Import ``module:function`` and call it with this registry; remember failures."""
        module_name, _, func_name = spec.partition(":")
        try:
            module = importlib.import_module(module_name)
            register: Callable[[Registry], None] = getattr(module, func_name or "register")
            register(self)
        except Exception as exc:
            self.broken[name] = f"{type(exc).__name__}: {exc}"
            log.debug("backend %s failed to load: %s", name, exc)


_registry: Registry | None = None


def get_registry() -> Registry:
    """The process-wide registry: the ``drillbook.backends`` entry points, then the built-in
    backends they do not replace (an installed package may supply its own ``docker``)."""
    global _registry
    if _registry is None:
        # Here, not at import: `import drillbook` (which imports this module) should not load
        # the packaging metadata machinery until a registry is wanted.
        from importlib.metadata import entry_points

        registry = Registry()
        seen: set[str] = set()
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            seen.add(ep.name)
            registry.load(ep.value, ep.name)
        for name, spec in BUILTIN_BACKENDS.items():
            if name not in seen:
                registry.load(spec, name)
        _registry = registry
    return _registry

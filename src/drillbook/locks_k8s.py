"""One drill per target across in-cluster runners: a Kubernetes Lease per target.

Runners inside a cluster (CronJobs in several namespaces, a Job started by hand) share no state
folder and may share no database, but they share the apiserver. Each target gets one
``coordination.k8s.io/v1`` Lease in a configured namespace; its ``holderIdentity`` names the run
(run id, pid, host) and an annotation carries the full holder record, so a refused drill names
the holder. While a drill holds the target, a small thread renews ``renewTime`` every third of
``leaseDurationSeconds``. A holder that died stops renewing, and its lease expires by its own
duration: a later drill takes it over once ``renewTime + leaseDurationSeconds`` (plus a margin for
clock skew between hosts) has passed, and says whom it took it from. Every write carries the
``resourceVersion`` it read, so two runners racing for one expired lease cannot both win: the
apiserver refuses the second write (HTTP 409) and that runner is refused.

A clean release deletes the lease (only if it is still ours: a delete precondition on its
``resourceVersion``); an unclean one (a revert that did not hold) just stops renewing, so the
record stays for the next drill to find, like the file arbiter's. The ``kubernetes`` client is
imported only when a lease is taken.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from drillbook.errors import ConfigError, SafetyError
from drillbook.locks import Holder, TargetBusy, TargetLock

__all__ = ["LeaseArbiter", "LeaseSettings", "lease_name", "parse_lock_setting"]

#: The annotation holding the holder's full record (JSON of :class:`drillbook.locks.Holder`).
HOLDER_ANNOTATION = "drillbook.io/holder"
_LABELS = {"app.kubernetes.io/managed-by": "drillbook", "drillbook.io/lock": "target"}
_TIMEOUT: tuple[float, float] = (3.05, 10.0)


@dataclass(frozen=True)
class LeaseSettings:
    """``safety.lock: {kubernetes: {...}}`` from drillbook.yaml."""

    namespace: str
    context: str | None = None
    kubeconfig: str | None = None
    lease_duration_s: int = 15
    #: Added to a lease's duration before it is judged expired: the holder's clock wrote
    #: ``renewTime``, ours reads it, and an error here must keep a live holder's lease.
    skew_margin_s: float = 2.0


def parse_lock_setting(
    value: Any, err: Callable[[tuple[str | int, ...], str], ConfigError]
) -> LeaseSettings | None:
    """Validate ``safety.lock``; None means the default (lock files, or PostgreSQL when the
    history is a shared PostgreSQL store). ``err(path, message)`` builds the error naming the
    file, line and field."""
    if value is None:
        return None
    if not isinstance(value, Mapping) or set(value) != {"kubernetes"}:
        raise err(("safety", "lock"), "expected `kubernetes: {namespace: ...}`")
    body = value["kubernetes"]
    at: tuple[str, ...] = ("safety", "lock", "kubernetes")
    if not isinstance(body, Mapping):
        raise err(at, "expected a mapping")
    known = {"namespace", "context", "kubeconfig", "lease_duration", "skew_margin"}
    for key in body:
        if key not in known:
            raise err((*at, key), f"unknown key; expected one of: {', '.join(sorted(known))}")
    ns = body.get("namespace")
    if not isinstance(ns, str) or not re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", ns):
        raise err((*at, "namespace"), "expected a namespace name (a DNS label)")
    for key in ("context", "kubeconfig"):
        if body.get(key) is not None and not isinstance(body[key], str):
            raise err((*at, key), "expected a string")
    duration = body.get("lease_duration", LeaseSettings.lease_duration_s)
    if isinstance(duration, bool) or not isinstance(duration, int) or not 1 <= duration <= 3600:
        raise err((*at, "lease_duration"), "expected whole seconds in 1..3600")
    margin = body.get("skew_margin", LeaseSettings.skew_margin_s)
    if isinstance(margin, bool) or not isinstance(margin, int | float) or margin < 0:
        raise err((*at, "skew_margin"), "expected seconds >= 0")
    return LeaseSettings(ns, body.get("context"), body.get("kubeconfig"), duration, float(margin))


def lease_name(target: str) -> str:
    """A valid, stable Lease name for ``target``: a DNS-1123 slug, and a hash of the exact name
    whenever the slug had to change or cut it (so two targets never share a lease)."""
    slug = re.sub(r"[^a-z0-9-]+", "-", target.lower()).strip("-")
    name = f"drillbook-{slug}" if slug else "drillbook"
    if slug != target or len(name) > 63:
        digest = hashlib.sha256(target.encode()).hexdigest()[:10]
        name = f"{name[:52].rstrip('-')}-{digest}"
    return name


def _identity(holder: Holder) -> str:
    return f"{holder.run_id}/{holder.pid}@{holder.host}"


def _micro(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def _epoch(value: Any) -> float | None:
    if isinstance(value, datetime):
        return value.timestamp()
    return None


def _holder_of(lease: Any) -> Holder | None:
    """The record a lease carries (None when it is free or unreadable)."""
    spec = lease.spec
    if spec is None or not spec.holder_identity:
        return None
    raw = ((lease.metadata.annotations or {}) if lease.metadata else {}).get(HOLDER_ANNOTATION)
    try:
        data = json.loads(raw) if raw else None
        if isinstance(data, dict):
            return Holder(**data)
    except (ValueError, TypeError):
        pass
    since = _epoch(spec.acquire_time) or 0.0
    return Holder(str(spec.holder_identity), "?", 0, "?", since, since)


class _LeaseLock:
    """A held lease and its renewal thread."""

    def __init__(
        self,
        arbiter: LeaseArbiter,
        target: str,
        lease: Any,
        holder: Holder,
        taken_over: Holder | None,
    ) -> None:
        self.target = target
        self.taken_over = taken_over
        self._lost: str | None = None  # why the lease stopped being ours, if it did
        self._renewed = arbiter.now()  # the last renewal the API server accepted
        self._error = ""  # the last renewal's failure, while they fail
        self._arbiter = arbiter
        self._lease = lease
        self._identity = _identity(holder)
        self._stop = threading.Event()
        self._mutex = threading.Lock()
        self._thread = threading.Thread(
            target=self._renew_loop, name=f"drillbook-lease-{target}", daemon=True
        )
        self._thread.start()

    def _renew_loop(self) -> None:
        every = max(0.2, self._arbiter.settings.lease_duration_s / 3)
        while not self._stop.wait(every):
            with self._mutex:
                if self._stop.is_set():
                    return
                try:
                    self._renew()
                    self._renewed, self._error = self._arbiter.now(), ""
                except Exception as exc:  # the next tick retries; expiry is the backstop
                    status = getattr(exc, "status", None)
                    self._error = f"HTTP {status}" if status else type(exc).__name__
                    if status in (404, 409):
                        self._lost = f"lease renewal refused (HTTP {status})"
                        print(
                            f"[drillbook] target {self.target!r}: lost its lease: {self._lost}",
                            file=sys.stderr,
                        )
                        return

    def lost(self) -> str | None:
        if self._lost is not None:
            return self._lost
        # Renewals that keep failing (the API server unreachable) let the lease expire: from
        # then on another runner may take it, whatever this process believes.
        silent = self._arbiter.now() - self._renewed
        if silent > self._arbiter.settings.lease_duration_s:
            return f"lease not renewed for {silent:.0f}s ({self._error or 'no answer'}): it expired"
        return None

    def _renew(self) -> None:
        lease = self._lease
        lease.spec.renew_time = _micro(self._arbiter.now())
        self._lease = self._arbiter.api().replace_namespaced_lease(
            lease.metadata.name,
            self._arbiter.settings.namespace,
            lease,
            _request_timeout=_TIMEOUT,
        )

    def release(self, *, clean: bool = True) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        with self._mutex:
            pass  # a renewal in flight has finished
        self._thread.join(timeout=5)
        if not clean or self.lost():
            return  # the record stays; the lease expires by its own duration
        from kubernetes import client

        meta = self._lease.metadata
        self._arbiter.api().delete_namespaced_lease(
            meta.name,
            self._arbiter.settings.namespace,
            body=client.V1DeleteOptions(
                preconditions=client.V1Preconditions(resource_version=meta.resource_version)
            ),
            _request_timeout=_TIMEOUT,
        )


class LeaseArbiter:
    """Target locks held as Leases in one namespace (see the module's docstring)."""

    def __init__(self, settings: LeaseSettings, workdir: Any = None) -> None:
        self.settings = settings
        self._workdir = workdir
        self._api: Any = None

    @staticmethod
    def now() -> float:
        from drillbook.clock import get_clock

        return get_clock().wall().timestamp()

    def api(self) -> Any:
        if self._api is None:
            from drillbook.backends.kubernetes.client import connect
            from kubernetes import client

            kube = connect(self.settings.kubeconfig, self.settings.context, self._workdir)
            self._api = client.CoordinationV1Api(kube.api_client)
        return self._api

    def acquire(self, target: str, holder: Holder) -> TargetLock:
        try:
            return self._acquire(target, holder)
        except (TargetBusy, SafetyError):
            raise
        except Exception as exc:
            from drillbook.backends.kubernetes.client import describe

            raise SafetyError(
                f"target {target!r}: the Kubernetes Lease could not be taken "
                f"({describe(exc)}); refusing to drill without it"
            ) from None

    def _acquire(self, target: str, holder: Holder) -> TargetLock:
        from kubernetes import client

        name = lease_name(target)
        ns = self.settings.namespace
        api = self.api()
        now = self.now()
        spec = client.V1LeaseSpec(
            holder_identity=_identity(holder),
            lease_duration_seconds=self.settings.lease_duration_s,
            acquire_time=_micro(now),
            renew_time=_micro(now),
            lease_transitions=0,
        )
        meta = client.V1ObjectMeta(
            name=name,
            namespace=ns,
            labels=dict(_LABELS),
            annotations={
                HOLDER_ANNOTATION: json.dumps(asdict(holder)),
                "drillbook.io/target": target,
            },
        )
        try:
            current = api.read_namespaced_lease(name, ns, _request_timeout=_TIMEOUT)
        except Exception as exc:
            if getattr(exc, "status", None) != 404:
                raise
            current = None
        if current is None:
            try:
                made = api.create_namespaced_lease(
                    ns, client.V1Lease(metadata=meta, spec=spec), _request_timeout=_TIMEOUT
                )
            except Exception as exc:
                if getattr(exc, "status", None) == 409:  # a twin created it first
                    raise TargetBusy(target, self._read_holder(name)) from None
                raise
            return _LeaseLock(self, target, made, holder, None)
        previous = _holder_of(current)
        if previous is not None:
            renewed = _epoch(current.spec.renew_time) or _epoch(current.spec.acquire_time) or 0.0
            duration = current.spec.lease_duration_seconds or self.settings.lease_duration_s
            until = renewed + duration + self.settings.skew_margin_s
            if now < until:
                raise TargetBusy(target, previous, f" (its Lease {ns}/{name} is being renewed)")
        spec.lease_transitions = (current.spec.lease_transitions or 0) + 1
        meta.resource_version = current.metadata.resource_version
        try:
            made = api.replace_namespaced_lease(
                name, ns, client.V1Lease(metadata=meta, spec=spec), _request_timeout=_TIMEOUT
            )
        except Exception as exc:
            if getattr(exc, "status", None) in (404, 409):  # another runner got there first
                raise TargetBusy(target, self._read_holder(name)) from None
            raise
        return _LeaseLock(self, target, made, holder, previous)

    def _read_holder(self, name: str) -> Holder | None:
        try:
            lease = self.api().read_namespaced_lease(
                name, self.settings.namespace, _request_timeout=_TIMEOUT
            )
        except Exception:
            return None
        return _holder_of(lease)

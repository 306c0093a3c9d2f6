"""Kubernetes targets and the rules that say whether a drill may touch them.

A target (drillbook.yaml ``targets:``) names a kubeconfig context, a namespace and selectors. The
backend settings (``backends.kubernetes``) say which contexts and namespaces drills may touch at
all, which apiserver the context must point at, and which opt-in label or annotation a namespace,
workload or node must carry. The checks fail closed: with no allowlist, nothing is allowed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drillbook.errors import ConfigError, SafetyError
from drillbook.model import TargetSpec

from .client import Identity, Kube, connect, read_identity

__all__ = ["DEFAULT_OPT_IN_LABEL", "KubeTarget", "Scope", "opt_in_holds", "opt_in_rule"]

_TARGET_KEYS = {
    "kubeconfig",
    "context",
    "namespace",
    "selector",
    "field_selector",
    "deployment",
    "statefulset",
    "service",
    "sandbox",
    "replicas",
    "image",
}


def _str(params: Mapping[str, Any], key: str, target: str) -> str | None:
    value = params.get(key)
    if value is None:
        return None
    if isinstance(value, Mapping):  # {app: web} is a convenient spelling of app=web
        return ",".join(f"{k}={v}" for k, v in value.items())
    if not isinstance(value, str):
        raise ConfigError(f"expected a string, got {value!r}", field=f"targets.{target}.{key}")
    return value


@dataclass(frozen=True)
class KubeTarget:
    name: str
    kubeconfig: str | None
    context: str | None
    namespace: str
    selector: str | None
    field_selector: str | None
    deployment: str | None
    statefulset: str | None
    service: str | None
    sandbox: bool
    replicas: int
    image: str

    @classmethod
    def from_spec(cls, spec: TargetSpec) -> KubeTarget:
        p = spec.params
        unknown = sorted(set(p) - _TARGET_KEYS - {"backend", "description"})
        if unknown:
            raise ConfigError(
                f"unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(_TARGET_KEYS))}",
                field=f"targets.{spec.name}",
            )
        namespace = _str(p, "namespace", spec.name)
        if not namespace:
            raise ConfigError("a kubernetes target needs a namespace", field=f"targets.{spec.name}")
        replicas = p.get("replicas", 3)
        if not isinstance(replicas, int) or replicas < 1:
            raise ConfigError("expected an integer >= 1", field=f"targets.{spec.name}.replicas")
        return cls(
            name=spec.name,
            kubeconfig=_str(p, "kubeconfig", spec.name),
            context=_str(p, "context", spec.name),
            namespace=namespace,
            selector=_str(p, "selector", spec.name),
            field_selector=_str(p, "field_selector", spec.name),
            deployment=_str(p, "deployment", spec.name),
            statefulset=_str(p, "statefulset", spec.name),
            service=_str(p, "service", spec.name),
            sandbox=bool(p.get("sandbox", False)),
            replicas=replicas,
            image=_str(p, "image", spec.name) or "registry.k8s.io/pause:3.2",
        )

    def identity(self, workdir: Path | None = None) -> Identity:
        return read_identity(self.kubeconfig, self.context, workdir)

    def kube(self, workdir: Path | None = None) -> Kube:
        return connect(self.kubeconfig, self.context, workdir)


def _list(settings: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = settings.get(key) or ()
    if isinstance(value, str):
        value = (value,)
    if not isinstance(value, Iterable):
        raise ConfigError("expected a list of names", field=f"backends.kubernetes.{key}")
    return tuple(str(v) for v in value)


def _pair(text: str | None) -> tuple[str, str | None] | None:
    if not text:
        return None
    key, sep, value = str(text).partition("=")
    return key.strip(), (value.strip() if sep else None)


#: The opt-in label used when ``require_opt_in`` is on and no label or annotation is configured.
DEFAULT_OPT_IN_LABEL = "drillbook.io/drills=allowed"


def opt_in_rule(settings: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(label, annotation) a target must carry; (None, None) when no opt-in is required.

    ``require_opt_in`` (safety-wide, or the backend's own) false: none. True: the configured label
    or annotation, else :data:`DEFAULT_OPT_IN_LABEL`. Unset: required only when one is configured.
    """
    label = settings.get("opt_in_label") or None
    note = settings.get("opt_in_annotation") or None
    required = settings.get("require_opt_in")
    if required is False:
        return None, None
    if required and not label and not note:
        label = DEFAULT_OPT_IN_LABEL
    return (str(label) if label else None), (str(note) if note else None)


def opt_in_holds(meta: Any, settings: Mapping[str, Any]) -> bool:
    """Whether an object's metadata carries the opt-in label or annotation (see opt_in_rule).

    ``opt_in_label: "drillbook.io/drills=allowed"`` needs that value; ``"drillbook.io/drills"``
    needs only the key. True when no opt-in is required.
    """
    raw_label, raw_note = opt_in_rule(settings)
    label, note = _pair(raw_label), _pair(raw_note)
    if label is None and note is None:
        return True
    for want, have in (
        (label, getattr(meta, "labels", None)),
        (note, getattr(meta, "annotations", None)),
    ):
        if want is None:
            continue
        key, value = want
        have = have or {}
        if key in have and (value is None or have[key] == value):
            return True
    return False


@dataclass(frozen=True)
class Scope:
    """What the ``backends.kubernetes`` settings allow."""

    contexts: tuple[str, ...]
    namespaces: tuple[str, ...]
    expected_server: str | None
    settings: Mapping[str, Any]

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> Scope:
        server = settings.get("expected_server")
        return cls(
            contexts=_list(settings, "allowed_contexts"),
            namespaces=_list(settings, "allowed_namespaces"),
            expected_server=str(server) if server else None,
            settings=settings,
        )

    @property
    def opt_in_configured(self) -> bool:
        return opt_in_rule(self.settings) != (None, None)

    def check_namespace(self, namespace: str) -> None:
        if namespace not in self.namespaces:
            allowed = ", ".join(self.namespaces) or "none configured"
            raise SafetyError(
                f"namespace {namespace!r} is not in backends.kubernetes.allowed_namespaces"
                f" ({allowed}); nothing was touched"
            )

    def check_static(self, target: KubeTarget, workdir: Path | None = None) -> Identity:
        """Allowlists, from the config and kubeconfig alone: runs before any API call."""
        self.check_namespace(target.namespace)
        identity = target.identity(workdir)
        if identity.context not in self.contexts:
            allowed = ", ".join(self.contexts) or "none configured"
            raise SafetyError(
                f"kubeconfig context {identity.context!r} is not in"
                f" backends.kubernetes.allowed_contexts ({allowed}); nothing was touched"
            )
        if self.expected_server and identity.server.rstrip("/") != self.expected_server.rstrip("/"):
            raise SafetyError(
                f"context {identity.context!r} points at {identity.server}, not the expected"
                f" {self.expected_server}; nothing was touched"
            )
        return identity

    def check_live(self, target: KubeTarget, kube: Kube, workdir: Path | None = None) -> None:
        """Right before injecting: same context and server as the client, namespace alive and
        opted in (when opt-in is configured, the namespace *or* the workload must carry it)."""
        from .client import REQUEST_TIMEOUT, api_error_status

        identity = self.check_static(target, workdir)
        if (identity.context, identity.server) != (kube.identity.context, kube.identity.server):
            raise SafetyError(
                f"kubeconfig changed under the drill: now {identity.context} at {identity.server},"
                f" client was {kube.identity.context} at {kube.identity.server}"
            )
        try:
            ns = kube.core.read_namespace(target.namespace, _request_timeout=REQUEST_TIMEOUT)
        except Exception as exc:
            if api_error_status(exc) == 404:
                raise SafetyError(f"namespace {target.namespace!r} does not exist") from exc
            raise
        if ns.status and ns.status.phase == "Terminating":
            raise SafetyError(f"namespace {target.namespace!r} is terminating")
        if not self.opt_in_configured or opt_in_holds(ns.metadata, self.settings):
            return
        workload = self._workload_meta(target, kube)
        if workload is not None and opt_in_holds(workload, self.settings):
            return
        raise SafetyError(
            f"namespace {target.namespace!r} (and its workload) lacks the opt-in"
            f" {' or '.join(r for r in opt_in_rule(self.settings) if r)}"
        )

    @staticmethod
    def _workload_meta(target: KubeTarget, kube: Kube) -> Any:
        from .client import REQUEST_TIMEOUT

        try:
            if target.deployment:
                return kube.apps.read_namespaced_deployment(
                    target.deployment, target.namespace, _request_timeout=REQUEST_TIMEOUT
                ).metadata
            if target.statefulset:
                return kube.apps.read_namespaced_stateful_set(
                    target.statefulset, target.namespace, _request_timeout=REQUEST_TIMEOUT
                ).metadata
        except Exception:
            return None
        return None

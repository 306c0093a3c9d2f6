"""Connections to an apiserver, and who we are connected to.

One place decides which kubeconfig/context (or in-cluster config) a target uses, so the safety
checks and the faults can never disagree about the cluster they act on. The ``kubernetes`` client
is imported inside functions only: ``import drillbook`` must not pay for it.
"""

from __future__ import annotations

import importlib
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drillbook.errors import BackendUnavailable

__all__ = [
    "IN_CLUSTER",
    "REQUEST_TIMEOUT",
    "Identity",
    "Kube",
    "api_error_status",
    "connect",
    "describe",
    "kubeconfig_path",
    "read_identity",
]

#: Every API call is bounded: (connect, read) seconds.
REQUEST_TIMEOUT: tuple[float, float] = (3.05, 15.0)
#: The context name reported (and allowlisted) for in-cluster service-account credentials.
IN_CLUSTER = "in-cluster"
_SA_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")


@dataclass(frozen=True)
class Identity:
    """The cluster a target points at, as the kubeconfig says (re-checked before injecting)."""

    context: str
    server: str
    default_namespace: str | None


def kubeconfig_path(explicit: str | None, workdir: Path | None = None) -> Path | None:
    """The kubeconfig file to read: the target's, else ``$KUBECONFIG`` (first entry), else
    ``~/.kube/config``; None when none exists (then in-cluster config may apply)."""
    if explicit:
        path = Path(os.path.expanduser(explicit))
        if not path.is_absolute() and workdir is not None:
            path = workdir / path
        return path
    env = os.environ.get("KUBECONFIG", "")
    for entry in env.split(os.pathsep):
        if entry and Path(entry).exists():
            return Path(entry)
    default = Path.home() / ".kube" / "config"
    return default if default.exists() else None


def _in_cluster_possible() -> bool:
    return bool(os.environ.get("KUBERNETES_SERVICE_HOST")) and (_SA_DIR / "token").exists()


def read_identity(
    kubeconfig: str | None, context: str | None, workdir: Path | None = None
) -> Identity:
    """Read (fresh, no cache) which context/server/namespace this target resolves to."""
    import yaml

    path = kubeconfig_path(kubeconfig, workdir)
    if path is None:
        if (context in (None, IN_CLUSTER)) and _in_cluster_possible():
            host = os.environ["KUBERNETES_SERVICE_HOST"]
            port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
            ns_file = _SA_DIR / "namespace"
            ns = ns_file.read_text().strip() if ns_file.exists() else None
            return Identity(IN_CLUSTER, f"https://{host}:{port}", ns)
        raise BackendUnavailable("no kubeconfig ($KUBECONFIG, ~/.kube/config) and not in a cluster")
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise BackendUnavailable(f"kubeconfig {path}: {exc}") from exc
    from drillbook.secretsources import register_kubeconfig_secrets

    register_kubeconfig_secrets(doc)  # its tokens are scrubbed from anything drillbook writes
    name = context or doc.get("current-context")
    chosen = next((c for c in doc.get("contexts") or [] if c.get("name") == name), None)
    if not name or chosen is None:
        raise BackendUnavailable(f"kubeconfig {path} has no context {name or '(current)'}")
    body = chosen.get("context") or {}
    cluster = next(
        (c for c in doc.get("clusters") or [] if c.get("name") == body.get("cluster")), None
    )
    server = str(((cluster or {}).get("cluster") or {}).get("server", ""))
    return Identity(str(name), server, body.get("namespace"))


class Kube:
    """The API groups one target needs, sharing one ``ApiClient`` (and its connection pool)."""

    def __init__(self, api_client: Any, identity: Identity) -> None:
        from kubernetes import client

        # The client's models make every field Optional; drills treat API objects dynamically.
        self.api_client: Any = api_client
        self.identity = identity
        self.core: Any = client.CoreV1Api(api_client)
        self.apps: Any = client.AppsV1Api(api_client)
        self.networking: Any = client.NetworkingV1Api(api_client)
        self.custom: Any = client.CustomObjectsApi(api_client)
        self.version: Any = client.VersionApi(api_client)
        self.authz: Any = client.AuthorizationV1Api(api_client)
        self._served: dict[tuple[str, str], frozenset[str] | None] = {}
        self._lock = threading.Lock()

    def served(self, group: str, version: str) -> frozenset[str] | None:
        """Resource names served at ``group/version`` (kinds and plurals), None if not served."""
        key = (group, version)
        with self._lock:
            if key in self._served:
                return self._served[key]
        try:
            if group in ("", "core"):
                res = self.core.get_api_resources(_request_timeout=REQUEST_TIMEOUT)
            else:
                res = self.custom.get_api_resources(
                    group, version, _request_timeout=REQUEST_TIMEOUT
                )
            names = frozenset(
                n for r in (res.resources or []) for n in (r.name, r.kind) if "/" not in r.name
            )
        except Exception as exc:
            if api_error_status(exc) != 404:
                raise
            names = None
        with self._lock:
            self._served[key] = names
        return names

    def first_served(self, group: str, versions: tuple[str, ...], resource: str) -> str | None:
        """The first of ``versions`` that serves ``resource`` (e.g. policy v1 before v1beta1)."""
        for v in versions:
            names = self.served(group, v)
            if names is not None and resource in names:
                return v
        return None


_cache: dict[tuple[str, str, str], Kube] = {}
_cache_lock = threading.Lock()


def connect(kubeconfig: str | None, context: str | None, workdir: Path | None = None) -> Kube:
    """A (cached) client for a target. Raises BackendUnavailable when no config can be loaded."""
    client: Any = importlib.import_module("kubernetes.client")
    config: Any = importlib.import_module("kubernetes.config")

    identity = read_identity(kubeconfig, context, workdir)
    path = kubeconfig_path(kubeconfig, workdir)
    key = (str(path), identity.context, identity.server)
    with _cache_lock:
        if key in _cache:
            return _cache[key]
    if identity.context == IN_CLUSTER and path is None:
        cfg = client.Configuration()
        config.load_incluster_config(client_configuration=cfg)
        from drillbook.secretsources import register_value

        register_value((_SA_DIR / "token").read_text().strip())
        api_client = client.ApiClient(cfg)
    else:
        api_client = config.new_client_from_config(config_file=str(path), context=identity.context)
    kube = Kube(api_client, identity)
    with _cache_lock:
        _cache.setdefault(key, kube)
        return _cache[key]


def describe(exc: BaseException) -> str:
    """One line for an API error (the client's own text carries headers and the raw body)."""
    status = api_error_status(exc)
    if status is None:
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    import json

    message = ""
    try:
        message = str(json.loads(getattr(exc, "body", "") or "{}").get("message", ""))
    except (ValueError, AttributeError):
        message = ""
    return f"HTTP {status} {getattr(exc, 'reason', '') or ''}: {message}".rstrip(": ")


def api_error_status(exc: BaseException) -> int | None:
    """The HTTP status of a client ``ApiException`` (None for anything else)."""
    status = getattr(exc, "status", None)
    return status if isinstance(status, int) else None

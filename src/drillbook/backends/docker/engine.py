"""Which Docker Engine drillbook talks to, whether it answers, and whether it is the right one.

Why one module: every fault, probe and step must reach the *same* engine the config names, and
the identity re-check before injecting must compare that engine's ID and name with the configured
ones. The SDK is imported inside functions only, so ``import drillbook`` never imports ``docker``.

Where the engine comes from, first match wins:
1. ``backends.docker.base_url`` (with ``backends.docker.tls``) in drillbook.yaml;
2. ``backends.docker.context``: a named Docker context (``docker context ls``);
3. ``DOCKER_HOST`` (plus ``DOCKER_TLS_VERIFY`` / ``DOCKER_CERT_PATH``), as the docker CLI does;
4. the current Docker context, when it is not ``default``;
5. the default socket.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Mapping
from typing import Any

from drillbook.errors import BackendUnavailable, SafetyError

__all__ = [
    "availability",
    "check_identity",
    "client_for",
    "describe_endpoint",
    "engine_identity",
    "reset_clients",
]

_DEFAULT_TIMEOUT_S = 30.0
_clients: dict[str, Any] = {}
_lock = threading.Lock()


def _tls_config(tls: Any) -> Any:
    """``tls: true`` or ``{ca_cert, client_cert, client_key, verify}`` → docker.tls.TLSConfig."""
    if not tls:
        return None
    from docker.tls import TLSConfig

    if tls is True:
        return TLSConfig(verify=True)
    if not isinstance(tls, Mapping):
        raise BackendUnavailable("backends.docker.tls: expected true or a mapping of file paths")
    cert = tls.get("client_cert")
    key = tls.get("client_key")
    client_cert = (str(cert), str(key)) if cert and key else None
    ca_cert = tls.get("ca_cert")
    verify = bool(tls.get("verify", True))
    return TLSConfig(
        client_cert=client_cert, ca_cert=str(ca_cert) if ca_cert else None, verify=verify
    )


def _context(name: str | None) -> Any:
    from docker.context import ContextAPI

    if name:
        found = ContextAPI.get_context(name)
        if found is None:
            raise BackendUnavailable(f"docker context {name!r} does not exist")
        return found
    return ContextAPI.get_current_context()


def describe_endpoint(settings: Mapping[str, Any]) -> str:
    """Where the engine is expected, in words (for skip reasons and plans). Never a secret."""
    if settings.get("base_url"):
        return str(settings["base_url"])
    if settings.get("context"):
        return f"docker context {settings['context']}"
    if os.environ.get("DOCKER_HOST"):
        return os.environ["DOCKER_HOST"]
    return "the default Docker socket (DOCKER_HOST unset)"


def _make_client(settings: Mapping[str, Any], timeout: float) -> Any:
    import docker

    base_url = settings.get("base_url")
    if base_url:
        return docker.DockerClient(
            base_url=str(base_url), tls=_tls_config(settings.get("tls")), timeout=timeout
        )
    context_name = settings.get("context")
    if context_name or not os.environ.get("DOCKER_HOST"):
        ctx = _context(str(context_name) if context_name else None)
        if ctx is not None and (context_name or ctx.name != "default"):
            return docker.DockerClient(base_url=ctx.Host, tls=ctx.TLSConfig, timeout=timeout)
    return docker.from_env(timeout=int(timeout))


def _cache_key(settings: Mapping[str, Any]) -> str:
    wanted = {k: settings.get(k) for k in ("base_url", "context", "tls", "timeout")}
    return json.dumps(wanted, sort_keys=True, default=str) + "|" + os.environ.get("DOCKER_HOST", "")


def client_for(settings: Mapping[str, Any]) -> Any:
    """A ``docker.DockerClient`` for the configured engine, shared within the process."""
    key = _cache_key(settings)
    with _lock:
        client = _clients.get(key)
        if client is None:
            timeout = float(settings.get("timeout", _DEFAULT_TIMEOUT_S))
            client = _make_client(settings, timeout)
            _clients[key] = client
        return client


def reset_clients() -> None:
    """Close cached clients (tests that switch engines, and session teardown)."""
    with _lock:
        for client in _clients.values():
            with contextlib.suppress(Exception):
                client.close()
        _clients.clear()


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return (text[:200] + "…") if len(text) > 200 else text or type(exc).__name__


def availability(settings: Mapping[str, Any]) -> str | None:
    """None when the configured engine answers a ping, else one line saying why not."""
    try:
        import docker  # noqa: F401
    except ImportError:
        return "the docker Python SDK is not installed (pip install docker)"
    where = describe_endpoint(settings)
    try:
        client = _make_client(settings, timeout=float(settings.get("ping_timeout", 3.0)))
        try:
            client.ping()
        finally:
            client.close()
    except BackendUnavailable as exc:
        return str(exc)
    except Exception as exc:
        hint = ' (eval "$(scripts/testenv up docker)" starts one)'
        return f"no Docker Engine answers at {where}: {_one_line(exc)}{hint}"
    return None


def engine_identity(client: Any) -> tuple[str, str]:
    """(engine ID, engine name) as the engine reports them."""
    info = client.info()
    return str(info.get("ID", "")), str(info.get("Name", ""))


def check_identity(client: Any, settings: Mapping[str, Any]) -> str:
    """Refuse (SafetyError) when the engine is not the configured one; return who it is.

    Why right before injecting: DOCKER_HOST or a context can change between configuring a drill
    and running it, and a kill sent to the wrong engine is not a drill.
    """
    engine_id, name = engine_identity(client)
    want_id = settings.get("engine_id")
    want_name = settings.get("engine_name")
    if want_id and str(want_id) != engine_id:
        raise SafetyError(
            f"Docker engine at {describe_endpoint(settings)} has ID {engine_id}, "
            f"but backends.docker.engine_id is {want_id}: refusing to inject"
        )
    if want_name and str(want_name) != name:
        raise SafetyError(
            f"Docker engine at {describe_endpoint(settings)} is named {name!r}, "
            f"but backends.docker.engine_name is {want_name!r}: refusing to inject"
        )
    return f"engine {name} ({engine_id[:14]})"

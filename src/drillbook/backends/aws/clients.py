"""boto3 clients, made lazily and pointed at the configured endpoint.

boto3 is imported inside :func:`client` only, so ``import drillbook`` never pays for it. Every
client has short connect/read timeouts and few retries: a drill's waits are bounded by its
deadline (see :mod:`.poll`), and an SDK call that hangs for minutes would outlive the RTO.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from drillbook.errors import SafetyError

from .config import AwsSettings

__all__ = ["add_client_hook", "client", "is_not_implemented", "remove_client_hook"]

#: Called with every client made here, e.g. to attach botocore event handlers that log each API
#: call for the evidence trail, or that count calls in tests.
_HOOKS: list[Callable[[Any], None]] = []
#: Making a client loads botocore's service model (tens of ms); clients are thread-safe, so
#: they are shared per (endpoint, profile, region, service, fast).
_CACHE: dict[tuple[str | None, str | None, str, str, bool], Any] = {}
_LOCK = threading.Lock()


def add_client_hook(hook: Callable[[Any], None]) -> None:
    """Call ``hook(client)`` for every client made from now on (the cache is dropped)."""
    with _LOCK:
        _HOOKS.append(hook)
        _CACHE.clear()


def remove_client_hook(hook: Callable[[Any], None]) -> None:
    with _LOCK:
        if hook in _HOOKS:
            _HOOKS.remove(hook)
        _CACHE.clear()


def client(settings: AwsSettings, service: str, region: str, *, fast: bool = False) -> Any:
    """A boto3 client for ``service`` in ``region``; ``fast`` for probes (tighter timeouts)."""
    import boto3
    from botocore.config import Config

    if settings.sandbox and not settings.endpoint_url:
        # Never real AWS implicitly: a sandbox configuration without moto is refused.
        raise SafetyError(
            "backends.aws.sandbox is true but no endpoint_url / DRILLBOOK_AWS_ENDPOINT_URL is set; "
            "refusing to use ambient AWS credentials for demo resources"
        )
    key = (settings.endpoint_url, settings.profile, region, service, fast)
    with _LOCK:
        if key in _CACHE:
            return _CACHE[key]
    config = Config(
        connect_timeout=2 if fast else 5,
        read_timeout=5 if fast else 30,
        retries={"max_attempts": 2 if fast else 4, "mode": "standard"},
    )
    session = boto3.session.Session(profile_name=settings.profile, region_name=region)
    made = session.client(
        service, region_name=region, endpoint_url=settings.endpoint_url, config=config
    )
    with _LOCK:
        for hook in _HOOKS:
            hook(made)
        _CACHE[key] = made
    return made


def is_not_implemented(exc: BaseException) -> bool:
    """True for the errors moto returns for an API it does not model (404/501 or NotImplemented)."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return False
    code = str(response.get("Error", {}).get("Code", ""))
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return code in ("404", "501", "NotImplemented", "InvalidAction") or status in (404, 501)

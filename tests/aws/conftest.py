"""Fixtures for the aws backend tests: moto in server mode on 127.0.0.1 (a real HTTP boundary).

``DRILLBOOK_AWS_REAL=1`` (with credentials, ``DRILLBOOK_AWS_ACCOUNT_ID`` and optionally
``DRILLBOOK_AWS_REGIONS=us-east-1,us-west-2``) runs the same tests against a real account instead;
tests that need moto's own API (reset) are skipped then. Never set it in CI: the tests create and
delete real resources.
"""

from __future__ import annotations

import os
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from aws_world import CREATED, CallLog, boto

from drillbook.backends.aws import clients
from drillbook.plugin import needs_backend

REAL = os.environ.get("DRILLBOOK_AWS_REAL") == "1"
MOTO_ACCOUNT = "123456789012"


def _real_settings() -> dict[str, Any]:
    account = os.environ.get("DRILLBOOK_AWS_ACCOUNT_ID", "")
    regions = os.environ.get("DRILLBOOK_AWS_REGIONS", "us-east-1,us-west-2").split(",")
    if not account:
        pytest.skip("DRILLBOOK_AWS_REAL=1 needs DRILLBOOK_AWS_ACCOUNT_ID")
    return {"allowed_accounts": [account], "allowed_regions": regions, "region": regions[0]}


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str | None]:
    """The moto endpoint (None against a real account)."""
    if REAL:
        yield None
        return
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as exc:  # pragma: no cover - moto[server] is a test dependency
        needs_backend("aws", f"moto[server] not installed ({exc})")
        raise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def aws(moto_url: str | None, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """Fresh moto state and the ``backends.aws`` settings the tests use."""
    if moto_url is None:
        settings = _real_settings()
        try:
            yield settings
        finally:
            _terminate_created(settings)
        return
    request = urllib.request.Request(f"{moto_url}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request, timeout=10) as resp:
        assert resp.status == 200
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("DRILLBOOK_AWS_ENDPOINT_URL", moto_url)
    yield {
        "endpoint_url": moto_url,
        "allowed_accounts": [MOTO_ACCOUNT],
        "allowed_regions": ["us-east-1", "us-west-2"],
        "region": "us-east-1",
    }


@pytest.fixture
def moto_only() -> None:
    if REAL:
        pytest.skip("needs moto's own API (not available against a real account)")


@pytest.fixture
def call_log() -> Iterator[CallLog]:
    log = CallLog()
    clients.add_client_hook(log.hook)
    try:
        yield log
    finally:
        clients.remove_client_hook(log.hook)


def _terminate_created(settings: dict[str, Any]) -> None:
    """A real account: terminate what this test launched (moto is reset instead)."""
    by_region: dict[str, list[str]] = {}
    while CREATED:
        region, instance_id = CREATED.pop()
        by_region.setdefault(region, []).append(instance_id)
    for region, ids in by_region.items():
        boto(settings, "ec2", region).terminate_instances(InstanceIds=ids)

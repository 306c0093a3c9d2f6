"""Fixtures for the docker backend's tests: a real engine, real containers, made on the spot."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from docker_kit import Made, make_ctx

from drillbook.backends.base import Context
from drillbook.plugin import needs_backend


@pytest.fixture(scope="session")
def docker_client() -> Any:
    from drillbook.backends.docker.engine import availability, client_for

    needs_backend("docker", availability({}))
    return client_for({})


@pytest.fixture(scope="session")
def busybox(docker_client: Any) -> str:
    from drillbook.backends.docker.images import ensure_image

    for tag in ("latest", "broken", "crashloop"):
        ensure_image(docker_client, f"drillbook/busybox:{tag}")
    return "drillbook/busybox:latest"


@pytest.fixture
def made(docker_client: Any, busybox: str) -> Iterator[Made]:
    m = Made(docker_client, busybox)
    yield m
    m.cleanup()


@pytest.fixture
def ctx_for() -> Callable[..., Context]:
    return make_ctx

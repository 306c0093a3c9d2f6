"""network.degrade and http.faults in front of a real container's published port, on the real
Docker engine: the effect seen by the test's own client, and nothing left after revert."""

from __future__ import annotations

import collections
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from docker_kit import Made, free_port, http_status

from drillbook.backends.base import Context
from drillbook.degrade import proxyproc
from drillbook.degrade.faults import HttpFaultsFault, NetworkDegrade
from drillbook.model import TargetSpec


def _ctx(tmp_path: Path, container: Any, **params: object) -> Context:
    target = TargetSpec("web", "docker", {"container": container.name})
    return Context(
        params=params, targets=(target,), state_dir=tmp_path / ".drillbook", workdir=tmp_path
    )


def _timed_get(port: int) -> float:
    start = time.perf_counter()
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10) as resp:
        resp.read()
    return time.perf_counter() - start


def test_latency_in_front_of_a_published_port(made: Made, tmp_path: Path) -> None:
    container, published = made.container()
    assert http_status(published) == 200
    listen = free_port()
    fault = NetworkDegrade(
        _ctx(tmp_path, container, container_port="8080/tcp", listen_port=listen, latency="300ms")
    )
    fault.resolve()
    assert fault.upstream == ("127.0.0.1", published)
    try:
        fault.inject()
        assert fault.verify_injected()
        assert min(_timed_get(listen) for _ in range(3)) >= 0.3
        assert http_status(published) == 200  # the container itself is untouched
    finally:
        fault.revert()
    assert fault.verify_reverted()
    assert not proxyproc.port_open(listen)
    assert not list((tmp_path / ".drillbook" / "proxies").glob("*"))


def test_error_share_in_front_of_a_container(made: Made, tmp_path: Path) -> None:
    container, _ = made.container()
    listen = free_port()
    fault = HttpFaultsFault(
        _ctx(
            tmp_path, container, container_port=8080, listen_port=listen, error_rate=0.5, status=500
        )
    )
    fault.resolve()
    try:
        fault.inject()
        statuses = collections.Counter(http_status(listen) for _ in range(100))
    finally:
        fault.revert()
    assert set(statuses) == {200, 500}
    assert 0.25 <= statuses[500] / 100 <= 0.75  # Binomial(100, .5): five sd either side
    assert fault.verify_reverted() and not proxyproc.port_open(listen)
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{listen}/health", timeout=1)
        raise AssertionError("something still answers on the proxy's port")
    except (urllib.error.URLError, OSError):
        pass

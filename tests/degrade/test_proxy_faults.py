"""network.degrade and http.faults: the effect, measured by the test's own clients, and a revert
that leaves nothing behind (no process, nothing listening, no route, no files)."""

from __future__ import annotations

import collections
import http.client
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from drillbook.backends.base import Context
from drillbook.backends.local.service import free_port
from drillbook.degrade import proxyproc
from drillbook.degrade.faults import HttpFaultsFault, NetworkDegrade, _ProxyFault
from drillbook.errors import ConfigError

MakeCtx = Callable[..., Context]


@pytest.fixture
def injected() -> Iterator[list[_ProxyFault]]:
    """Faults a test injected; reverted at the end even when the test failed."""
    faults: list[_ProxyFault] = []
    yield faults
    for fault in faults:
        fault.revert()


def _inject(fault: _ProxyFault, registry: list[_ProxyFault]) -> int:
    fault.resolve()
    registry.append(fault)
    fault.inject()
    assert fault.verify_injected()
    assert fault.listen_port is not None
    return fault.listen_port


def _assert_no_trace(fault: _ProxyFault, state_dir: Path) -> None:
    assert fault.verify_reverted()
    assert fault.pid is not None and not proxyproc.proxy_alive(fault.pid, fault.tag)
    assert fault.listen_port is not None and not proxyproc.port_open(fault.listen_port)
    leftovers = list((state_dir / "proxies").glob("*")) if (state_dir / "proxies").exists() else []
    assert leftovers == []


def _get(port: int, timeout: float = 5.0) -> tuple[int, float]:
    start = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", "/health")
        response = conn.getresponse()
        response.read()
        return response.status, time.perf_counter() - start
    finally:
        conn.close()


def test_latency_is_added_to_every_answer_and_revert_leaves_nothing(
    demo_port: int, make_ctx: MakeCtx, injected: list[_ProxyFault], tmp_path: Path
) -> None:
    direct = [_get(demo_port)[1] for _ in range(3)]
    fault = NetworkDegrade(
        make_ctx(
            upstream=f"127.0.0.1:{demo_port}",
            listen_port=free_port(),
            latency="250ms",
            jitter="20ms",
        )
    )
    port = _inject(fault, injected)
    through = [_get(port) for _ in range(4)]
    assert all(status == 200 for status, _ in through)
    # The answer's chunk waits at least latency - jitter in the proxy: a lower bound, not a speed.
    assert min(t for _, t in through) >= 0.23
    assert min(direct) < 0.23 or max(direct) < min(t for _, t in through)
    fault.revert()
    _assert_no_trace(fault, tmp_path / ".drillbook")
    with pytest.raises(OSError):
        _get(port, timeout=1)


def test_bandwidth_limit_paces_the_bytes(
    echo_port: int, make_ctx: MakeCtx, injected: list[_ProxyFault]
) -> None:
    fault = NetworkDegrade(
        make_ctx(upstream=f"127.0.0.1:{echo_port}", listen_port=free_port(), bandwidth_kbps=64)
    )
    port = _inject(fault, injected)
    payload = b"x" * (96 * 1024)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        start = time.perf_counter()
        sock.sendall(payload)
        got = 0
        while got < len(payload):
            chunk = sock.recv(65536)
            assert chunk, "closed early"
            got += len(chunk)
        elapsed = time.perf_counter() - start
    # 96 KiB at 64 KiB/s: the proxy sleeps after each chunk, so at least the chunks before the
    # last took their time (>= 64 KiB worth = 1 s).
    assert elapsed >= 1.0


def test_reset_peer_resets_the_connection(
    echo_port: int, make_ctx: MakeCtx, injected: list[_ProxyFault]
) -> None:
    fault = NetworkDegrade(
        make_ctx(upstream=f"127.0.0.1:{echo_port}", listen_port=free_port(), reset_peer="100ms")
    )
    port = _inject(fault, injected)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"hello")
        assert sock.recv(100) == b"hello"  # data passes until the reset
        with pytest.raises(ConnectionResetError):
            while sock.recv(100):
                pass


@pytest.mark.parametrize(
    ("params", "closes"),
    [({"blackhole": True}, False), ({"timeout": "300ms"}, True)],
    ids=["blackhole", "stall-then-close"],
)
def test_nothing_passes_a_blackhole_or_a_stall(
    echo_port: int,
    make_ctx: MakeCtx,
    injected: list[_ProxyFault],
    params: dict[str, object],
    closes: bool,
) -> None:
    fault = NetworkDegrade(
        make_ctx(upstream=f"127.0.0.1:{echo_port}", listen_port=free_port(), **params)
    )
    port = _inject(fault, injected)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"hello")
        sock.settimeout(1.0)
        if closes:
            assert sock.recv(100) == b""  # closed by the proxy, nothing delivered
        else:
            with pytest.raises(TimeoutError):
                sock.recv(100)


def test_toxics_end_after_duration(
    echo_port: int, make_ctx: MakeCtx, injected: list[_ProxyFault]
) -> None:
    fault = NetworkDegrade(
        make_ctx(
            upstream=f"127.0.0.1:{echo_port}",
            listen_port=free_port(),
            blackhole=True,
            duration="1s",
        )
    )
    port = _inject(fault, injected)
    time.sleep(1.2)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"after")
        assert sock.recv(100) == b"after"


def test_http_error_share_counted_by_the_client(
    demo_port: int, make_ctx: MakeCtx, injected: list[_ProxyFault], tmp_path: Path
) -> None:
    fault = HttpFaultsFault(
        make_ctx(
            upstream=f"127.0.0.1:{demo_port}", listen_port=free_port(), error_rate=0.5, status=503
        )
    )
    port = _inject(fault, injected)
    statuses = collections.Counter(_get(port)[0] for _ in range(200))
    assert set(statuses) == {200, 503}
    # Binomial(200, 0.5): 0.3..0.7 is more than five standard deviations either side.
    assert 0.3 <= statuses[503] / 200 <= 0.7
    fault.revert()
    _assert_no_trace(fault, tmp_path / ".drillbook")


def test_http_abort_and_latency(
    demo_port: int, make_ctx: MakeCtx, injected: list[_ProxyFault]
) -> None:
    aborts = HttpFaultsFault(
        make_ctx(upstream=f"127.0.0.1:{demo_port}", listen_port=free_port(), abort=1.0)
    )
    port = _inject(aborts, injected)
    for _ in range(5):
        with pytest.raises((ConnectionError, http.client.RemoteDisconnected)):
            _get(port)
    slow = HttpFaultsFault(
        make_ctx(upstream=f"127.0.0.1:{demo_port}", listen_port=free_port(), latency="150ms")
    )
    port = _inject(slow, injected)
    timed = [_get(port) for _ in range(3)]
    assert all(status == 200 and took >= 0.15 for status, took in timed)


def test_route_puts_a_local_target_behind_the_proxy(
    demo_port: int, tmp_path: Path, injected: list[_ProxyFault]
) -> None:
    from drillbook.backends.local.service import LocalService
    from drillbook.model import TargetSpec

    target = TargetSpec("svc", "local", {"port": demo_port, "match": "demo_service"})
    ctx = Context(
        params={"error_rate": 1.0, "status": 500},
        targets=(target,),
        state_dir=tmp_path / ".drillbook",
        workdir=tmp_path,
    )
    service = LocalService(target, ctx.state_dir, tmp_path)
    assert service.client_port == demo_port
    fault = HttpFaultsFault(ctx)
    port = _inject(fault, injected)
    assert service.client_port == port != demo_port
    assert _get(service.client_port)[0] == 500
    fault.revert()
    assert service.client_port == demo_port and not service.route_path.exists()
    assert _get(service.client_port)[0] == 200


def test_rollback_in_a_new_process_finds_the_proxy_by_its_pid_file(
    demo_port: int, make_ctx: MakeCtx, tmp_path: Path
) -> None:
    """A harness killed between spawning the proxy and writing the injected line left only the
    intent's state from resolve(): tag and port, no pid. Revert still finds and stops it."""
    fault = HttpFaultsFault(
        make_ctx(upstream=f"127.0.0.1:{demo_port}", listen_port=free_port(), latency="10ms")
    )
    fault.resolve()
    early_state = dict(fault.state())
    fault.inject()
    try:
        assert early_state["pid"] is None and proxyproc.port_open(fault.listen_port or 0)
        again = HttpFaultsFault(make_ctx(upstream=f"127.0.0.1:{demo_port}", listen_port=1))
        again.load_state(early_state)
        again.revert()
        assert again.verify_reverted()
        assert not proxyproc.proxy_alive(fault.pid, fault.tag)
    finally:
        fault.revert()


def test_bad_parameters_are_refused_before_anything_starts(make_ctx: MakeCtx) -> None:
    with pytest.raises(ConfigError, match="error_rate"):
        HttpFaultsFault(
            make_ctx(upstream="127.0.0.1:1", listen_port=2000, error_rate=0.8, abort=0.5)
        )
    with pytest.raises(ConfigError, match="jitter"):
        NetworkDegrade(
            make_ctx(upstream="127.0.0.1:1", listen_port=2000, latency="10ms", jitter="1s")
        )
    with pytest.raises(ConfigError, match="upstream"):
        NetworkDegrade(make_ctx(latency="10ms")).resolve()

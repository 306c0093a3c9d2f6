"""Real upstreams on 127.0.0.1 for the fault-proxy tests, stopped when each test ends."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from drillbook.backends.base import Context
from drillbook.backends.local.service import free_port


def _wait_port(port: int, timeout: float = 20.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with socket.socket() as sock:
            sock.settimeout(0.2)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


@pytest.fixture
def demo_port() -> Iterator[int]:
    """The demo HTTP service in a real process of its own."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "drillbook.backends.local.demo_service", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_port(port)
        yield port
    finally:
        proc.kill()
        proc.wait(10)


@pytest.fixture
def echo_port() -> Iterator[int]:
    """A TCP echo server (a thread per connection, all stopped at the end)."""
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    server.settimeout(0.2)
    stop = threading.Event()

    def serve(conn: socket.socket) -> None:
        with conn:
            conn.settimeout(0.2)
            while not stop.is_set():
                try:
                    data = conn.recv(65536)
                except TimeoutError:
                    continue
                except OSError:
                    return
                if not data:
                    return
                try:
                    conn.sendall(data)
                except OSError:
                    return

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except (TimeoutError, OSError):
                continue
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join(5)
        server.close()


@pytest.fixture
def make_ctx(tmp_path: Path) -> Callable[..., Context]:
    """Fault contexts under this test's own folder (route, pid and config files land there)."""

    def build(**params: object) -> Context:
        return Context(params=params, state_dir=tmp_path / ".drillbook", workdir=tmp_path)

    return build

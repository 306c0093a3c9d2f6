"""The http probe's own HTTP/1.1 client: kept-alive reuse, framing, and every way a peer can end.

A real TCP server on 127.0.0.1 in a thread, scripted per test, counts the connections it accepts,
so "reused" and "reconnected" are facts read off the server, not the client's say-so. Each test
runs on both event loops the scheduler may use.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from drillbook.backends.base import Context
from drillbook.backends.local.probes import HttpProbe
from drillbook.model import ProbeResult
from drillbook.plugin import needs_backend
from drillbook.probing import loop_kind

# (connection index, request index on it, request bytes) -> response bytes, or None to close
Script = Callable[[int, int, bytes], "bytes | None"]

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n"


class ScriptedServer:
    def __init__(self, script: Script) -> None:
        self.script = script
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.requests: list[bytes] = []
        self._threads: list[threading.Thread] = []
        self._open: list[socket.socket] = []
        self._stop = False
        self._accept = threading.Thread(target=self._serve, daemon=True)
        self._accept.start()

    def _serve(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            index = self.connections
            self.connections += 1
            self._open.append(conn)
            t = threading.Thread(target=self._handle, args=(conn, index), daemon=True)
            t.start()
            self._threads.append(t)

    def _handle(self, conn: socket.socket, index: int) -> None:
        buf = b""
        n = 0
        with conn:
            while True:
                while b"\r\n\r\n" not in buf:
                    try:
                        data = conn.recv(65536)
                    except OSError:
                        return
                    if not data:
                        return
                    buf += data
                req, _, buf = buf.partition(b"\r\n\r\n")
                self.requests.append(req)
                reply = self.script(index, n, req)
                n += 1
                if reply is None:
                    return
                try:
                    conn.sendall(reply)
                except OSError:
                    return

    def close(self) -> None:
        self._stop = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the accept() blocked in its thread
        except OSError:
            pass
        self.sock.close()
        self._accept.join(5)
        for c in self._open:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t in self._threads:
            t.join(5)


@pytest.fixture(params=["asyncio", "uvloop"])
def loop_name(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("DRILLBOOK_EVENT_LOOP", request.param)
    # uvloop is a dependency on Linux CPython: where CI requires backends, missing it fails.
    needs_backend("uvloop", None if loop_kind() == request.param else "uvloop is not installed")
    return str(request.param)


@pytest.fixture
def serve() -> Iterator[Callable[[Script], ScriptedServer]]:
    servers: list[ScriptedServer] = []

    def start(script: Script) -> ScriptedServer:
        server = ScriptedServer(script)
        servers.append(server)
        return server

    yield start
    for s in servers:
        s.close()


def make_probe(tmp_path: Path, port: int, **params: object) -> HttpProbe:
    ctx = Context(
        params={"url": f"http://127.0.0.1:{port}/health", "timeout": "1s", **params},
        workdir=tmp_path,
        state_dir=tmp_path / ".drillbook",
    )
    return HttpProbe(ctx)


def run_checks(
    probe: HttpProbe, n: int, between: Callable[[int], None] | None = None
) -> list[ProbeResult]:
    from drillbook.probing import new_event_loop

    async def go() -> list[ProbeResult]:
        out = []
        for i in range(n):
            out.append(await probe.acheck())
            if between is not None:
                await asyncio.get_running_loop().run_in_executor(None, between, i)
        await probe.aclose()
        return out

    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        return runner.run(go())


def test_keepalive_reuses_one_connection(loop_name: str, serve, tmp_path: Path) -> None:
    server = serve(lambda c, r, req: OK)
    results = run_checks(make_probe(tmp_path, server.port), 5)
    assert [r.ok for r in results] == [True] * 5
    assert server.connections == 1
    assert len(server.requests) == 5
    assert b"Connection: close" not in server.requests[0]


def test_keepalive_false_opens_a_connection_per_probe(
    loop_name: str, serve, tmp_path: Path
) -> None:
    server = serve(lambda c, r, req: OK)
    results = run_checks(make_probe(tmp_path, server.port, keepalive=False), 3)
    assert all(r.ok for r in results)
    assert server.connections == 3
    assert all(b"Connection: close" in req for req in server.requests)


def test_server_closing_an_idle_connection_is_not_an_outage(
    loop_name: str, serve, tmp_path: Path
) -> None:
    # Each connection serves one request then closes without saying so (an idle timeout race).
    server = serve(lambda c, r, req: OK if r == 0 else None)
    results = run_checks(make_probe(tmp_path, server.port), 4)
    assert [r.ok for r in results] == [True] * 4
    assert server.connections == 4  # every probe after the first retried on a fresh connection


def test_connection_close_header_is_honoured(loop_name: str, serve, tmp_path: Path) -> None:
    reply = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"
    server = serve(lambda c, r, req: reply)
    results = run_checks(make_probe(tmp_path, server.port), 3)
    assert all(r.ok for r in results)
    assert server.connections == 3


def test_chunked_body_and_interim_response(loop_name: str, serve, tmp_path: Path) -> None:
    reply = (
        b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"4\r\nstat\r\n6;x=1\r\nus: up\r\n0\r\nX-Trailer: 1\r\n\r\n"
    )
    server = serve(lambda c, r, req: reply)
    probe = make_probe(tmp_path, server.port, expect_body="status: up")
    results = run_checks(probe, 3)
    assert [r.ok for r in results] == [True] * 3, [r.detail for r in results]
    assert server.connections == 1


def test_body_and_status_checks(loop_name: str, serve, tmp_path: Path) -> None:
    replies = [
        b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\ndown",
        b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\ndegrade",
        b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nhealthy",
    ]
    server = serve(lambda c, r, req: replies[min(r, 2)])
    results = run_checks(make_probe(tmp_path, server.port, expect_body="healthy"), 3)
    assert [r.ok for r in results] == [False, False, True]
    assert "HTTP 503" in results[0].detail
    assert "without 'healthy'" in results[1].detail
    assert server.connections == 1  # a 503 with a framed body keeps the connection


def test_http10_without_keepalive_and_unframed_body(loop_name: str, tmp_path: Path) -> None:
    def script(c: int, r: int, req: bytes) -> bytes | None:
        return b"HTTP/1.0 200 OK\r\n\r\nold server, body until close"

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    port = sock.getsockname()[1]
    accepted = []

    def serve_once() -> None:
        for _ in range(2):
            conn, _ = sock.accept()
            accepted.append(1)
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(4096)
                conn.sendall(script(0, 0, data) or b"")

    t = threading.Thread(target=serve_once, daemon=True)
    t.start()
    try:
        results = run_checks(make_probe(tmp_path, port, expect_body="until close"), 2)
    finally:
        t.join(5)
        sock.close()
    assert [r.ok for r in results] == [True, True]
    assert len(accepted) == 2


def test_garbage_is_not_http_and_the_connection_is_dropped(
    loop_name: str, serve, tmp_path: Path
) -> None:
    server = serve(lambda c, r, req: b"SSH-2.0-OpenSSH_9.2\r\n\r\n" if c == 0 else OK)
    results = run_checks(make_probe(tmp_path, server.port), 2)
    assert not results[0].ok and "not HTTP" in results[0].detail
    assert results[1].ok
    assert server.connections == 2


def test_a_timed_out_connection_is_never_reused(loop_name: str, serve, tmp_path: Path) -> None:
    import time

    def script(c: int, r: int, req: bytes) -> bytes | None:
        if c == 0 and r == 0:
            time.sleep(1.5)  # answers after the probe gave up: must not be read as the next answer
            return b"HTTP/1.1 500 Late\r\nContent-Length: 0\r\n\r\n"
        return OK

    server = serve(script)
    results = run_checks(make_probe(tmp_path, server.port), 2)
    assert not results[0].ok and "timed out" in results[0].detail
    assert results[1].ok and results[1].value == 200
    assert server.connections == 2


def test_dead_server_fails_the_next_probe_then_recovers(
    loop_name: str, serve, tmp_path: Path
) -> None:
    server = serve(lambda c, r, req: OK)
    port = server.port
    replacement: list[ScriptedServer] = []

    def between(i: int) -> None:
        if i == 0:
            server.close()  # listener and the kept connection both go: the process "died"
        elif i == 1:
            s = ScriptedServer(lambda c, r, req: OK)
            replacement.append(s)

    # The replacement binds a new port; point the probe there via a new probe for the last check.
    results = run_checks(make_probe(tmp_path, port), 2, between)
    assert results[0].ok
    assert not results[1].ok
    assert any(w in results[1].detail for w in ("Refused", "Reset", "closed", "refused"))
    assert replacement and run_checks(make_probe(tmp_path, replacement[0].port), 1)[0].ok
    replacement[0].close()


def test_oversized_body_is_cut_and_the_connection_not_kept(
    loop_name: str, serve, tmp_path: Path
) -> None:
    big = b"x" * (2 * 1024 * 1024)
    reply = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(big) + big
    server = serve(lambda c, r, req: reply)
    results = run_checks(make_probe(tmp_path, server.port, expect_body="xxxx"), 2)
    assert all(r.ok for r in results)
    assert server.connections == 2

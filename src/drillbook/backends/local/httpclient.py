"""A minimal asyncio HTTP/1.1 client for health probes, with an optional kept-alive connection.

Why not asyncio streams or an HTTP library: a drill may watch 1,000 endpoints at 10 Hz, i.e.
10,000 requests a second on a 2-core runner that also hosts the targets. A new TCP connection
per request costs the prober (mostly in the kernel) and the target several times what reusing
one connection per probe costs (benchmarks/RESULTS.md, probe scale). Streams add a task
hop and a ``readline`` per header on top. So this module speaks just enough HTTP/1.1 on a bare
``asyncio.Protocol``: one request at a time, status line and headers, a body delimited by
Content-Length, chunked encoding or the connection's end, with caps on what it keeps.

Reuse follows Envoy's active health checks (``reuse_connection``, default on): a dead or stopped
target still fails the very next probe (the kernel resets or closes the kept connection, or the
request times out), while a fresh connection is opened whenever the last one was closed by
either side. A kept connection the server closed while it sat idle is retried once on a fresh
connection before the probe is judged, the same rule HTTP clients apply to idempotent requests;
otherwise an idle-timeout race would read as an outage. ``keepalive: false`` opens a new
connection for every probe (what kubelet does) for drills where "accepts new connections" is
the property under test.
"""

from __future__ import annotations

import asyncio
import re
from typing import NamedTuple, cast

__all__ = ["HttpConnection", "HttpResponse", "NotHttp", "request"]

MAX_HEADER = 64 * 1024
KEEP_BODY = 64 * 1024  # what the probe keeps for expect_body
MAX_DRAIN = 1024 * 1024  # a longer body is cut and its connection dropped, not read to the end
_FRAMING = re.compile(
    rb"\n[ \t]*(content-length|transfer-encoding|connection)[ \t]*:([^\r\n]*)", re.IGNORECASE
)


class NotHttp(ValueError):
    """The peer answered, but not with HTTP/1.x (garbage, a truncated or oversized head)."""


class HttpResponse(NamedTuple):
    status: int
    body: bytes
    reusable: bool


class _Closed(ConnectionError):
    """The connection ended before a response began; ``fresh`` says whether it was a new one."""


class HttpConnection(asyncio.Protocol):
    """One TCP connection, one request in flight; the parser pulls bytes as they arrive."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.eof = False
        self.error: BaseException | None = None
        self.used = 0  # responses served on this connection
        self._waiter: asyncio.Future[None] | None = None

    # -- asyncio.Protocol -------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport; they implement it.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        self._wake()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake()
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof = True
        self.error = exc
        self.transport = None
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- use ---------------------------------------------------------------------------------
    @property
    def open(self) -> bool:
        return self.transport is not None and not self.eof and not self.transport.is_closing()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
            self.transport = None

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()
            self.transport = None

    async def _more(self) -> None:
        if self.eof:
            raise self.error or ConnectionResetError("connection closed by peer")
        self._waiter = self.loop.create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    async def _take_line(self, limit: int) -> bytes:
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                line = bytes(self.buf[: i + 1])
                del self.buf[: i + 1]
                return line
            if len(self.buf) > limit:
                raise NotHttp("response line too long")
            await self._more()

    async def _take(self, n: int, keep: int) -> bytes:
        """Consume exactly ``n`` bytes, returning the first ``keep`` of them."""
        kept = bytearray()
        while n > 0:
            if not self.buf:
                await self._more()
                continue
            chunk = self.buf[:n]
            del self.buf[: len(chunk)]
            n -= len(chunk)
            if len(kept) < keep:
                kept += chunk[: keep - len(kept)]
        return bytes(kept)

    async def exchange(self, head: bytes, *, method: str) -> HttpResponse:
        """Send one request and read its response."""
        assert self.transport is not None
        self.buf.clear()
        self.transport.write(head)
        try:
            while not self.buf:  # until the first byte of the answer, or the connection's end
                await self._more()
        except OSError as exc:
            raise _Closed(str(exc) or type(exc).__name__) from exc
        while True:  # skip interim 1xx responses (100 Continue, 103 Early Hints)
            status, version, headers = await self._read_head()
            if not 100 <= status < 200 or status == 101:
                break
        no_body = method == "HEAD" or status in (204, 304) or 100 <= status < 200
        keep_alive = _keep_alive(version, headers.get(b"connection", b""))
        body = b""
        if not no_body:
            if b"chunked" in headers.get(b"transfer-encoding", b"").lower():
                body, complete = await self._read_chunked()
                keep_alive = keep_alive and complete
            elif b"content-length" in headers:
                try:
                    length = int(headers[b"content-length"])
                except ValueError:
                    raise NotHttp("bad Content-Length") from None
                if length < 0:
                    raise NotHttp("bad Content-Length")
                if length > MAX_DRAIN:
                    body = await self._take(min(length, KEEP_BODY), KEEP_BODY)
                    keep_alive = False
                else:
                    body = await self._take(length, KEEP_BODY)
            else:
                body = await self._read_to_end()
                keep_alive = False
        self.used += 1
        return HttpResponse(status, body, keep_alive and not self.eof)

    async def _read_head(self) -> tuple[int, bytes, dict[bytes, bytes]]:
        while True:
            end = self.buf.find(b"\r\n\r\n")
            sep = 4
            if end < 0:
                end = self.buf.find(b"\n\n")
                sep = 2
            if end >= 0:
                break
            if len(self.buf) > MAX_HEADER:
                raise NotHttp("response head over 64 KiB")
            if self.eof:
                if not self.buf:
                    raise ConnectionResetError("connection closed before a response")
                raise NotHttp(f"not HTTP: {bytes(self.buf[:60])!r}")
            await self._more()
        raw = bytes(self.buf[:end])
        del self.buf[: end + sep]
        line_end = raw.find(b"\n")
        status_line = raw if line_end < 0 else raw[:line_end]
        fields = status_line.split(None, 2)
        if len(fields) < 2 or not fields[0].startswith(b"HTTP/1.") or not fields[1].isdigit():
            raise NotHttp(f"not HTTP: {status_line[:60]!r}")
        headers: dict[bytes, bytes] = {}
        if line_end >= 0:  # only the framing headers matter here; one regex pass in C
            for name, value in _FRAMING.findall(raw, line_end):
                headers[name.lower()] = value.strip()
        return int(fields[1]), fields[0], headers

    async def _read_chunked(self) -> tuple[bytes, bool]:
        kept = bytearray()
        total = 0
        while True:
            size_line = await self._take_line(1024)
            try:
                size = int(size_line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise NotHttp("bad chunk size") from None
            if size == 0:
                while (await self._take_line(MAX_HEADER)).strip():
                    pass  # trailers
                return bytes(kept), True
            total += size
            if total > MAX_DRAIN:
                return bytes(kept), False
            kept += await self._take(size, max(0, KEEP_BODY - len(kept)))
            await self._take_line(1024)  # the CRLF after the chunk

    async def _read_to_end(self) -> bytes:
        while not self.eof and len(self.buf) < KEEP_BODY:
            await self._more()
        return bytes(self.buf[:KEEP_BODY])


def _keep_alive(version: bytes, connection: bytes) -> bool:
    tokens = {t.strip().lower() for t in connection.split(b",")}
    if version == b"HTTP/1.0":
        return b"keep-alive" in tokens
    return b"close" not in tokens


async def request(
    host: str,
    port: int,
    head: bytes,
    *,
    method: str,
    conn: HttpConnection | None,
) -> tuple[HttpResponse, HttpConnection]:
    """Send ``head`` on ``conn`` if it is still open, else on a new connection.

    A reused connection that ends before any byte of the response is retried once on a fresh one
    (the server closed it while idle); a fresh connection failing that way is the answer.
    The caller bounds the whole call with its timeout and owns the returned connection.
    """
    loop = asyncio.get_running_loop()
    if conn is not None and conn.open and conn.loop is loop:
        try:
            return await conn.exchange(head, method=method), conn
        except _Closed:
            conn.abort()
    elif conn is not None and conn.loop is loop:
        conn.abort()
    _, fresh = await loop.create_connection(lambda: HttpConnection(loop), host, port)
    try:
        return await fresh.exchange(head, method=method), fresh
    except _Closed as exc:
        fresh.abort()
        cause = exc.__cause__
        raise cause if isinstance(cause, OSError) else ConnectionResetError(str(exc)) from None
    except BaseException:
        fresh.abort()
        raise

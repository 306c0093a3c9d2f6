"""An HTTP fault proxy: a reverse proxy that fails a share of requests on purpose.

For each request (HTTP/1.1, one per connection: every response says ``Connection: close``):

* with probability ``abort``: the connection is reset (TCP RST) before any answer;
* else with probability ``error_rate``: the proxy answers ``status`` itself (default 503);
* else it waits ``latency_ms`` (± ``jitter_ms``) and forwards to the upstream, relaying its answer.

``paths`` (prefixes) limits the faults to matching request paths; others pass through. Faults stop
at ``active_until`` (epoch seconds): later requests pass through untouched. Hand-written on
asyncio because the job is small: mitmproxy's addon API would do it, at the cost of a
cryptography/TLS-interception stack and a much larger install for a plain-HTTP relay.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from drillbook.degrade.tcpproxy import _reset

__all__ = ["HttpFaults", "serve_http"]

_MAX_HEAD = 64 * 1024
_MAX_BODY = 16 * 1024 * 1024


@dataclass(frozen=True)
class HttpFaults:
    error_rate: float = 0.0
    status: int = 503
    abort: float = 0.0
    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    paths: tuple[str, ...] = ()
    active_until: float | None = None

    @classmethod
    def from_config(cls, data: Mapping[str, Any]) -> HttpFaults:
        until = data.get("active_until")
        return cls(
            error_rate=float(data.get("error_rate", 0.0)),
            status=int(data.get("status", 503)),
            abort=float(data.get("abort", 0.0)),
            latency_ms=float(data.get("latency_ms", 0.0)),
            jitter_ms=float(data.get("jitter_ms", 0.0)),
            paths=tuple(str(p) for p in data.get("paths", ())),
            active_until=None if until is None else float(until),
        )

    def active_for(self, path: str) -> bool:
        if self.active_until is not None and time.time() >= self.active_until:
            return False
        return not self.paths or any(path.startswith(p) for p in self.paths)


def _split_head(head: bytes) -> tuple[str, str, list[tuple[str, str]]]:
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = [*lines[0].split(" ", 2), "", ""][:3]
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if ":" in line:
            name, _, value = line.partition(":")
            headers.append((name.strip(), value.strip()))
    return method, target, headers


def _answer(status: int, note: str) -> bytes:
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Injected"
    body = f"{note}\n".encode()
    return (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\nX-Drillbook-Fault: injected\r\n\r\n"
    ).encode("latin-1") + body


async def _forward(
    upstream: tuple[str, int],
    method: str,
    target: str,
    headers: list[tuple[str, str]],
    body: bytes,
    client_w: asyncio.StreamWriter,
) -> None:
    try:
        up_r, up_w = await asyncio.open_connection(*upstream)
    except OSError as exc:
        client_w.write(_answer(502, f"drillbook fault proxy: upstream unreachable: {exc}"))
        return
    kept = [(k, v) for k, v in headers if k.lower() not in ("connection", "keep-alive")]
    head = f"{method} {target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in kept)
    up_w.write((head + "Connection: close\r\n\r\n").encode("latin-1") + body)
    await up_w.drain()
    try:
        while chunk := await up_r.read(64 * 1024):
            client_w.write(chunk)
            await client_w.drain()
    finally:
        up_w.close()


async def _handle(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    upstream: tuple[str, int],
    faults: HttpFaults,
) -> None:
    try:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            return
        method, target, headers = _split_head(head[:-4])
        length = next((int(v) for k, v in headers if k.lower() == "content-length"), 0)
        body = await reader.readexactly(min(length, _MAX_BODY)) if length > 0 else b""
        if faults.active_for(target):
            roll = random.random()
            if roll < faults.abort:
                _reset(writer)
                return
            if roll < faults.abort + faults.error_rate:
                writer.write(_answer(faults.status, "drillbook fault proxy: injected error"))
                await writer.drain()
                return
            if faults.latency_ms or faults.jitter_ms:
                delay = faults.latency_ms + random.uniform(-faults.jitter_ms, faults.jitter_ms)
                await asyncio.sleep(max(0.0, delay) / 1000.0)
        await _forward(upstream, method, target, headers, body, writer)
    except (ConnectionError, OSError, asyncio.IncompleteReadError):
        pass
    finally:
        if not writer.transport.is_closing():
            writer.close()


async def serve_http(
    listen: tuple[str, int], upstream: tuple[str, int], faults: HttpFaults
) -> asyncio.Server:
    async def on_client(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await _handle(r, w, upstream, faults)

    return await asyncio.start_server(
        on_client, listen[0], listen[1], reuse_address=True, limit=_MAX_HEAD
    )

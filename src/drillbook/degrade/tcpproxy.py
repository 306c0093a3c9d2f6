"""A TCP fault proxy in Toxiproxy's model: listen, forward to the dependency, apply toxics.

Toxics (each optional; ``toxicity`` is the share of connections they apply to, drawn once per
connection as Toxiproxy does):

* ``latency_ms`` ± ``jitter_ms``: every chunk in the toxic's direction waits that long, in order.
* ``bandwidth_kbps``: the direction's bytes are paced to that many KiB per second.
* ``timeout_ms``: data stops (a stall); the connection is closed after that long (0: never).
* ``reset_peer_ms``: the connection is reset (TCP RST) that long after it opened.
* ``blackhole``: connections are accepted and nothing passes either way, nothing is answered.

``stream`` is ``downstream`` (dependency to client, Toxiproxy's default), ``upstream`` or
``both``. Toxics stop at ``active_until`` (epoch seconds; the fault's own ``duration``): later
connections pass through untouched, so a drill can watch a transient degradation end by itself.
"""

from __future__ import annotations

import asyncio
import random
import socket
import struct
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Toxics", "serve_tcp"]

_CHUNK = 32 * 1024


@dataclass(frozen=True)
class Toxics:
    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    bandwidth_kbps: float = 0.0
    timeout_ms: float | None = None
    reset_peer_ms: float | None = None
    blackhole: bool = False
    toxicity: float = 1.0
    stream: str = "downstream"
    active_until: float | None = None

    @classmethod
    def from_config(cls, data: Mapping[str, Any]) -> Toxics:
        def num(key: str) -> float | None:
            value = data.get(key)
            return None if value is None else float(value)

        return cls(
            latency_ms=num("latency_ms") or 0.0,
            jitter_ms=num("jitter_ms") or 0.0,
            bandwidth_kbps=num("bandwidth_kbps") or 0.0,
            timeout_ms=num("timeout_ms"),
            reset_peer_ms=num("reset_peer_ms"),
            blackhole=bool(data.get("blackhole", False)),
            toxicity=float(data.get("toxicity", 1.0)),
            stream=str(data.get("stream", "downstream")),
            active_until=num("active_until"),
        )

    def active(self) -> bool:
        return self.active_until is None or time.time() < self.active_until

    def applies(self, direction: str) -> bool:
        return self.stream in ("both", direction)


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with an RST (SO_LINGER 0), which is what ``reset_peer`` promises the client."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    writer.transport.abort()


async def _pump(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    toxics: Toxics | None,
    direction: str,
) -> None:
    """Copy one direction, applying the toxics that name it; ends at EOF or error."""
    slow = toxics is not None and toxics.applies(direction)
    try:
        while True:
            data = await reader.read(_CHUNK)
            if not data:
                break
            if slow and toxics is not None and toxics.active():
                if toxics.latency_ms or toxics.jitter_ms:
                    jitter = random.uniform(-toxics.jitter_ms, toxics.jitter_ms)
                    await asyncio.sleep(max(0.0, toxics.latency_ms + jitter) / 1000.0)
                writer.write(data)
                await writer.drain()
                if toxics.bandwidth_kbps > 0:
                    await asyncio.sleep(len(data) / (toxics.bandwidth_kbps * 1024.0))
            else:
                writer.write(data)
                await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        pass


async def _swallow(reader: asyncio.StreamReader) -> None:
    """Read and drop everything (a stall or a blackhole must not fill the client's window)."""
    try:
        while await reader.read(_CHUNK):
            pass
    except (ConnectionError, OSError):
        pass


async def _handle(
    client_r: asyncio.StreamReader,
    client_w: asyncio.StreamWriter,
    upstream: tuple[str, int],
    base: Toxics,
) -> None:
    toxics: Toxics | None = base if base.active() and random.random() < base.toxicity else None
    try:
        if toxics is not None and (toxics.blackhole or toxics.timeout_ms is not None):
            # Nothing passes. A timeout closes after its delay; a blackhole (or timeout 0) only
            # when the client gives up or the toxic's time is over.
            swallow = asyncio.create_task(_swallow(client_r))
            limit = (toxics.timeout_ms or 0) / 1000.0 if not toxics.blackhole else 0.0
            deadline = toxics.active_until
            waits: list[float] = []
            if limit > 0:
                waits.append(limit)
            if deadline is not None:
                waits.append(max(0.0, deadline - time.time()))
            try:
                await asyncio.wait_for(swallow, timeout=min(waits) if waits else None)
            except TimeoutError:
                pass
            return
        try:
            up_r, up_w = await asyncio.open_connection(*upstream)
        except OSError:
            _reset(client_w)
            return
        pumps = [
            asyncio.create_task(_pump(client_r, up_w, toxics, "upstream")),
            asyncio.create_task(_pump(up_r, client_w, toxics, "downstream")),
        ]
        if toxics is not None and toxics.reset_peer_ms is not None:
            done, _ = await asyncio.wait(pumps, timeout=toxics.reset_peer_ms / 1000.0)
            if len(done) < len(pumps):
                for task in pumps:
                    task.cancel()
                _reset(client_w)
                up_w.transport.abort()
                return
        await asyncio.gather(*pumps, return_exceptions=True)
        up_w.close()
    finally:
        if not client_w.transport.is_closing():
            client_w.close()


async def serve_tcp(
    listen: tuple[str, int], upstream: tuple[str, int], toxics: Toxics
) -> asyncio.Server:
    """Start listening; the caller keeps the loop running and closes the server."""

    async def on_client(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await _handle(r, w, upstream, toxics)

    return await asyncio.start_server(on_client, listen[0], listen[1], reuse_address=True)

"""A webhook receiver on 127.0.0.1 that times Alertmanager's notifications (and, in tests, the
drill notifications drillbook itself sends).

Why drillbook runs its own: TTN ends when the page reaches a receiver, and only a receiver that
stamps each POST on drillbook's monotonic clock as it arrives can say when that was. Alertmanager's
webhook payload (version 4) carries the alerts with their status and labels; each is kept with
its arrival time. The server is a daemon thread; ``stop`` closes it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["Delivery", "WebhookReceiver"]

#: A POST larger than this is refused (a receiver must not be a memory sink).
_MAX_BODY = 1 << 20


@dataclass(frozen=True)
class Delivery:
    """One POST: when it arrived (drillbook's monotonic clock), its path and its JSON body."""

    at: float
    path: str
    body: Any
    alerts: tuple[dict[str, Any], ...] = field(default=())


class WebhookReceiver:
    def __init__(self, host: str, port: int, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.deliveries: list[Delivery] = []
        self._lock = threading.Lock()
        self.arrived = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                at = receiver.clock()
                length = int(self.headers.get("Content-Length") or 0)
                if length > _MAX_BODY:
                    self.send_response(413)
                    self.end_headers()
                    return
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw or b"null")
                except ValueError:
                    body = raw.decode("utf-8", "replace")
                alerts = body.get("alerts", []) if isinstance(body, dict) else []
                receiver._add(
                    Delivery(at, self.path, body, tuple(a for a in alerts if isinstance(a, dict)))
                )
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        bound = self._server.server_address
        self.host, self.port = str(bound[0]), int(bound[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            daemon=True,
            name="drillbook-webhook",
        )
        self._thread.start()

    @classmethod
    def listen(cls, address: str, clock: Callable[[], float]) -> WebhookReceiver:
        """``host:port`` (port 0: any free one). Raises OSError when the port is taken."""
        host, _, port = address.rpartition(":")
        return cls(host or "127.0.0.1", int(port), clock)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _add(self, delivery: Delivery) -> None:
        with self._lock:
            self.deliveries.append(delivery)
        self.arrived.set()

    def snapshot(self) -> list[Delivery]:
        with self._lock:
            return list(self.deliveries)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

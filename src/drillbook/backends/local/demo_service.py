"""The small real HTTP service the ``process_restart`` scenario drills out of the box.

``python -m drillbook.backends.local.demo_service --port N``: GET /health answers 200 "ok" once
the process is up. Started by drillbook itself, so the first drill needs nothing installed.

For alert drills it also exports ``/metrics`` in the Prometheus text format (prometheus-client):
``drillbook_http_requests_total{path,code}``, ``drillbook_http_request_duration_seconds`` and the
client's process metrics. ``POST /fault?error_rate=R`` makes a fraction R of the other requests
answer 500 (the ``demo.errors`` fault; ``error_rate=0`` reverts): the sandbox's stand-in for an
application that starts failing, so the team's error-rate alert has something to see.
"""

from __future__ import annotations

import argparse
import os
import random
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["main"]

STARTED = time.time()


class _State:
    error_rate = 0.0
    lock = threading.Lock()
    registry: Any = None
    requests: Any = None
    duration: Any = None


def _metrics_setup() -> None:
    from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector

    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    _State.registry = registry
    _State.requests = Counter(
        "drillbook_http_requests", "HTTP requests served", ["path", "code"], registry=registry
    )
    _State.duration = Histogram(
        "drillbook_http_request_duration_seconds", "HTTP request duration", registry=registry
    )


class _Handler(BaseHTTPRequestHandler):
    def _send(self, code: int, body: bytes, ctype: str = "text/plain") -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        start = time.perf_counter()
        path = self.path.split("?", 1)[0]
        if path == "/metrics" and _State.registry is not None:
            from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

            self._send(200, generate_latest(_State.registry), CONTENT_TYPE_LATEST)
            return
        if _State.error_rate > 0 and random.random() < _State.error_rate:
            code, body = 500, b"injected error (demo.errors)\n"
        elif path.startswith("/health"):
            code, body = 200, f"ok pid={os.getpid()} up={time.time() - STARTED:.1f}s\n".encode()
        else:
            code, body = 404, b"not found\n"
        self._send(code, body)
        if _State.requests is not None:
            _State.requests.labels(path if code != 404 else "other", str(code)).inc()
            _State.duration.observe(time.perf_counter() - start)

    def do_POST(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        if url.path != "/fault":
            self._send(404, b"not found\n")
            return
        query = urllib.parse.parse_qs(url.query)
        try:
            rate = float(query.get("error_rate", ["0"])[0])
        except ValueError:
            self._send(400, b"error_rate must be a number\n")
            return
        if not 0.0 <= rate <= 1.0:
            self._send(400, b"error_rate must be within 0..1\n")
            return
        with _State.lock:
            _State.error_rate = rate
        self._send(200, f"error_rate={rate}\n".encode())

    def log_message(self, format: str, *args: object) -> None:
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--startup-delay", type=float, default=0.0, help="seconds before listening")
    args = parser.parse_args(argv)
    if args.startup_delay > 0:
        time.sleep(args.startup_delay)
    _metrics_setup()
    server = ThreadingHTTPServer((args.host, args.port), _Handler)
    server.allow_reuse_address = True
    try:
        server.serve_forever(poll_interval=0.1)
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

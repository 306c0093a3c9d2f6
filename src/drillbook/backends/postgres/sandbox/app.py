"""The sandbox "app": a small real HTTP service in front of whichever region serves.

``GET /health`` does a write and a read back through the region the router names, so a drill
measures recovery where users feel it (a dead primary, a switched router), not at the database.
``GET /router`` says which region serves; ``GET /metrics`` is the Prometheus text format
(:mod:`drillbook.backends.postgres.sandbox.metrics`). Run by the supervisor:
``python -m drillbook.backends.postgres.sandbox.app ROOT``; the port comes from state.json.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

from drillbook.backends.postgres.sandbox.jsonhttp import JsonHandler
from drillbook.backends.postgres.sandbox.state import (
    NODE_APP,
    dsn_for_port,
    load_state,
    read_router,
)
from drillbook.clock import get_clock

__all__ = ["ROUTE_FILE", "database_port", "health_round_trip", "main"]

#: A fault proxy's route for the app's database path (network.degrade): ``{"region", "port"}``.
#: Re-read on every request, so a drill can put the proxy in and take it out while the app runs.
ROUTE_FILE = "app-db-route.json"


def database_port(root: Path, region: str) -> int:
    """The port the app connects to for ``region``: the fault proxy's while one is routed in."""
    try:
        route = json.loads((root / ROUTE_FILE).read_text())
        if route.get("region") == region:
            return int(route["port"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass
    return int(load_state(root)["nodes"][region]["port"])


def health_round_trip(root: Path) -> tuple[bool, dict[str, Any]]:
    """Write a row and read it back through the serving region."""
    import psycopg

    region = read_router(root)
    port = database_port(root, region)
    token = f"{time.time_ns()}"
    with psycopg.connect(dsn_for_port(port, timeout_s=1), autocommit=True) as conn:
        conn.execute("SET statement_timeout = '2s'")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS drillbook_app_health (token text PRIMARY KEY,"
            " at timestamptz NOT NULL DEFAULT clock_timestamp())"
        )
        conn.execute("INSERT INTO drillbook_app_health (token) VALUES (%s)", (token,))
        row = conn.execute(
            "SELECT token FROM drillbook_app_health WHERE token = %s", (token,)
        ).fetchone()
        conn.execute("DELETE FROM drillbook_app_health WHERE at < now() - interval '1 minute'")
    ok = row is not None and row[0] == token
    return ok, {"region": region, "ok": ok}


class _Handler(JsonHandler):
    server: _Server
    _code: int = 0

    def do_GET(self) -> None:
        if self.path == "/metrics":
            body, ctype = self.server.metrics.render()
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        start = get_clock().monotonic()
        self._get()
        self.server.metrics.observe(self.path, self._code, get_clock().monotonic() - start)

    def send_response(self, code: int, message: str | None = None) -> None:
        self._code = code
        super().send_response(code, message)

    def _get(self) -> None:
        if self.path == "/router":
            self._reply(200, {"serving": read_router(self.server.root)})
            return
        if self.path != "/health":
            self._reply(404, {"error": "not found"})
            return
        try:
            ok, body = health_round_trip(self.server.root)
        except Exception as exc:
            self._reply(503, {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]})
            return
        self._reply(200 if ok else 503, body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, root: Path, port: int) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.root = root
        from drillbook.backends.postgres.sandbox.metrics import SandboxMetrics

        self.metrics = SandboxMetrics(root)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    root = Path(args[0]).resolve()
    port = int(load_state(root)["nodes"][NODE_APP]["port"])
    server = _Server(root, port)

    def on_term(signum: int, frame: object) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_term)
    server.serve_forever(poll_interval=0.1)
    server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

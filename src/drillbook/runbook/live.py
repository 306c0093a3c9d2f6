"""A read-only page on 127.0.0.1 that follows a GameDay, for the people not at the keyboard.

Off by default (``drillbook run --gameday --gameday-live PORT``). It answers GET only: ``/``
is a small page that reloads itself every two seconds, ``/state.json`` the same state as JSON.
It binds to 127.0.0.1 alone; share it through the team's own tunnel if at all.
"""

from __future__ import annotations

import html
import json
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["LiveServer", "render_page"]


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{float(value):.1f}s"


def render_page(state: Mapping[str, Any]) -> str:
    """The page for one snapshot (every value escaped)."""
    esc = html.escape
    current = state.get("current")
    rows = "".join(
        f"<tr><td>{esc(str(s.get('index')))}</td><td>{esc(str(s.get('name')))}</td>"
        f"<td>{esc(str(s.get('kind')))}</td><td class='{esc(str(s.get('result')))}'>"
        f"{esc(str(s.get('result')))}</td><td>{_fmt(s.get('duration_s'))}</td>"
        f"<td>{esc(str(s.get('note') or ''))}</td></tr>"
        for s in state.get("steps", [])
    )
    if isinstance(current, Mapping):
        now = (
            f"<p class='now'>Now: step {esc(str(current.get('index')))}/"
            f"{esc(str(current.get('total')))} ({esc(str(current.get('kind')))}): "
            f"<b>{esc(str(current.get('name')))}</b> · {_fmt(state.get('elapsed_s'))} since "
            f"inject · RTO {_fmt(current.get('rto_s'))}</p>"
        )
    else:
        now = "<p class='now'>Waiting for the next step.</p>"
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        "<meta http-equiv='refresh' content='2'><title>GameDay</title><style>"
        "body{font:15px system-ui,sans-serif;margin:2em}td,th{padding:.3em .8em;"
        "border-bottom:1px solid #ddd;text-align:left}.failed{color:#b00}.skipped{color:#a60}"
        ".done{color:#070}.now{font-size:1.2em}</style></head><body>"
        f"<h1>GameDay: {esc(str(state.get('drill') or '-'))}</h1>{now}"
        "<table><tr><th>#</th><th>step</th><th>kind</th><th>result</th><th>duration</th>"
        f"<th>note</th></tr>{rows}</table></body></html>"
    )


class LiveServer:
    """Serves ``snapshot()`` on 127.0.0.1:``port`` from a daemon thread until :meth:`stop`."""

    def __init__(self, snapshot: Callable[[], Mapping[str, Any]], port: int) -> None:
        take = snapshot

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                state = take()
                if self.path.split("?", 1)[0] == "/state.json":
                    body, kind = json.dumps(state, default=str).encode(), "application/json"
                elif self.path.split("?", 1)[0] == "/":
                    body, kind = render_page(state).encode(), "text/html; charset=utf-8"
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return  # the console belongs to the GameDay

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self._thread = threading.Thread(
            target=self.server.serve_forever, name="drillbook-gameday-live", daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)

"""The small real HTTP service the ``process_restart`` scenario drills out of the box.

``python -m drillbook.backends.local.demo_service --port N``: GET /health answers 200 "ok" once
the process is up. Deliberately stdlib-only and started by drillbook itself, so the first drill
needs nothing installed.
"""

from __future__ import annotations

import argparse
import os
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

__all__ = ["main"]

STARTED = time.time()


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path.startswith("/health"):
            body = f"ok pid={os.getpid()} up={time.time() - STARTED:.1f}s\n".encode()
            self.send_response(200)
        else:
            body = b"not found\n"
            self.send_response(404)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

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
    server = ThreadingHTTPServer((args.host, args.port), _Handler)
    server.allow_reuse_address = True
    try:
        server.serve_forever(poll_interval=0.1)
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

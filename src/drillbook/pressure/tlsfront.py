"""A small HTTPS service for the sandbox: ``python -m drillbook.pressure.tlsfront --port P --dir D``.

It serves ``/health`` over TLS with ``D/cert.pem`` and ``D/key.pem``, creating a CA
(``D/ca.pem``, ``D/ca-key.pem``) and a 30-day certificate for ``localhost`` and ``127.0.0.1`` when
the folder has none. Like a server that reloads on a changed certificate, it re-reads the pair for
the next connection whenever the files change, so a ``tls.cert`` fault and a ``tls.renew`` step
take effect without a restart.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.server
import os
import socket
import ssl
import sys
from pathlib import Path
from typing import Any

from drillbook.clock import real_wall

__all__ = ["main"]


def _ensure(folder: Path) -> None:
    from drillbook.pressure.certs import issue, make_ca, write_atomic

    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / "ca.pem").exists():
        ca = make_ca()
        write_atomic(folder / "ca-key.pem", ca[1])
        write_atomic(folder / "ca.pem", ca[0], 0o644)
    if not (folder / "cert.pem").exists():
        ca = ((folder / "ca.pem").read_bytes(), (folder / "ca-key.pem").read_bytes())
        now = real_wall()
        for host in ("localhost",):
            cert, key = issue(
                host,
                ca=ca,
                not_before=now - dt.timedelta(minutes=5),
                not_after=now + dt.timedelta(days=30),
            )
            write_atomic(folder / "key.pem", key)
            write_atomic(folder / "cert.pem", cert, 0o644)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, folder: Path) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.folder = folder
        self._seen: tuple[int, ...] | None = None
        self._ctx: ssl.SSLContext | None = None

    def context(self) -> ssl.SSLContext:
        files = (self.folder / "cert.pem", self.folder / "key.pem")
        stamp = tuple(x for f in files for x in (f.stat().st_mtime_ns, f.stat().st_ino))
        if self._ctx is None or stamp != self._seen:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(str(files[0]), str(files[1]))
            self._ctx, self._seen = ctx, stamp
        return self._ctx

    def get_request(self) -> tuple[Any, Any]:
        sock, addr = self.socket.accept()
        sock.settimeout(5)  # a client that never says hello must not stall the accept loop
        try:
            return self.context().wrap_socket(sock, server_side=True), addr
        except (ssl.SSLError, OSError):
            sock.close()
            raise


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"ok\n" if self.path == "/health" else b"not found\n"
        self.send_response(200 if self.path == "/health" else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tlsfront")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", required=True)
    args = parser.parse_args(argv)
    folder = Path(args.dir)
    _ensure(folder)
    server = _Server(args.port, folder)
    server.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    print(f"tlsfront on 127.0.0.1:{args.port} pid {os.getpid()}", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

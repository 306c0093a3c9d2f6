"""The detached holder behind ``postgres.exhaust_connections`` and ``postgres.slow_query``.

Run by path (``python -P connhold.py ...``) with the connection string on stdin (never in argv,
where ``ps`` would show a password). Every session it opens carries ``application_name`` = the
tag it was given, so revert can find (and terminate) them in ``pg_stat_activity`` even if this
process is already gone. It is bounded by its own deadline (``--seconds``), after which it closes
everything and exits; it also exits when all its sessions were terminated (a runbook's
``pg_terminate_backend`` is the recovery), and on SIGTERM.

Modes: ``--idle N`` opens N idle sessions; ``--lock TABLE`` holds ``LOCK TABLE ... IN ACCESS
EXCLUSIVE MODE`` in an open transaction (every query on it waits); ``--sleep N`` runs N
``pg_sleep`` queries (busy backends, like slow statements).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from typing import Any

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="connhold")
    parser.add_argument("--tag", required=True)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--idle", type=int, default=0)
    parser.add_argument("--lock", default="")
    parser.add_argument("--sleep", type=int, default=0)
    args = parser.parse_args(argv)
    dsn = sys.stdin.readline().strip()
    import psycopg

    deadline = time.monotonic() + args.seconds
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    conns: list[Any] = []
    opened = 0
    try:
        for _ in range(args.idle):
            try:
                conns.append(psycopg.connect(dsn, application_name=args.tag, autocommit=True))
                opened += 1
            except psycopg.OperationalError as exc:  # the server is full: that is the point
                print(f"stopped at {opened} sessions: {exc}".strip(), flush=True)
                break
        if args.lock:
            conn = psycopg.connect(dsn, application_name=args.tag)
            conns.append(conn)
            from psycopg import sql

            parts = [sql.Identifier(p) for p in args.lock.split(".")]
            conn.execute(
                sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(sql.SQL(".").join(parts))
            )
        for _ in range(args.sleep):
            conn = psycopg.connect(dsn, application_name=args.tag, autocommit=True)
            conns.append(conn)
            seconds = max(1.0, args.seconds)
            threading.Thread(
                target=lambda c=conn, s=seconds: _quiet(c.execute, "SELECT pg_sleep(%s)", (s,)),
                daemon=True,
            ).start()
        print(f"holding {len(conns)} sessions as {args.tag}", flush=True)
        checkable = conns[: opened + (1 if args.lock else 0)]  # not the ones busy in pg_sleep
        while not stop.is_set() and time.monotonic() < deadline:
            stop.wait(min(2.0, max(0.0, deadline - time.monotonic())))
            if checkable and all(c.closed or _gone(c) for c in checkable):
                print("every session was terminated", flush=True)
                break
    finally:
        for c in conns:
            _quiet(c.close)
    return 0


def _gone(conn: Any) -> bool:
    """True when the server ended this session (pg_terminate_backend); a ``SELECT 1`` inside
    the lock's transaction keeps the lock."""
    if conn.broken:
        return True
    try:
        conn.execute("SELECT 1")
    except Exception:
        return True
    return False


def _quiet(fn: Any, *args: Any) -> None:
    try:
        fn(*args)
    except Exception:
        pass


if __name__ == "__main__":
    sys.exit(main())

"""Probes: a SQL query with an expected answer, readiness, replication lag, the sandbox app."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from drillbook.backends.base import Probe
from drillbook.backends.postgres.target import pg_target
from drillbook.clock import get_clock
from drillbook.durations import parse_duration
from drillbook.model import ProbeResult

__all__ = ["AppHealthProbe", "ReadyProbe", "ReplicationLagProbe", "SqlProbe"]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"[:200]


def _writable_by_default(ctx_param: object, role: str) -> bool:
    """A primary is recovered once it takes writes: a read-only server still replaying WAL
    answers reads (issue 21 measured RTA 1.75 s where writes came back at 13.3 s)."""
    return bool(ctx_param) if ctx_param is not None else role == "primary"


class SqlProbe(Probe):
    """``query`` must return ``expected`` (first column of the first row, compared as text).

    ``writable`` (default: true on a primary target) also requires the server to be out of
    recovery, so a read-only, still-recovering primary is not counted as recovered."""

    def check(self) -> ProbeResult:
        import psycopg

        target = pg_target(self.ctx)
        query = str(self.ctx.param("query", "SELECT 1"))
        expected = self.ctx.param("expected")
        writable = _writable_by_default(self.ctx.param("writable"), target.role())
        start = get_clock().monotonic()
        try:
            with psycopg.connect(target.dsn(timeout_s=2), autocommit=True) as conn:
                conn.execute("SET statement_timeout = '5s'")
                if writable:
                    rec = conn.execute("SELECT pg_is_in_recovery()").fetchone()
                    if rec and rec[0]:
                        return ProbeResult(
                            False,
                            get_clock().monotonic() - start,
                            "in recovery: read-only, not yet serving writes",
                        )
                row = conn.execute(query).fetchone()
        except psycopg.Error as exc:
            return ProbeResult(False, get_clock().monotonic() - start, _first_line(exc))
        latency = get_clock().monotonic() - start
        value = None if row is None else row[0]
        if expected is None:
            return ProbeResult(True, latency, f"{query} -> {value}", value)
        ok = str(value) == str(expected)
        return ProbeResult(ok, latency, f"{query} -> {value} (expected {expected})", value)


class ReadyProbe(Probe):
    """Accepts connections and, with ``primary: true`` (the default on a primary target),
    writes."""

    def check(self) -> ProbeResult:
        import psycopg

        target = pg_target(self.ctx)
        start = get_clock().monotonic()
        try:
            with psycopg.connect(target.dsn(timeout_s=2), autocommit=True) as conn:
                row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
        except psycopg.Error as exc:
            return ProbeResult(False, get_clock().monotonic() - start, _first_line(exc))
        latency = get_clock().monotonic() - start
        in_recovery = bool(row and row[0])
        if _writable_by_default(self.ctx.param("primary"), target.role()) and in_recovery:
            return ProbeResult(False, latency, "ready but in recovery (not writable)")
        return ProbeResult(True, latency, "standby" if in_recovery else "primary")


class ReplicationLagProbe(Probe):
    """On the primary: every standby streams and replays within ``max_lag`` (a duration, default
    5s) and ``max_bytes`` (default 16 MiB). ``standbys``: how many must stream (default 1)."""

    def check(self) -> ProbeResult:
        import psycopg

        target = pg_target(self.ctx)
        max_lag = parse_duration(str(self.ctx.param("max_lag", "5s")))
        max_bytes = int(self.ctx.param("max_bytes", 16 * 1024 * 1024))
        need = int(self.ctx.param("standbys", 1))
        start = get_clock().monotonic()
        try:
            with psycopg.connect(target.dsn(timeout_s=2), autocommit=True) as conn:
                rows = conn.execute(
                    "SELECT application_name, state,"
                    " coalesce(extract(epoch FROM replay_lag), 0)::float8,"
                    " pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint"
                    " FROM pg_stat_replication"
                ).fetchall()
        except psycopg.Error as exc:
            return ProbeResult(False, get_clock().monotonic() - start, _first_line(exc))
        latency = get_clock().monotonic() - start
        streaming = [r for r in rows if r[1] == "streaming"]
        if len(streaming) < need:
            return ProbeResult(
                False, latency, f"{len(streaming)} streaming standby(s), need {need}"
            )
        worst_s = max(float(r[2] or 0) for r in streaming)
        worst_b = max(int(r[3] or 0) for r in streaming)
        ok = worst_s <= max_lag and worst_b <= max_bytes
        return ProbeResult(ok, latency, f"replay lag {worst_s:.3f}s / {worst_b} bytes", worst_s)


class AppHealthProbe(Probe):
    """GET the sandbox app's /health (a write+read through the serving region), or ``url``."""

    def check(self) -> ProbeResult:
        url = self.ctx.param("url")
        if not url:
            from drillbook.backends.postgres.sandbox.state import load_state

            target = pg_target(self.ctx)
            assert target.root is not None
            port = load_state(target.root)["nodes"]["app"]["port"]
            url = f"http://127.0.0.1:{port}/health"
        start = get_clock().monotonic()
        try:
            with urllib.request.urlopen(str(url), timeout=float(self.ctx.param("timeout", 3))) as r:
                body = json.loads(r.read() or b"{}")
                return ProbeResult(True, get_clock().monotonic() - start, f"{r.status} {body}")
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:200]
            return ProbeResult(False, get_clock().monotonic() - start, f"{exc.code} {detail}")
        except OSError as exc:
            return ProbeResult(False, get_clock().monotonic() - start, _first_line(exc))

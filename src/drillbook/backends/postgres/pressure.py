"""Database Issues faults: ``postgres.exhaust_connections`` and ``postgres.slow_query``, the
``postgres.connections`` probe and the ``postgres.terminate_sessions`` recovery step.

Both faults start :mod:`drillbook.backends.postgres.connhold` detached (its own session, its own
deadline) and record its pid, start time and session tag in ``state()``; revert — here or from
``drillbook rollback`` / the TTL watchdog — ends that process, terminates any session still
carrying the tag (``pg_terminate_backend``), and is verified by counting them in
``pg_stat_activity``.

How many connections are held: ``max_connections`` minus ``reserve`` minus those already open.
The reserve defaults to ``superuser_reserved_connections`` + 2, so an administrator — and
drillbook's own revert and probes — can still log in: a drill must not lock out its own undo.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from drillbook.backends.base import Context, Fault, Probe, RecoveryStep, Selection
from drillbook.backends.postgres.target import pg_target
from drillbook.clock import get_clock
from drillbook.durations import parse_duration
from drillbook.errors import ConfigError, FaultError, RecoveryError
from drillbook.model import ProbeResult
from drillbook.pressure import procs

__all__ = [
    "ConnectionsProbe",
    "ExhaustConnections",
    "SlowQuery",
    "TerminateSessions",
    "count_tagged",
]


def _connect(dsn: str) -> Any:
    import psycopg

    return psycopg.connect(dsn, autocommit=True)


def count_tagged(dsn: str, tag: str) -> int:
    """Sessions in pg_stat_activity whose application_name is ``tag``."""
    with _connect(dsn) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (tag,)
        ).fetchone()
    return int(row[0]) if row else 0


class _Holder(Fault):
    mode = "idle"

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.target = pg_target(ctx)
        self._state: dict[str, Any] = {}
        self._proc: subprocess.Popen[bytes] | None = None

    def _seconds(self) -> float:
        try:
            return parse_duration(self.ctx.param("duration", "10m"), allow_zero=False)
        except ValueError as exc:
            raise ConfigError(str(exc), field="duration") from None

    def resolve(self) -> Selection:
        return Selection((self.target.name,), 1)

    def _args(self) -> list[str]:
        raise NotImplementedError

    def _expected(self) -> int:
        raise NotImplementedError

    def inject(self) -> None:
        tag = f"drillbook-hold-{os.urandom(4).hex()}"
        args = self._args()
        self._state.update({"tag": tag, "expected": self._expected()})
        log_dir = self.ctx.state_dir / "pressure"
        log_dir.mkdir(parents=True, exist_ok=True)
        script = Path(__file__).with_name("connhold.py")
        with open(log_dir / "connhold.log", "ab") as log:
            self._proc = subprocess.Popen(
                [
                    sys.executable,
                    "-P",
                    str(script),
                    "--tag",
                    tag,
                    "--seconds",
                    str(self._seconds()),
                    *args,
                ],
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=log,
                start_new_session=True,
                close_fds=True,
            )
        assert self._proc.stdin is not None
        self._state.update({"pid": self._proc.pid, "start_time": procs.start_time(self._proc.pid)})
        self._proc.stdin.write((self.target.dsn() + "\n").encode())
        self._proc.stdin.close()

    def held(self) -> int:
        tag = self._state.get("tag")
        return count_tagged(self.target.dsn(), str(tag)) if tag else 0

    def verify_injected(self) -> bool:
        return self.held() >= int(self._state.get("expected", 1))

    def revert(self) -> None:
        pid = self._state.get("pid")
        if isinstance(pid, int):
            start = self._state.get("start_time")
            procs.kill_group(pid, int(start) if isinstance(start, int) else None)
        if self._proc is not None:
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        tag = self._state.get("tag")
        if not tag:
            return
        with _connect(self.target.dsn()) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
                (tag,),
            )
        deadline = get_clock().monotonic() + 10
        while get_clock().monotonic() < deadline and self.held():
            get_clock().sleep(0.1)

    def verify_reverted(self) -> bool:
        pid = self._state.get("pid")
        alive = isinstance(pid, int) and bool(procs.group_members(pid))
        return not alive and self.held() == 0

    def state(self) -> Mapping[str, Any]:
        return dict(self._state)

    def load_state(self, state: Mapping[str, Any]) -> None:
        self._state = dict(state)


def _settings(dsn: str) -> tuple[int, int, int]:
    """(max_connections, superuser_reserved_connections, sessions open now)."""
    with _connect(dsn) as conn:
        row = conn.execute(
            "SELECT current_setting('max_connections')::int,"
            " current_setting('superuser_reserved_connections')::int,"
            " (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2])


class ExhaustConnections(_Holder):
    """Hold idle sessions until only ``reserve`` connection slots are left."""

    def _count(self) -> int:
        max_conn, su_reserved, open_now = _settings(self.target.dsn())
        reserve = int(self.ctx.param("reserve", su_reserved + 2))
        if reserve < 1:
            raise ConfigError("expected reserve >= 1 (revert needs a slot)", field="reserve")
        count = max_conn - reserve - open_now
        cap = int(self.ctx.param("max_hold", 500))
        if count > cap:
            raise FaultError(
                f"postgres.exhaust_connections: {count} sessions needed, over max_hold={cap}"
            )
        if count < 1:
            raise FaultError(
                f"postgres.exhaust_connections: {open_now} of {max_conn} already open, "
                f"nothing to hold with reserve={reserve}"
            )
        return count

    def plan(self) -> str:
        reserve = self.ctx.param("reserve", "superuser_reserved_connections + 2")
        return f"hold idle sessions on {self.target.name} until {reserve} slots are left"

    def _args(self) -> list[str]:
        self._state["count"] = self._count()
        return ["--idle", str(self._state["count"])]

    def _expected(self) -> int:
        return int(self._state["count"])


class SlowQuery(_Holder):
    """Lock a table (every query on it waits) and/or run ``pg_sleep`` statements."""

    def plan(self) -> str:
        what = []
        if self.ctx.param("lock_table"):
            what.append(f"ACCESS EXCLUSIVE lock on {self.ctx.param('lock_table')}")
        if self.ctx.param("sleepers"):
            what.append(f"{self.ctx.param('sleepers')} pg_sleep statements")
        return f"postgres.slow_query on {self.target.name}: {', '.join(what)}"

    def _args(self) -> list[str]:
        args: list[str] = []
        table = self.ctx.param("lock_table")
        if table:
            args += ["--lock", str(table)]
        if self.ctx.param("sleepers"):
            args += ["--sleep", str(int(self.ctx.param("sleepers")))]
        if not args:
            raise ConfigError("expected lock_table or sleepers", field="lock_table")
        return args

    def _expected(self) -> int:
        return (1 if self.ctx.param("lock_table") else 0) + int(self.ctx.param("sleepers", 0))

    def verify_injected(self) -> bool:
        if not super().verify_injected():
            return False
        table = self.ctx.param("lock_table")
        if not table:
            return True
        with _connect(self.target.dsn()) as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)"
                " WHERE a.application_name = %s AND l.mode = 'AccessExclusiveLock'"
                " AND l.granted AND l.relation = to_regclass(%s)",
                (self._state["tag"], str(table)),
            ).fetchone()
        return bool(row and row[0])


class ConnectionsProbe(Probe):
    """Client sessions as a share of max_connections (the Database Issues runbook's first look).
    Its value is the number of client sessions."""

    def check(self) -> ProbeResult:
        start = get_clock().monotonic()
        target = pg_target(self.ctx)
        max_conn, _, open_now = _settings(target.dsn())
        pct = 100.0 * open_now / max_conn
        bound = float(self.ctx.param("max_percent", 80))
        ok = pct <= bound
        detail = f"{open_now}/{max_conn} client sessions ({pct:.0f}%, bound {bound:g}%)"
        return ProbeResult(ok, get_clock().monotonic() - start, detail, value=open_now)


class TerminateSessions(RecoveryStep):
    """The runbook's clean-up: ``pg_terminate_backend`` the sessions that are idle longer than
    ``idle_for`` (``application_name`` narrows it), or those blocking others (``blocking``)."""

    def run(self) -> str:
        target = pg_target(self.ctx)
        where = ["pid <> pg_backend_pid()", "backend_type = 'client backend'"]
        params: list[Any] = []
        if self.ctx.param("blocking"):
            where.append("pid IN (SELECT unnest(pg_blocking_pids(pid)) FROM pg_stat_activity)")
        else:
            idle = parse_duration(self.ctx.param("idle_for", "5s"))
            where.append("state = 'idle' AND now() - state_change >= make_interval(secs => %s)")
            params.append(idle)
        if self.ctx.param("application_name"):
            where.append("application_name LIKE %s")
            params.append(str(self.ctx.param("application_name")))
        query = (
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE "
            + " AND ".join(where)
        )
        try:
            with _connect(target.dsn()) as conn:
                row = conn.execute(query, params).fetchone()
        except Exception as exc:
            raise RecoveryError(f"terminate sessions on {target.name}: {exc}") from exc
        return f"terminated {row[0] if row else 0} sessions on {target.name}"

"""One drill per target across runners: a PostgreSQL advisory lock per target.

The file arbiter (:class:`drillbook.locks.FileArbiter`) holds on one state folder. Runners with
separate state folders (two CI pipelines, a CronJob and a laptop) that record into one shared
PostgreSQL history also share that database's lock table: ``pg_try_advisory_lock`` on a stable
64-bit hash of the target's name, held on a session of its own for the whole drill. PostgreSQL
ends that session, and frees the lock, when the holder's process dies (its socket closes) or its
host goes silent (TCP keepalives, set on the session below): a dead holder is released by the
server, never by a guess from here.

Who holds a target is kept beside the lock in ``drillbook_target_locks`` (run id, drill, pid,
host, since), so a refused drill names the holder. A record found for a target whose lock was
free belongs to a holder whose session ended without releasing (it died): the new drill takes
over and says so, like the file arbiter.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from drillbook.clock import get_clock
from drillbook.errors import SafetyError
from drillbook.history_pg import SCHEMA_LOCK_KEY
from drillbook.locks import Arbiter, FileArbiter, Holder, TargetBusy, TargetLock
from drillbook.redact import redact_text

if TYPE_CHECKING:
    import psycopg

    from drillbook.config import Config

__all__ = ["PgArbiter", "arbiter_for", "lock_key"]

_TABLE = """
CREATE TABLE IF NOT EXISTS drillbook_target_locks (
    target TEXT COLLATE "C" PRIMARY KEY,
    lock_key BIGINT NOT NULL,
    run_id TEXT NOT NULL,
    drill TEXT NOT NULL,
    pid INTEGER NOT NULL,
    host TEXT NOT NULL,
    since DOUBLE PRECISION NOT NULL,
    lease_until DOUBLE PRECISION NOT NULL,
    pidns TEXT NOT NULL DEFAULT '',
    boot_id TEXT NOT NULL DEFAULT ''
)
"""
_HOLDER_COLUMNS = ", ".join(f.name for f in fields(Holder))
#: Seconds before the server probes a silent peer, between probes, and probes before it gives
#: up: a holder whose host vanished loses its lock within about idle + interval * count.
_KEEPALIVE = {"tcp_keepalives_idle": 10, "tcp_keepalives_interval": 5, "tcp_keepalives_count": 3}


def lock_key(target: str) -> int:
    """A stable signed 64-bit key for ``target`` (every runner, every Python, computes the same)."""
    digest = hashlib.sha256(b"drillbook-target\0" + target.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


#: How often a held lock's session is asked whether it is still there (a drill checks its
#: locks on every wait; the server is not asked more often than this).
_PING_EVERY_S = 5.0


@dataclass
class _PgLock:
    target: str
    taken_over: Holder | None
    conn: psycopg.Connection[Any] | None
    key: int
    run_id: str
    _pinged: float = field(default_factory=time.monotonic)
    _lost: str | None = None

    def lost(self) -> str | None:
        """Whether the session holding the advisory lock is gone (the server then freed it)."""
        conn = self.conn
        if conn is None or self._lost is not None:
            return self._lost
        if get_clock().monotonic() - self._pinged < _PING_EVERY_S:
            return None
        self._pinged = get_clock().monotonic()
        import psycopg

        try:
            conn.execute("SELECT 1")
        except psycopg.Error as exc:
            self._lost = redact_text(
                f"its PostgreSQL session ended ({type(exc).__name__}: {exc}); the server freed "
                "the advisory lock"
            )
        return self._lost

    def release(self, *, clean: bool = True) -> None:
        """Unlock and end the session; ``clean=False`` leaves the holder's record for the next
        drill to find (its fault was not known reverted)."""
        conn, self.conn = self.conn, None
        if conn is None:
            return
        import psycopg

        try:
            if clean:
                conn.execute(
                    "DELETE FROM drillbook_target_locks WHERE target = %s AND run_id = %s",
                    (self.target, self.run_id),
                )
            conn.execute("SELECT pg_advisory_unlock(%s)", (self.key,))
        except psycopg.Error:
            pass  # the session is gone, and the lock with it; a record left is taken over
        finally:
            conn.close()  # ends the session: the lock is gone even if the unlock failed


class PgArbiter:
    """Target locks held as advisory locks in one PostgreSQL database (see the module)."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn

    def acquire(self, target: str, holder: Holder) -> TargetLock:
        import psycopg

        key = lock_key(target)
        try:
            conn = psycopg.connect(self.dsn, autocommit=True, connect_timeout=10)
        except psycopg.Error as exc:
            raise SafetyError(
                f"target {target!r}: the shared lock could not be taken "
                f"({redact_text(str(exc).strip())}); refusing to drill without it"
            ) from None
        try:
            for name, value in _KEEPALIVE.items():
                conn.execute(f"SET {name} = {int(value)}")
            exists = conn.execute("SELECT to_regclass('drillbook_target_locks')").fetchone()
            if not (exists and exists[0]):  # a runner's role may not create tables
                with conn.transaction():  # a concurrent twin's CREATE would fail, not wait
                    conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK_KEY,))
                    conn.execute(_TABLE)
            got = conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
            if not (got and got[0]):
                raise TargetBusy(target, self._holder(conn, target))
            previous = self._holder(conn, target)
            conn.execute(
                f"INSERT INTO drillbook_target_locks (target, lock_key, {_HOLDER_COLUMNS})"
                f" VALUES (%s, %s, {', '.join(['%s'] * len(fields(Holder)))})"
                f" ON CONFLICT (target) DO UPDATE SET lock_key = EXCLUDED.lock_key, "
                + ", ".join(f"{f.name} = EXCLUDED.{f.name}" for f in fields(Holder)),
                (target, key, *(getattr(holder, f.name) for f in fields(Holder))),
            )
        except TargetBusy:
            conn.close()
            raise
        except psycopg.Error as exc:
            conn.close()
            raise SafetyError(
                f"target {target!r}: the shared lock could not be taken "
                f"({redact_text(str(exc).strip())}); refusing to drill without it"
            ) from None
        except BaseException:
            conn.close()
            raise
        return _PgLock(target, previous, conn, key, holder.run_id)

    @staticmethod
    def _holder(conn: psycopg.Connection[Any], target: str) -> Holder | None:
        row = conn.execute(
            f"SELECT {_HOLDER_COLUMNS} FROM drillbook_target_locks WHERE target = %s", (target,)
        ).fetchone()
        return Holder(*row) if row is not None else None


def arbiter_for(config: Config) -> Arbiter:
    """A Kubernetes Lease per target when ``safety.lock`` says so; else the shared PostgreSQL
    arbiter when the history is a shared PostgreSQL store; else the state folder's lock files."""
    if config.safety.lock is not None:
        from drillbook.locks_k8s import LeaseArbiter

        return LeaseArbiter(config.safety.lock, config.workdir)
    if config.history_dsn:
        return PgArbiter(config.history_dsn)
    return FileArbiter(config.state_dir / "locks")

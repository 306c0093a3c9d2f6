"""``postgres.replay_pause``: a streaming standby stops replaying WAL (it still receives it).

Replication lag grows with every write on the primary while the standby's data stands still: the
failure a replication-lag alert exists for (a long query holding replay, a stuck recovery). It
is ``pg_wal_replay_pause()`` on the standby; revert is ``pg_wal_replay_resume()``, which works
from any process, so a crashed drill is reverted by ``drillbook rollback`` like any other.
"""

from __future__ import annotations

from drillbook.backends.base import Context, Fault, RecoveryStep
from drillbook.backends.postgres.target import pg_target
from drillbook.errors import FaultError, RecoveryError

__all__ = ["ReplayPause", "ReplayResume"]


class ReplayPause(Fault):
    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.target = pg_target(ctx)

    def plan(self) -> str:
        return f"pause WAL replay on standby {self.target.name}"

    def _sql(self, sql: str) -> object:
        import psycopg

        try:
            with psycopg.connect(self.target.dsn(), autocommit=True) as conn:
                row = conn.execute(sql).fetchone()
                return row[0] if row else None
        except psycopg.Error as exc:
            raise FaultError(f"{self.target.name}: {sql}: {exc}") from None

    def preflight(self) -> None:
        if self._sql("SELECT pg_is_in_recovery()") is not True:
            raise FaultError(f"{self.target.name} is not a standby: nothing replays there")

    def inject(self) -> None:
        self._sql("SELECT pg_wal_replay_pause()")

    def verify_injected(self) -> bool:
        return self._sql("SELECT pg_get_wal_replay_pause_state()") in ("paused", "pause requested")

    def revert(self) -> None:
        try:
            if self._sql("SELECT pg_is_in_recovery()") is not True:
                return  # promoted or rebuilt since: no replay to resume
        except FaultError:
            return  # not running: a restarted standby replays again by itself
        self._sql("SELECT pg_wal_replay_resume()")

    def verify_reverted(self) -> bool:
        try:
            return self._sql("SELECT pg_get_wal_replay_pause_state()") in ("not paused", None)
        except FaultError:
            return True


class ReplayResume(RecoveryStep):
    """The runbook's step: ``pg_wal_replay_resume()`` on the standby (idempotent)."""

    def run(self) -> str:
        import psycopg

        target = pg_target(self.ctx)
        try:
            with psycopg.connect(target.dsn(), autocommit=True) as conn:
                conn.execute("SELECT pg_wal_replay_resume()")
        except psycopg.Error as exc:
            raise RecoveryError(f"{target.name}: pg_wal_replay_resume(): {exc}") from None
        return f"replay resumed on {target.name}"

"""The RPO ledger on PostgreSQL: a writer thread commits sequence-numbered rows at a fixed rate,
and after recovery a reader counts which acknowledged writes survived.

Acknowledged means the COMMIT returned to the writer: a write whose connection broke before the
answer is "in doubt" and is never counted as lost (it may or may not have survived). RPA is the
span of the acknowledged writes recovery lost, whichever side of t_inject they were acknowledged
on (:func:`drillbook.dataloss.data_loss` defines it; 0 when none was lost). Acknowledgement times
come from the harness's own clock, so a server with a skewed clock cannot distort the measure.
Works against any DSN: the target is re-resolved at every reconnect, so a ``serving`` sandbox
target follows the router through a failover.
"""

from __future__ import annotations

import contextlib
import re
import threading
import uuid
from dataclasses import dataclass

from drillbook.backends.base import Context, Ledger, LedgerMeasure
from drillbook.backends.postgres.target import pg_target
from drillbook.clock import epoch, get_clock
from drillbook.dataloss import data_loss
from drillbook.durations import parse_duration
from drillbook.errors import ConfigError, RecoveryError

__all__ = ["Ack", "PostgresLedger"]

_TABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Ack:
    seq: int
    at: float  # wall epoch seconds when COMMIT returned
    sent: float = 0.0  # when the INSERT was sent: the server committed somewhere in [sent, at]


class PostgresLedger(Ledger):
    def __init__(self, ctx: Context, rate_per_s: float | None = None) -> None:
        rate = rate_per_s or float(ctx.param("rate_per_s", ctx.param("rate", 50.0)))
        super().__init__(ctx, rate)
        self.target = pg_target(ctx)
        self.table = str(ctx.param("table", "drillbook_ledger"))
        if not _TABLE.match(self.table):
            raise ConfigError("ledger `table` must be a plain identifier", field="table")
        try:
            # Rows older than this are deleted when a ledger starts; 0 also deletes this run's
            # own rows once measured (issue 21: 6,540 rows left after 13 runs).
            self.retention_s = parse_duration(str(ctx.param("retention", "7d")))
        except ValueError as exc:
            raise ConfigError(f"ledger `retention`: {exc}", field="retention") from None
        self.run_id = uuid.uuid4().hex[:16]
        self.acks: list[Ack] = []
        self.in_doubt = 0
        self.errors = 0
        self.started_at: float | None = None
        self._next_seq = 1
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- writing ----------------------------------------------------------------------------
    def _ddl(self) -> str:
        return (
            f"CREATE TABLE IF NOT EXISTS {self.table} (run_id text NOT NULL, seq bigint NOT NULL,"
            " committed_at timestamptz NOT NULL DEFAULT clock_timestamp(),"
            " PRIMARY KEY (run_id, seq))"
        )

    def start(self) -> None:
        """Create the table and start writing. After ``stop`` it resumes with the next seq."""
        import psycopg

        if self._thread is not None and self._thread.is_alive():
            return
        with psycopg.connect(self.target.dsn(timeout_s=5), autocommit=True) as conn:
            conn.execute(self._ddl())
            if self.started_at is None and self.retention_s > 0:
                conn.execute(
                    f"DELETE FROM {self.table} WHERE committed_at < now() - make_interval("
                    "secs => %s)",
                    (self.retention_s,),
                )
        if self.started_at is None:
            self.started_at = epoch()
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._write_loop, name="drillbook-ledger", daemon=True
        )
        self._thread.start()

    def _write_loop(self) -> None:
        import psycopg

        interval = 1.0 / self.rate_per_s
        conn: psycopg.Connection[tuple[object, ...]] | None = None
        due = get_clock().monotonic()
        sql = f"INSERT INTO {self.table} (run_id, seq) VALUES (%s, %s)"
        while not self._stop.is_set():
            now = get_clock().monotonic()
            if due > now:
                get_clock().wait(self._stop, due - now)
                continue
            due = max(due + interval, now - interval)  # no catch-up burst after an outage
            seq = self._next_seq
            try:
                if conn is None:
                    conn = psycopg.connect(self.target.dsn(timeout_s=1), autocommit=True)
                    conn.execute("SET statement_timeout = '3s'")
                    conn.execute(self._ddl())
                self._next_seq += 1  # a seq is used once it may have reached the server
                sent = epoch()
                conn.execute(sql, (self.run_id, seq))
                ack = Ack(seq, epoch(), sent)
                with self._lock:
                    self.acks.append(ack)
            except psycopg.Error:
                with self._lock:
                    self.errors += 1
                    if self._next_seq > seq:
                        self.in_doubt += 1
                if conn is not None:
                    with contextlib.suppress(psycopg.Error):
                        conn.close()
                conn = None
        if conn is not None:
            conn.close()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def history_start(self) -> float | None:
        with self._lock:
            return self.acks[0].at if self.acks else None

    def acknowledged(self) -> list[Ack]:
        with self._lock:
            return list(self.acks)

    # -- reading ----------------------------------------------------------------------------
    def surviving(self, timeout_s: float = 30.0) -> set[int]:
        """Sequence numbers of this run present in the table now (empty if the table is gone)."""
        import psycopg

        deadline = get_clock().monotonic() + timeout_s
        last = ""
        while get_clock().monotonic() < deadline:
            try:
                with psycopg.connect(self.target.dsn(timeout_s=2), autocommit=True) as conn:
                    exists = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (self.table,))
                    row = exists.fetchone()
                    if not (row and row[0]):
                        return set()
                    rows = conn.execute(
                        f"SELECT seq FROM {self.table} WHERE run_id = %s", (self.run_id,)
                    ).fetchall()
                    return {int(r[0]) for r in rows}
            except psycopg.Error as exc:
                last = str(exc).strip()
                get_clock().sleep(0.2)
        raise RecoveryError(f"ledger: cannot read {self.target.name} back: {last[:200]}")

    def _forget_run(self) -> None:
        import psycopg

        with (
            contextlib.suppress(psycopg.Error),
            psycopg.connect(self.target.dsn(timeout_s=5), autocommit=True) as conn,
        ):
            conn.execute(f"DELETE FROM {self.table} WHERE run_id = %s", (self.run_id,))

    def measure(self, t_inject_wall_epoch: float) -> LedgerMeasure:
        acks = self.acknowledged()
        loss = data_loss(
            acks,
            self.surviving(),
            ledger_start=self.started_at or t_inject_wall_epoch,
            t_inject=t_inject_wall_epoch,
        )
        detail = (
            f"{loss.acknowledged} acknowledged, {loss.survived} survived, {loss.lost_writes} lost"
            + (
                f" (from seq {loss.oldest_lost_seq}; {loss.lost_before_inject} acknowledged "
                f"before t_inject, {loss.lost_writes - loss.lost_before_inject} after)"
                if loss.oldest_lost_seq is not None
                else ""
            )
            + f"; {self.in_doubt} in doubt; rate {self.rate_per_s:g}/s"
        )
        if self.retention_s == 0:
            self._forget_run()
        return LedgerMeasure(
            rpa_s=loss.rpa_s,
            lost_writes=loss.lost_writes,
            acknowledged=loss.acknowledged,
            survived=loss.survived,
            detail=detail,
            oldest_lost_at=loss.oldest_lost_at,
            newest_lost_at=loss.newest_lost_at,
            recovery_point=loss.recovery_point,
            lost_before_inject=loss.lost_before_inject,
        )

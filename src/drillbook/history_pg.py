"""The history's PostgreSQL store: one database many runners record into.

A team's runners (CI pipelines, CronJobs in several clusters, people's laptops) each write their
own journal; the quarterly report must see all of them, so they record into one shared database
chosen by a DSN (``history: postgresql://drill@db/history`` in drillbook.yaml). The schema and the
queries are the SQLite store's (see :mod:`drillbook.history`); only what the dialects disagree on
lives here: column types, a byte-order collation (so ``ORDER BY`` and ``started_at >= ?`` compare
the way SQLite does, and both stores give byte-identical trends), and the schema's creation, which
PostgreSQL must serialise between concurrent runners with an advisory lock.

The password never sits in drillbook.yaml: the DSN names it as ``${DRILLBOOK_HISTORY_PASSWORD}``
(any ``${VAR}``), or libpq reads ``PGPASSWORD``/``~/.pgpass``. Every value taken from the
environment is registered as a secret (:func:`drillbook.secretsources.register_value`), and
errors carry the DSN only redacted. psycopg is imported only when a PostgreSQL store is used.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from drillbook.errors import ConfigError
from drillbook.redact import redact_text
from drillbook.secretsources import register_value

if TYPE_CHECKING:
    import psycopg

__all__ = [
    "SCHEMA_LOCK_KEY",
    "HistoryStoreError",
    "PostgresStore",
    "expand_dsn",
    "is_dsn",
    "literal_password",
]

#: pg_advisory_xact_lock key serialising schema creation and migration between runners
#: (``CREATE TABLE IF NOT EXISTS`` is not safe against a concurrent twin in PostgreSQL).
SCHEMA_LOCK_KEY = 0x6472696C6C686973  # "drillhis"

_C = 'COLLATE "C"'
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT {_C} PRIMARY KEY,
    started_at TEXT {_C},
    ended_at TEXT {_C},
    environment TEXT {_C},
    host TEXT {_C},
    git_commit TEXT {_C},
    exit_status INTEGER,
    drillbook_version TEXT {_C},
    source TEXT {_C},
    recorded_at TEXT {_C} NOT NULL
);
CREATE TABLE IF NOT EXISTS journals (
    run_id TEXT {_C} PRIMARY KEY REFERENCES runs(run_id),
    body BYTEA NOT NULL
);
CREATE TABLE IF NOT EXISTS drills (
    run_id TEXT {_C} NOT NULL REFERENCES runs(run_id),
    drill_id TEXT {_C} NOT NULL,
    scenario TEXT {_C} NOT NULL,
    target TEXT {_C} NOT NULL,
    started_at TEXT {_C} NOT NULL,
    quarter TEXT {_C} NOT NULL,
    verdict TEXT {_C} NOT NULL,
    ttd_s DOUBLE PRECISION,
    rta_s DOUBLE PRECISION,
    rpa_s DOUBLE PRECISION,
    rto_s DOUBLE PRECISION,
    rpo_s DOUBLE PRECISION,
    response_target_s DOUBLE PRECISION,
    lost_writes BIGINT,
    severity TEXT {_C},
    fault TEXT {_C},
    reasons TEXT {_C} NOT NULL,
    PRIMARY KEY (run_id, drill_id)
);
CREATE INDEX IF NOT EXISTS drills_quarter ON drills (quarter, started_at);
"""

# The SQLite store's one migration, mirrored: a history written before alert drills has no
# tta_s column. Then the trend's index, which covers it.
_MIGRATIONS = (
    "ALTER TABLE drills ADD COLUMN IF NOT EXISTS tta_s DOUBLE PRECISION",
    "CREATE INDEX IF NOT EXISTS drills_series ON drills (scenario, target, started_at, run_id,"
    " drill_id) INCLUDE (quarter, verdict, ttd_s, rta_s, rto_s, rpa_s, rpo_s, tta_s)",
)

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_USERINFO = re.compile(r"^[a-z][a-z0-9+.-]*://(?P<user>[^:/@?#]*)(?::(?P<pw>[^@/?#]*))?@", re.I)
_PW_PARAM = re.compile(r"[?&]password=(?P<pw>[^&#]*)", re.I)


class HistoryStoreError(RuntimeError):
    """The PostgreSQL history could not be reached or written; the message is redacted."""


def is_dsn(text: str) -> bool:
    """Whether a ``history`` value names a PostgreSQL database rather than a SQLite file."""
    return text.startswith(("postgresql://", "postgres://"))


def literal_password(template: str) -> bool:
    """Whether the DSN carries a password itself rather than a ``${VAR}`` naming one."""
    for match in (_USERINFO.match(template), _PW_PARAM.search(template)):
        pw = match.group("pw") if match is not None else None
        if pw and not _VAR.fullmatch(pw):
            return True
    return False


_LITERAL = (
    "expected the password from the environment, e.g. "
    "postgresql://drill:${DRILLBOOK_HISTORY_PASSWORD}@db/history or PGPASSWORD, "
    "not written in the DSN"
)


def expand_dsn(
    template: str, environ: Mapping[str, str] | None = None, *, source: str = "history"
) -> str:
    """Fill ``${VAR}`` from the environment and register every filled value as a secret.

    A password written literally in the DSN is refused: drillbook.yaml is committed, and a
    secret in it is a leaked secret. ``PGPASSWORD``, which libpq reads itself, is registered too.
    """
    env = os.environ if environ is None else environ
    if literal_password(template):
        raise ConfigError(_LITERAL, source=source, field=redact_text(template))

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        value = env.get(name)
        if value is None:
            raise ConfigError(
                f"expected ${name} in the environment (the history DSN names it)",
                source=source,
                field=name,
            )
        register_value(value)
        return value

    register_value(env.get("PGPASSWORD"))
    return _VAR.sub(fill, template)


def _current(conn: psycopg.Connection[Any]) -> bool:
    """Whether the schema is there and migrated (the last migration's index exists)."""
    row = conn.execute(
        "SELECT to_regclass('journals') IS NOT NULL AND to_regclass('drills_series') IS NOT NULL"
    ).fetchone()
    return bool(row and row[0])


class PostgresStore:
    """The store protocol (see :class:`drillbook.history.Store`) on a psycopg connection.

    Autocommit outside :meth:`transaction`, so a read never holds a transaction open.
    """

    dialect = "postgresql"

    def __init__(self, conn: psycopg.Connection[Any], dsn: str) -> None:
        self._conn = conn
        self._dsn = dsn

    @classmethod
    @contextmanager
    def open(cls, dsn: str) -> Iterator[PostgresStore]:
        """Connect, create or migrate the schema (serialised between runners), yield the store."""
        import psycopg

        try:
            with psycopg.connect(dsn, autocommit=True, connect_timeout=10) as conn:
                store = cls(conn, dsn)
                if not _current(conn):  # DDL only when needed: a runner's role may not own them
                    with conn.transaction():
                        conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK_KEY,))
                        conn.execute(_SCHEMA)
                        for statement in _MIGRATIONS:
                            conn.execute(statement)
                yield store
        except psycopg.Error as exc:
            raise HistoryStoreError(
                f"PostgreSQL history {redact_text(dsn)}: {redact_text(str(exc).strip())}"
            ) from None

    @property
    def location(self) -> str:
        return redact_text(self._dsn)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self._conn.transaction():
            yield

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self._conn.execute(sql.replace("?", "%s"), params)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with self._conn.cursor() as cur:
            cur.executemany(sql.replace("?", "%s"), rows)

    def blob(self, value: Any) -> bytes:
        return bytes(value)

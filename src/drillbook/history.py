"""The history: every recorded run in one database, and the MTTR/MTTD trend queries over it.

One row per run and one per drill, with the measures the trend and quarterly reports need in plain
columns under a covering index, so ``drillbook trend`` over 10,000 runs reads one index and never
parses a journal. The full journal is kept too (zlib-compressed, in its own table) so reports can
be re-rendered and history rebuilt from the database alone. Recording is idempotent per run id
(and per run id + drill id): ``INSERT ... ON CONFLICT DO NOTHING`` in one transaction, so any
number of runners recording at once lose nothing and duplicate nothing.

Two stores behind one small protocol (:class:`Store`): the embedded SQLite file (the default,
``reports/history.sqlite``) and a shared PostgreSQL database for teams (a ``postgresql://`` DSN,
see :mod:`drillbook.history_pg`). Every query below is written once and runs on both.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, closing, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple, Protocol

from drillbook.clock import get_clock
from drillbook.errors import ConfigError
from drillbook.journaldoc import (
    drill_target_key,
    load_journal,
    num,
    parse_time,
    quarter_of,
    seq,
    validate_journal,
)

__all__ = [
    "DEFAULT_HISTORY_NAME",
    "DrillRow",
    "HistoryLocation",
    "ImportResult",
    "QuarterStats",
    "Stats",
    "Store",
    "TrendSeries",
    "default_history_path",
    "describe_location",
    "drill_rows",
    "import_files",
    "load_run_journal",
    "open_store",
    "percentile",
    "quarter_bounds",
    "record_run",
    "record_runs",
    "recorded_run_ids",
    "resolve_location",
    "stats",
    "sync_reports_dir",
    "trend",
]

DEFAULT_HISTORY_NAME = "history.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    started_at TEXT,
    ended_at TEXT,
    environment TEXT,
    host TEXT,
    git_commit TEXT,
    exit_status INTEGER,
    drillbook_version TEXT,
    source TEXT,
    recorded_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS journals (
    run_id TEXT PRIMARY KEY REFERENCES runs(run_id),
    body BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS drills (
    run_id TEXT NOT NULL REFERENCES runs(run_id),
    drill_id TEXT NOT NULL,
    scenario TEXT NOT NULL,
    target TEXT NOT NULL,
    started_at TEXT NOT NULL,
    quarter TEXT NOT NULL,
    verdict TEXT NOT NULL,
    ttd_s REAL,
    rta_s REAL,
    rpa_s REAL,
    rto_s REAL,
    rpo_s REAL,
    response_target_s REAL,
    lost_writes INTEGER,
    severity TEXT,
    fault TEXT,
    reasons TEXT NOT NULL,
    tta_s REAL,
    PRIMARY KEY (run_id, drill_id)
) WITHOUT ROWID;
-- Covering index for the trend and quarterly queries: read in order, never the table (the
-- primary key run_id, drill_id rides along in every index of a WITHOUT ROWID table).
DROP INDEX IF EXISTS drills_trend;
DROP INDEX IF EXISTS drills_series;
CREATE INDEX IF NOT EXISTS drills_quarter ON drills (quarter, started_at);
"""


def default_history_path(reports_dir: Path) -> Path:
    """``reports/history.sqlite``: beside the runs it indexes."""
    return reports_dir / DEFAULT_HISTORY_NAME


#: Where the history lives: a SQLite file, or a ``postgresql://`` DSN (already expanded).
HistoryLocation = Path | str


class Store(Protocol):
    """One open history database. SQL uses ``?`` placeholders; a store translates them."""

    dialect: str

    def transaction(self) -> AbstractContextManager[None]: ...

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any: ...

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...

    def blob(self, value: Any) -> bytes: ...


class _SQLiteStore:
    """The embedded default: one file, WAL, written by one host's runners."""

    dialect = "sqlite"

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self._conn:
            yield

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self._conn.execute(sql, params)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._conn.executemany(sql, rows)

    def blob(self, value: Any) -> bytes:
        return bytes(value)


def resolve_location(
    flag: str | None, configured: Callable[[], HistoryLocation]
) -> HistoryLocation:
    """Where a command reads the history: ``--history`` > ``$DRILLBOOK_HISTORY`` > the
    config's ``history`` (or the reports folder's file), as the run that recorded it chose.

    Each may be a SQLite file or a ``postgresql://`` DSN (its ``${VAR}``s filled from the
    environment and registered as secrets). One rule for every command that reads history, so
    trend, the quarterly report and evidence coverage read the same runs."""
    from drillbook.history_pg import expand_dsn, is_dsn

    explicit, source = (
        (flag, "--history") if flag else (os.environ.get("DRILLBOOK_HISTORY"), "$DRILLBOOK_HISTORY")
    )
    if not explicit:
        return configured()
    return expand_dsn(explicit, source=source) if is_dsn(explicit) else Path(explicit)


def _is_dsn(location: HistoryLocation) -> bool:
    return isinstance(location, str) and location.startswith(("postgresql://", "postgres://"))


def describe_location(location: HistoryLocation) -> str:
    """The location for a message: a DSN with its password removed."""
    from drillbook.redact import redact_text

    return redact_text(str(location))


def _exists(location: HistoryLocation) -> bool:
    """A shared database always "exists" (it is created on first use); a file may not."""
    return _is_dsn(location) or Path(location).exists()


@contextmanager
def open_store(location: HistoryLocation, *, create: bool = True) -> Iterator[Store]:
    """Open the history at ``location``, creating or migrating its schema."""
    if _is_dsn(location):
        from drillbook.history_pg import PostgresStore

        with PostgresStore.open(str(location)) as pg:
            yield pg
        return
    db_path = Path(location)
    if not create and not db_path.exists():
        raise ConfigError(
            "expected a history database (run drills or import journals first)", source=str(db_path)
        )
    db_path.parent.mkdir(parents=True, exist_ok=True)
    with closing(sqlite3.connect(db_path, timeout=30)) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.executescript(_SCHEMA)
        _migrate(conn)
        yield _SQLiteStore(conn)


def _migrate(conn: sqlite3.Connection) -> None:
    """A history written before alert drills has no ``tta_s`` column: add it (SQLite appends
    it, so rows keep their column order), then the covering index that includes it.
    (history_pg.py mirrors this for PostgreSQL.)"""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(drills)")}
    if "tta_s" not in columns:
        conn.execute("ALTER TABLE drills ADD COLUMN tta_s REAL")
    conn.execute(
        "CREATE INDEX IF NOT EXISTS drills_series_tta ON drills (scenario, target, started_at,"
        " quarter, verdict, ttd_s, rta_s, rto_s, rpa_s, rpo_s, tta_s)"
    )


def _iso(when: datetime | None) -> str:
    """Fixed-width UTC ISO text, so SQL string order is time order."""
    if when is None:
        return ""
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


_RUN_COLUMNS = (
    "run_id, started_at, ended_at, environment, host, git_commit, exit_status,"
    " drillbook_version, source, recorded_at"
)
_DRILL_COLUMNS = (
    "run_id, drill_id, scenario, target, started_at, quarter, verdict, ttd_s, rta_s, rpa_s,"
    " rto_s, rpo_s, response_target_s, lost_writes, severity, fault, reasons, tta_s"
)


def _marks(n: int) -> str:
    return ",".join("?" * n)


def _insert(store: Store, journal: Mapping[str, Any], source: str) -> bool:
    """Record one run inside the caller's transaction; ``False`` if its run id was there.

    ``ON CONFLICT DO NOTHING`` rather than look-then-insert: a concurrent runner recording the
    same run waits on the row's lock and then finds it, instead of failing or doubling it.
    """
    validate_journal(journal, source=source)
    run_id = str(journal["run_id"])
    env = journal.get("environment")
    env = env if isinstance(env, Mapping) else {}
    run_start = parse_time(journal.get("started_at"))
    exit_status = journal.get("exit_status")
    cur = store.execute(
        f"INSERT INTO runs ({_RUN_COLUMNS}) VALUES ({_marks(10)}) ON CONFLICT (run_id) DO NOTHING",
        (
            run_id,
            _iso(run_start),
            _iso(parse_time(journal.get("ended_at"))),
            str(env.get("name") or ""),
            str(env.get("host") or ""),
            env.get("git_commit") if isinstance(env.get("git_commit"), str) else None,
            exit_status if isinstance(exit_status, int) else None,
            str(journal.get("drillbook_version") or ""),
            source,
            _iso(get_clock().wall().astimezone()),
        ),
    )
    if cur.rowcount == 0:
        return False
    body = json.dumps(journal, separators=(",", ":"), sort_keys=True).encode()
    store.execute(
        "INSERT INTO journals (run_id, body) VALUES (?, ?)", (run_id, zlib.compress(body, 6))
    )
    rows: dict[str, tuple[Any, ...]] = {}  # by drill id: a repeated id keeps its last record
    for drill in seq(journal.get("drills")):
        started = parse_time(drill.get("started_at")) or run_start
        if started is None:
            raise ConfigError("expected a start time", source=source, field="started_at")
        measures = drill.get("measures") if isinstance(drill.get("measures"), Mapping) else {}
        objectives = drill.get("objectives") if isinstance(drill.get("objectives"), Mapping) else {}
        fault = drill.get("fault") if isinstance(drill.get("fault"), Mapping) else {}
        lost = measures.get("lost_writes")
        verdict = drill.get("verdict")
        rows[str(drill["id"])] = (
            run_id,
            str(drill["id"]),
            str(drill.get("scenario") or drill["id"]),
            drill_target_key(drill),
            _iso(started),
            quarter_of(started),
            verdict if isinstance(verdict, str) and verdict else "error",
            num(measures.get("ttd_s")),
            num(measures.get("rta_s")),
            num(measures.get("rpa_s")),
            num(objectives.get("rto_s")),
            num(objectives.get("rpo_s")),
            num(objectives.get("response_target_s")),
            lost if isinstance(lost, int) and not isinstance(lost, bool) else None,
            str(drill.get("severity") or objectives.get("severity") or ""),
            str(fault.get("type") or ""),
            json.dumps(_reasons(drill)),
            num(measures.get("tta_s")),
        )
    if rows:
        store.executemany(
            f"INSERT INTO drills ({_DRILL_COLUMNS}) VALUES ({_marks(18)})"
            " ON CONFLICT (run_id, drill_id) DO NOTHING",
            list(rows.values()),
        )
    return True


def _in_run_id_order(
    journals: Iterable[tuple[Mapping[str, Any], str]],
) -> list[tuple[Mapping[str, Any], str]]:
    """Writers that insert overlapping runs in one order never deadlock one another."""
    return sorted(journals, key=lambda item: str(item[0].get("run_id")))


def _reasons(drill: Mapping[str, Any]) -> list[str]:
    """Why a drill did not pass: its reasons, else its failed checks."""
    reasons = [str(r) for r in seq(drill.get("reasons")) if r]
    if not reasons:
        for check in seq(drill.get("checks")):
            if isinstance(check, Mapping) and check.get("ok") is False:
                reasons.append(f"{check.get('name')}: {check.get('detail') or 'failed'}")
    return reasons


def record_run(db: HistoryLocation, journal: Mapping[str, Any], *, source: str = "") -> bool:
    """Record one run; ``False`` when its run id was already there (recording is idempotent)."""
    with open_store(db) as store, store.transaction():
        return _insert(store, journal, source or "journal")


def record_runs(db: HistoryLocation, journals: Iterable[tuple[Mapping[str, Any], str]]) -> int:
    """Record many ``(journal, source)`` pairs in one transaction; returns how many were new."""
    with open_store(db) as store, store.transaction():
        return sum(_insert(store, j, source) for j, source in _in_run_id_order(journals))


@dataclass(frozen=True)
class ImportResult:
    """What an import did, for the one line the CLI prints."""

    imported: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)


def import_files(db: HistoryLocation, paths: Sequence[Path]) -> ImportResult:
    """Import journal.json files (or run folders) recorded elsewhere, e.g. CI artifacts.

    All files are read and checked first, so one bad file imports nothing.
    """
    journals = []
    for path in paths:
        journal = load_journal(path)
        journals.append((journal, str(path)))
    new: dict[int, bool] = {}
    with open_store(db) as store, store.transaction():
        for doc, source in _in_run_id_order(journals):
            new[id(doc)] = _insert(store, doc, source)
    result = ImportResult()
    for doc, _source in journals:  # reported in the order given
        (result.imported if new[id(doc)] else result.already).append(str(doc["run_id"]))
    return result


def recorded_run_ids(db: HistoryLocation) -> set[str]:
    """Run ids already in the history."""
    if not _exists(db):
        return set()
    with open_store(db) as store:
        return {row[0] for row in store.execute("SELECT run_id FROM runs")}


def sync_reports_dir(db: HistoryLocation, reports_dir: Path) -> int:
    """Record every ``reports/<run>/journal.json`` not yet in the history; returns how many.

    Trend and quarterly reports call this first, so they are right even for runs whose recording
    step did not happen (a crashed session, reports copied in by hand). Unreadable journals are
    skipped here: the run folder may still be being written.
    """
    if not reports_dir.is_dir():
        return 0
    known = recorded_run_ids(db)
    fresh = []
    for path in sorted(reports_dir.glob("*/journal.json")):
        if path.parent.is_symlink() or path.parent.name in known:
            continue
        try:
            journal = load_journal(path)
        except ConfigError:
            continue
        if journal["run_id"] not in known:
            fresh.append((journal, str(path)))
    return record_runs(db, fresh) if fresh else 0


def load_run_journal(db: HistoryLocation, run_id: str) -> dict[str, Any] | None:
    """The full journal of a recorded run, or None."""
    if not _exists(db):
        return None
    with open_store(db) as store:
        row = store.execute("SELECT body FROM journals WHERE run_id = ?", (run_id,)).fetchone()
        body = None if row is None else store.blob(row[0])
    if body is None:
        return None
    data = json.loads(zlib.decompress(body))
    assert isinstance(data, dict)
    return data


# ---------------------------------------------------------------------------------------------
# Queries


class DrillRow(NamedTuple):
    """One recorded drill, as the trend and quarterly reports see it.

    A named tuple, not a dataclass: the trend builds one per recorded drill (10,000+), and tuple
    construction straight from the SQLite row is several times cheaper.
    """

    run_id: str
    drill_id: str
    scenario: str
    target: str
    started_at: str
    quarter: str
    verdict: str
    ttd_s: float | None
    rta_s: float | None
    rpa_s: float | None
    rto_s: float | None
    rpo_s: float | None
    lost_writes: int | None = None
    severity: str = ""
    fault: str = ""
    reasons: tuple[str, ...] = ()
    tta_s: float | None = None


def quarter_bounds(quarter: str) -> tuple[str, str]:
    """``2026Q4`` → ISO start (inclusive) and end (exclusive) strings."""
    q = quarter.strip().upper()
    if len(q) != 6 or q[4] != "Q" or not q[:4].isdigit() or q[5] not in "1234":
        raise ConfigError("expected a quarter like 2026Q4", source="--quarter", field=quarter)
    year, n = int(q[:4]), int(q[5])
    start = f"{year:04d}-{3 * (n - 1) + 1:02d}-01"
    end = f"{year + 1:04d}-01-01" if n == 4 else f"{year:04d}-{3 * n + 1:02d}-01"
    return start, end


def drill_rows(
    db: HistoryLocation,
    *,
    scenario: str | None = None,
    since: str | None = None,
    until: str | None = None,
    with_details: bool = False,
) -> list[DrillRow]:
    """Recorded drills by scenario, target and time; ``since``/``until`` are ISO date prefixes."""
    cols = "run_id, drill_id, scenario, target, started_at, quarter, verdict, ttd_s, rta_s, rpa_s"
    cols += ", rto_s, rpo_s"
    if with_details:
        cols += ", lost_writes, severity, fault, reasons, tta_s"
    where, params = _filters(scenario, since, until)
    sql = f"SELECT {cols} FROM drills{where} ORDER BY {_SERIES_ORDER}"
    with open_store(db, create=False) as store:
        raw = store.execute(sql, params).fetchall()
    if not with_details:
        return [DrillRow(*r) for r in raw]
    return [DrillRow._make((*r[:15], tuple(json.loads(r[15])), r[16])) for r in raw]


#: Oldest first per scenario and target; run and drill ids break a tie in start time (two runners
#: starting in the same millisecond), so both stores return the same order.
_SERIES_ORDER = "scenario, target, started_at, run_id, drill_id"


def _filters(scenario: str | None, since: str | None, until: str | None) -> tuple[str, list[str]]:
    where, params = [], []
    if scenario:
        where.append("scenario = ?")
        params.append(scenario)
    if since:
        where.append("started_at >= ?")
        params.append(since)
    if until:
        where.append("started_at < ?")
        params.append(until)
    return (" WHERE " + " AND ".join(where) if where else ""), params


class _TrendRow(NamedTuple):
    """Just the columns the trend needs, all in the covering index."""

    scenario: str
    target: str
    started_at: str
    quarter: str
    verdict: str
    ttd_s: float | None
    rta_s: float | None
    rto_s: float | None
    tta_s: float | None


@dataclass(frozen=True)
class Stats:
    """Mean beside p50 and p90: means alone mislead on heavy-tailed recovery times."""

    n: int
    mean: float | None
    p50: float | None
    p90: float | None


def percentile(ordered: Sequence[float], p: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default); ``ordered`` is sorted."""
    if not ordered:
        return None
    k = (len(ordered) - 1) * p / 100.0
    lo, hi = math.floor(k), math.ceil(k)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def stats(values: Iterable[float | None]) -> Stats:
    """Count, mean, p50 and p90 of the values that were measured."""
    ordered = sorted(v for v in values if v is not None)
    if not ordered:
        return Stats(0, None, None, None)
    return Stats(
        len(ordered), sum(ordered) / len(ordered), percentile(ordered, 50), percentile(ordered, 90)
    )


@dataclass(frozen=True)
class QuarterStats:
    """One scenario/target in one quarter."""

    quarter: str
    count: int
    passed: int
    mttd: Stats
    mttr: Stats
    rto_s: float | None
    over_rto: int
    not_recovered: int
    #: Alert drills: time to alert (the team's monitoring), beside drillbook's own TTD.
    mtta: Stats = Stats(0, None, None, None)

    @property
    def pass_rate(self) -> float:
        return self.passed / self.count if self.count else 0.0


@dataclass(frozen=True)
class TrendSeries:
    """The trend of one scenario on one target."""

    scenario: str
    target: str
    quarters: list[QuarterStats]
    points: list[tuple[str, float | None, str]]  # (started_at, rta_s, verdict), oldest first
    rto_s: float | None
    latest_rta_s: float | None
    latest_at: str
    regression: bool
    regression_reason: str

    @property
    def count(self) -> int:
        return sum(q.count for q in self.quarters)


def _quarter_stats(quarter: str, rows: Sequence[_TrendRow]) -> QuarterStats:
    rto = next((r.rto_s for r in reversed(rows) if r.rto_s is not None), None)
    return QuarterStats(
        quarter=quarter,
        count=len(rows),
        passed=sum(r.verdict == "passed" for r in rows),
        mttd=stats(r.ttd_s for r in rows),
        mttr=stats(r.rta_s for r in rows),
        rto_s=rto,
        over_rto=sum(
            1 for r in rows if r.rta_s is not None and r.rto_s is not None and r.rta_s > r.rto_s
        ),
        not_recovered=sum(r.rta_s is None for r in rows),
        mtta=stats(r.tta_s for r in rows),
    )


def _series(scenario: str, target: str, rows: Sequence[_TrendRow]) -> TrendSeries:
    by_quarter: dict[str, list[_TrendRow]] = {}
    for row in rows:
        by_quarter.setdefault(row.quarter, []).append(row)
    quarters = [_quarter_stats(q, by_quarter[q]) for q in sorted(by_quarter)]
    recovered = [r for r in rows if r.rta_s is not None]
    rto = next((r.rto_s for r in reversed(rows) if r.rto_s is not None), None)
    regression, reason = False, ""
    latest_rta, latest_at = None, rows[-1].started_at if rows else ""
    if recovered:
        latest = recovered[-1]
        latest_rta, latest_at = latest.rta_s, latest.started_at
        assert latest_rta is not None
        reasons = []
        if latest.rto_s is not None and latest_rta > latest.rto_s:
            reasons.append(f"latest RTA {latest_rta:.2f}s > RTO {latest.rto_s:.2f}s")
        earlier = [q for q in quarters if q.quarter < latest.quarter and q.mttr.p90 is not None]
        if earlier and earlier[-1].mttr.p90 is not None and latest_rta > earlier[-1].mttr.p90:
            prev = earlier[-1]
            reasons.append(
                f"latest RTA {latest_rta:.2f}s > {prev.quarter} p90 {prev.mttr.p90:.2f}s"
            )
        regression, reason = bool(reasons), "; ".join(reasons)
    return TrendSeries(
        scenario,
        target,
        quarters,
        [(r.started_at, r.rta_s, r.verdict) for r in rows],
        rto,
        latest_rta,
        latest_at,
        regression,
        reason,
    )


def trend(
    db: HistoryLocation, *, scenario: str | None = None, since: str | None = None
) -> list[TrendSeries]:
    """Per scenario and target: counts, pass rate, MTTD/MTTR by quarter, and the regression flag.

    "Previous quarter" is the latest earlier quarter with a measured RTA, so a skipped quarter
    does not hide a regression.
    """
    where, params = _filters(scenario, since, None)
    sql = f"SELECT {', '.join(_TrendRow._fields)} FROM drills{where}"
    sql += f" ORDER BY {_SERIES_ORDER}"
    with open_store(db, create=False) as store:
        rows = [_TrendRow._make(r) for r in store.execute(sql, params)]
    out: list[TrendSeries] = []
    start = 0
    for i in range(1, len(rows) + 1):
        if i == len(rows) or (rows[i].scenario, rows[i].target) != (
            rows[start].scenario,
            rows[start].target,
        ):
            out.append(_series(rows[start].scenario, rows[start].target, rows[start:i]))
            start = i
    return out

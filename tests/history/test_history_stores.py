"""The PostgreSQL history beside the SQLite one: concurrent runners, the same answers, migration.

Every test here runs against the sandbox's real PostgreSQL server.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from histjournals import journals

from drillbook.history import drill_rows, load_run_journal, open_store, record_run, trend
from drillbook.report.quarter import build_quarter_report

HERE = Path(__file__).parent
SRC = HERE.parent.parent / "src"
WRITERS = 8


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), env.get("PYTHONPATH")]))
    env.pop("DRILLBOOK_HISTORY", None)
    env.update(extra)
    return env


def _drillbook(*args: str, cwd: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "drillbook.cli", *args],
        cwd=cwd,
        env=_env(**extra),
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize("store", ["postgresql", "sqlite"])
def test_eight_concurrent_writers_lose_nothing_and_double_nothing(
    store: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    location = (
        request.getfixturevalue("pg_dsn") if store == "postgresql" else str(tmp_path / "h.sqlite")
    )
    runs = journals(160)
    share = len(runs) // WRITERS
    go = tmp_path / "go"
    procs = []
    for w in range(WRITERS):
        # Each run is given to two writers (its own and the next one's), in opposite orders, so
        # the same run ids race both ways; half the writers record run by run, half in one batch.
        mine = runs[w * share : (w + 1) * share]
        nxt = (w + 1) % WRITERS
        theirs = runs[nxt * share : (nxt + 1) * share]
        jobs = tmp_path / f"jobs{w}.json"
        jobs.write_text(json.dumps(mine + list(reversed(theirs))))
        mode = "each" if w % 2 else "batch"
        procs.append(
            subprocess.Popen(
                [sys.executable, str(HERE / "writer.py"), location, str(jobs), str(go), mode],
                env=_env(),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    go.touch()
    new = 0
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        new += int(out.strip())
    assert new == len(runs)  # each run reported new exactly once, however the races fell
    db: Path | str = location if store == "postgresql" else Path(location)
    with open_store(db) as s:
        run_ids = [r[0] for r in s.execute("SELECT run_id FROM runs ORDER BY run_id")]
        pairs = s.execute("SELECT run_id, drill_id FROM drills").fetchall()
        bodies = s.execute("SELECT COUNT(*) FROM journals").fetchone()[0]
    assert run_ids == sorted(j["run_id"] for j in runs)
    assert bodies == len(runs)
    expected = {(j["run_id"], d["id"]) for j in runs for d in j["drills"]}
    assert len(pairs) == len(expected) and set(map(tuple, pairs)) == expected
    assert load_run_journal(db, runs[77]["run_id"]) == runs[77]


def _strip_generated(text: str) -> str:
    return re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", "<generated>", text)


def test_trend_and_quarter_report_identical_from_sqlite_and_postgresql(
    pg_dsn: str, tmp_path: Path
) -> None:
    folder = tmp_path / "journals"
    for j in journals(120):
        run = folder / j["run_id"]
        run.mkdir(parents=True)
        (run / "journal.json").write_text(json.dumps(j))
    files = sorted(str(p) for p in folder.glob("*/journal.json"))
    sqlite = str(tmp_path / "history.sqlite")
    reports = tmp_path / "reports"
    reports.mkdir()
    outputs = {}
    for name, location in (("sqlite", sqlite), ("postgresql", pg_dsn)):
        imported = _drillbook("history", "import", "--history", location, *files, cwd=tmp_path)
        assert imported.returncode == 0, imported.stderr
        assert imported.stdout.startswith("imported 120 run(s), 0 already recorded")
        html = tmp_path / f"trend-{name}.html"
        shown = _drillbook(
            "--reports-dir", str(reports), "trend", "--no-sync", "--quarters", "0",
            "--history", location, "--out", str(tmp_path / "trend.html"), cwd=tmp_path,
        )  # fmt: skip
        assert shown.returncode == 0, shown.stderr
        (tmp_path / "trend.html").rename(html)
        out_dir = tmp_path / f"quarter-{name}"
        quarter = _drillbook(
            "--reports-dir", str(reports), "report", "--quarter", "2026Q2",
            "--history", location, "--out", str(out_dir), cwd=tmp_path,
        )  # fmt: skip
        assert quarter.returncode == 0, quarter.stderr
        outputs[name] = (shown.stdout, html, sorted(out_dir.iterdir()))
    (sq_out, sq_html, sq_files), (pg_out, pg_html, pg_files) = (
        outputs["sqlite"],
        outputs["postgresql"],
    )
    assert len(sq_out.splitlines()) > 40  # a real table, many series
    assert sq_out.encode() == pg_out.encode()  # byte-identical terminal trend
    assert _strip_generated(sq_html.read_text()) == _strip_generated(pg_html.read_text())
    assert [p.name for p in sq_files] == [p.name for p in pg_files] and sq_files
    for a, b in zip(sq_files, pg_files, strict=True):
        assert _strip_generated(a.read_text()) == _strip_generated(b.read_text()), a.name
    # And below the renderers: the same rows, series and quarter report, value for value.
    assert drill_rows(Path(sqlite), with_details=True) == drill_rows(pg_dsn, with_details=True)
    assert trend(Path(sqlite)) == trend(pg_dsn)
    assert build_quarter_report(Path(sqlite), "2026Q2") == build_quarter_report(pg_dsn, "2026Q2")


def test_a_history_from_before_alert_drills_gains_tta_in_place(pg_dsn: str) -> None:
    import psycopg

    from drillbook.history_pg import _SCHEMA

    old = journals(1, drills_per_run=1)[0]
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(_SCHEMA)  # the shape before tta_s, with one run recorded by hand
        conn.execute(
            "INSERT INTO runs (run_id, recorded_at) VALUES ('old-run', '2026-01-01T00:00:00.000Z')"
        )
        conn.execute(
            "INSERT INTO drills (run_id, drill_id, scenario, target, started_at, quarter, verdict,"
            " rta_s, reasons) VALUES ('old-run', 'd', 'alpha', 'web', '2026-01-02T00:00:00.000Z',"
            " '2026Q1', 'passed', 1.5, '[]')"
        )
        columns = [r[0] for r in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'drills'"
        )]  # fmt: skip
        assert "tta_s" not in columns
    fresh = journals(2, seed=7, drills_per_run=1)[1]
    fresh["drills"][0]["measures"]["tta_s"] = 12.25
    assert record_run(pg_dsn, fresh)
    rows = {r.run_id: r for r in drill_rows(pg_dsn, with_details=True)}
    assert rows["old-run"].tta_s is None and rows["old-run"].rta_s == 1.5
    assert rows[fresh["run_id"]].tta_s == 12.25
    assert not record_run(pg_dsn, fresh)  # still idempotent after the migration
    assert old["run_id"] not in rows


def test_dsn_password_from_the_environment_is_never_printed(pg_dsn: str, tmp_path: Path) -> None:
    secret = "hist-s3cret-Qx9"
    template = pg_dsn.replace("postgresql://postgres@", "postgresql://postgres:${HIST_PW}@")
    (tmp_path / "drillbook.yaml").write_text(f"environment: staging\nhistory: {template}\n")
    run = journals(1)[0]
    (tmp_path / "journal.json").write_text(json.dumps(run))
    ok = _drillbook("history", "import", "journal.json", cwd=tmp_path, HIST_PW=secret)
    assert ok.returncode == 0, ok.stderr
    assert "imported 1 run(s)" in ok.stdout and "postgres:***@" in ok.stdout
    assert secret not in ok.stdout + ok.stderr
    assert load_run_journal(pg_dsn, run["run_id"]) == run
    # An unreachable server: a harness error (exit 4), the password still hidden.
    port = int(re.search(r":(\d+)/", pg_dsn).group(1))  # type: ignore[union-attr]
    dead = template.replace(f":{port}/", ":1/")
    (tmp_path / "drillbook.yaml").write_text(f"environment: staging\nhistory: {dead}\n")
    bad = _drillbook("history", "import", "journal.json", cwd=tmp_path, HIST_PW=secret)
    assert bad.returncode == 4, bad.stdout + bad.stderr
    assert "PostgreSQL history" in bad.stderr and secret not in bad.stdout + bad.stderr
    # The variable unset: bad input (exit 2), naming it.
    missing = _drillbook("history", "import", "journal.json", cwd=tmp_path)
    assert missing.returncode == 2, missing.stdout + missing.stderr
    assert "$HIST_PW" in missing.stderr


def test_a_runner_role_without_create_records_and_reads_once_the_schema_exists(
    pg_dsn: str,
) -> None:
    """The database's owner creates the schema once; runners need only SELECT, INSERT, UPDATE, DELETE."""
    import psycopg

    from drillbook.locks import Holder
    from drillbook.locks_pg import PgArbiter

    first, second = journals(2, seed=3)
    assert record_run(pg_dsn, first)
    PgArbiter(pg_dsn).acquire("t", Holder.me("r", "d", 0.0, 1)).release()
    role = "runner_" + pg_dsn.rsplit("_", 1)[1]
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN")
        conn.execute(f"REVOKE CREATE ON SCHEMA public FROM PUBLIC, {role}")
        conn.execute(
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}"
        )
    as_runner = pg_dsn.replace("postgresql://postgres@", f"postgresql://{role}@")
    try:
        assert record_run(as_runner, second)
        assert {r.run_id for r in drill_rows(as_runner)} == {first["run_id"], second["run_id"]}
        lock = PgArbiter(as_runner).acquire("t", Holder.me("r2", "d", 0.0, 1))
        lock.release()
    finally:
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            conn.execute(f"DROP OWNED BY {role}")
            conn.execute(f"DROP ROLE {role}")


def test_evidence_coverage_reads_the_shared_postgresql_history(pg_dsn: str, tmp_path: Path) -> None:
    """Runners that record into one PostgreSQL history prove a control's coverage together:
    `evidence controls` reads the history the config names, not only a local SQLite file."""
    run = journals(1)[0]
    run["drills"][0]["controls"] = ["SOC2-A1.3"]
    (tmp_path / "journal.json").write_text(json.dumps(run))
    (tmp_path / "drillbook.yaml").write_text(f"environment: staging\nhistory: {pg_dsn}\n")
    (tmp_path / "reports").mkdir()  # this runner has no local runs at all
    ok = _drillbook("history", "import", "journal.json", cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    at = run["started_at"]
    shown = _drillbook("evidence", "controls", "--at", at, cwd=tmp_path)
    assert shown.returncode in (0, 1), shown.stdout + shown.stderr
    (line,) = [ln for ln in shown.stdout.splitlines() if ln.startswith("SOC2-A1.3")]
    assert at[:10] in line and run["drills"][0]["scenario"] in line
    # The same reports folder with no history configured: the control was never tested here.
    (tmp_path / "drillbook.yaml").write_text("environment: staging\n")
    alone = _drillbook("evidence", "controls", "--at", at, cwd=tmp_path)
    (line,) = [ln for ln in alone.stdout.splitlines() if ln.startswith("SOC2-A1.3")]
    assert "never" in line

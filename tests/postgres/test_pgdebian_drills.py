"""The database drills against a Debian-packaged PostgreSQL drillbook did not create.

Every test checks the truth independently of drillbook: the server's own log, pg_is_in_recovery()
through psql, rows written by psql before the fault, postgresql.auto.conf and pg_settings before
and after, and what is left on disk. The drillbook.yaml used is the one docs/postgres.md's Debian
walkthrough shows, so the walkthrough is tested too. Needs `scripts/testenv up pgdebian`.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pgdebian import Debian, debian_env, drillbook_run, fresh_debian, project_for

from drillbook.plugin import needs_backend

pytestmark = pytest.mark.timeout(900)

_VOLATILE = {"transaction_read_only", "application_name", "client_encoding"}


@pytest.fixture
def debian() -> Debian:
    env, reason = debian_env()
    needs_backend("postgres-debian", reason)
    assert env is not None
    return Debian(fresh_debian())


@pytest.fixture
def server(debian: Debian) -> Iterator[Debian]:
    """The server as it was before the test must be what is there after it."""
    debian.psql("DROP TABLE IF EXISTS truth_writes")
    debian.psql("CREATE TABLE truth_writes (n int PRIMARY KEY)")
    before_conf, before_settings = debian.auto_conf(), debian.settings()
    yield debian
    after = debian.settings()
    changed = {
        k: (before_settings.get(k), v)
        for k, v in after.items()
        if k not in _VOLATILE and before_settings.get(k) != v
    }
    assert debian.auto_conf() == before_conf
    assert changed == {}
    assert not debian.in_recovery()
    assert not (debian.data_dir / "recovery.signal").exists()
    assert not (debian.data_dir / "backup_manifest").exists()
    assert debian.archiving_works()
    debian.psql("DROP TABLE IF EXISTS truth_writes")


def _write_truth(debian: Debian, rows: int = 100) -> None:
    debian.psql(f"INSERT INTO truth_writes SELECT generate_series(1, {rows})")


def test_db_restore_rta_follows_the_servers_own_ready_line(server: Debian, tmp_path: Path) -> None:
    _write_truth(server)
    project = project_for(server, tmp_path)
    # This test is about RTA. How much the archive held at the fault depends on how far the
    # archiver lags archive_timeout (seconds on a loaded two-core host: a real loss, which the
    # drill reports); RPA against a broken archive is the next test's. A wider RPO keeps a
    # slow archiver from deciding this one.
    shipped = project / "scenarios" / "db_restore.yaml"
    assert "rpo: 5s" in shipped.read_text()
    shipped.write_text(shipped.read_text().replace("rpo: 5s", "rpo: 30s"))
    since = datetime.now(UTC)
    done, record = drillbook_run(project, "scenarios/db_restore.yaml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert record["verdict"] == "passed", record["reasons"]
    t_inject = datetime.fromisoformat(record["measures"]["t_inject"])
    ready = [t for t in server.ready_lines_after(since) if t > t_inject]
    assert ready, "the server log has no 'ready to accept connections' after the fault"
    recovered = t_inject + timedelta(seconds=record["measures"]["rta_s"])
    interval = record["probe_interval_s"]
    # Within one probe interval of the log line, either side: PostgreSQL takes writes once the
    # startup process leaves recovery and logs the line a little later; the probe looks every
    # interval (plus scheduling slack on a loaded host).
    assert abs((recovered - ready[0]).total_seconds()) <= interval + 0.1
    assert server.psql("SELECT count(*) FROM truth_writes") == "100"
    assert server.psql("SELECT count(*) FROM accounts") == "1000"


def test_db_restore_fails_on_rpa_when_archiving_is_broken(server: Debian, tmp_path: Path) -> None:
    broken = server.conf_d / "zz-broken-archive.conf"
    broken.write_text("archive_command = 'false'\n")
    shutil.chown(broken, "postgres", "postgres")
    failed = int(server.psql("SELECT failed_count FROM pg_stat_archiver"))
    try:
        _reload(server)
        # pg_ctlcluster reload only signals: write once the archiver has failed (bounded).
        for _ in range(300):
            if int(server.psql("SELECT failed_count FROM pg_stat_archiver")) > failed:
                break
            time.sleep(0.1)
        _write_truth(server)
        written = (
            server.psql("SELECT pg_walfile_name(pg_current_wal_lsn())"),
            server.psql(
                "SELECT failed_count || ' ' || coalesce(last_failed_wal, '-') || ' ' "
                "|| coalesce(last_archived_wal, '-') FROM pg_stat_archiver"
            ),
            failed,
        )
        project = project_for(server, tmp_path)
        done, record = drillbook_run(project, "scenarios/db_restore.yaml")
    finally:
        broken.unlink()
        _reload(server)
    assert record is not None, done.stdout + done.stderr
    # The drill must not pass: writes older than the RPO are gone (the ledger wrote for longer
    # than the RPO, so it sees them). Not asserted yet: psql's own rows written before the fault
    # are lost too; on this host they survived twice in four runs though the archiver had
    # failed on an earlier segment, a cause not yet found.
    assert record["verdict"] == "failed", (record["reasons"], written)
    assert record["measures"]["lost_writes"] > 0
    assert record["measures"]["rpa_s"] > record["objectives"]["rpo_s"]


def _reload(debian: Debian) -> None:
    subprocess.run(
        ["pg_ctlcluster", debian.version, debian.cluster, "reload"], check=True, timeout=60
    )


def test_db_accidental_delete_leaves_no_recovery_setting(server: Debian, tmp_path: Path) -> None:
    _write_truth(server)
    project = project_for(server, tmp_path)
    done, record = drillbook_run(project, "scenarios/db_accidental_delete.yaml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert record["verdict"] == "passed", record["reasons"]
    assert server.psql("SELECT count(*) FROM accounts") == "1000"
    assert server.psql("SELECT count(*) FROM truth_writes") == "100"
    # The kept old folder is there, and the documented command removes it.
    assert server.old_folders()
    clean = subprocess.run(
        [sys.executable, "-m", "drillbook.cli", "postgres", "cleanup", "pg-primary", "--yes"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert server.old_folders() == []


def test_backup_verify_passes_on_the_good_backup(server: Debian, tmp_path: Path) -> None:
    project = project_for(server, tmp_path)
    done, record = drillbook_run(project, "scenarios/backup_verify.yaml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert record["verdict"] == "passed", record["reasons"]
    logs = list((project / "reports").glob("*/backup_verify/verify-backup-pg-primary.log"))
    assert logs and "ready to accept connections" in logs[0].read_text()


def test_backup_verify_fails_on_a_broken_backup_with_the_fatal_line(
    server: Debian, tmp_path: Path
) -> None:
    broken = tmp_path / "broken-backup"
    shutil.copytree(server.root / "backups" / "base", broken, symlinks=True)
    (broken / "backup_manifest").unlink()
    (broken / "PG_VERSION").write_text("14\n")  # a backup of another major version
    subprocess.run(["chown", "-R", "postgres:postgres", str(tmp_path)], check=True)
    tmp_path.chmod(0o755)
    project = project_for(server, tmp_path)
    config = (project / "drillbook.yaml").read_text()
    (project / "drillbook.yaml").write_text(
        config.replace(str(server.root / "backups" / "base"), str(broken))
    )
    done, record = drillbook_run(project, "scenarios/backup_verify.yaml")
    assert record is not None, done.stdout + done.stderr
    assert record["verdict"] != "passed"
    report = done.stdout + "\n".join(s["detail"] for s in record["steps"])
    assert "FATAL:  database files are incompatible with server" in report
    logs = list((project / "reports").glob("*/backup_verify/verify-backup-pg-primary.log"))
    assert logs and "incompatible" in logs[0].read_text()


def test_dry_run_leaves_the_server_untouched(server: Debian, tmp_path: Path) -> None:
    server.psql("DROP TABLE IF EXISTS drillbook_ledger")  # earlier drills' ledger
    project = project_for(server, tmp_path)
    files_before = sorted(p.name for p in server.data_dir.iterdir())
    conf_before = {p: p.read_bytes() for p in server.conf_d.parent.rglob("*") if p.is_file()}
    count = server.psql("SELECT count(*) FROM accounts")
    for name in ("db_restore", "db_accidental_delete", "backup_verify"):
        done, _ = drillbook_run(project, f"scenarios/{name}.yaml", "--dry-run")
        assert done.returncode == 0, done.stdout + done.stderr
        assert "DRY RUN" in done.stdout
    assert server.psql("SELECT to_regclass('drillbook_ledger') IS NULL") == "t"
    assert server.psql("SELECT count(*) FROM accounts") == count
    assert sorted(p.name for p in server.data_dir.iterdir()) == files_before
    assert {p: p.read_bytes() for p in conf_before} == conf_before
    assert not (project / ".drillbook" / "postgres").exists()
    assert server.old_folders() == []


def test_promotion_of_the_debian_standby(server: Debian, tmp_path: Path) -> None:
    server.reseed_standby()
    project = project_for(
        server,
        tmp_path,
        {
            "promote_standby": """
                id: promote_standby
                objectives: {rto: 1m, rpo: 5s}
                probe_interval: 250ms
                stable_for: 1s
                timeout: 5m
                fault: {type: region.kill, target: pg-primary, ttl: 15m}
                probes:
                  - {name: serving, type: sql, target: pg-serving, query: "SELECT count(*) FROM accounts", expected: 1000}
                recovery:
                  - {kind: scripted, name: promote the standby, type: postgres.promote, target: pg-standby}
                verify:
                  - {name: standby now writable, type: postgres.ready, target: pg-standby, primary: true}
                ledger: {type: postgres.ledger, target: pg-serving, rate: 50}
            """
        },
    )
    try:
        done, record = drillbook_run(project, "scenarios/promote_standby.yaml")
        assert done.returncode == 0, done.stdout + done.stderr
        assert record["verdict"] == "passed", record["reasons"]
        assert not server.in_recovery(server.standby_port)  # promoted, for psql too
        assert record["measures"]["rpa_s"] is not None
        # The revert did not start the old primary beside the promoted standby: two primaries
        # taking writes would be worse than the fault. It says so, and what to do.
        assert not _accepts_connections(server.port)
        (revert,) = record["reverts"]
        assert revert["ok"], revert
        assert "pg-primary left stopped: pg-standby was promoted" in revert["detail"]
    finally:
        _start_cluster(server)  # the test's own failback: start the old primary, rebuild the
        server.reseed_standby()  # standby from it, as the server fixture expects to find them
    assert server.in_recovery(server.standby_port)


def _accepts_connections(port: int) -> bool:
    done = subprocess.run(
        ["pg_isready", "-h", "127.0.0.1", "-p", str(port)], capture_output=True, timeout=30
    )
    return done.returncode == 0


def _start_cluster(debian: Debian) -> None:
    """Start the cluster a test killed, as its operator would: a postmaster killed by the test
    can stay a zombie of init for half a minute and keep its lock, so starts are retried for a
    bounded minute, as scripts/testenv.d/pgdebian.sh does."""
    command = ["pg_ctlcluster", debian.version, debian.cluster, "start"]
    done = None
    for _ in range(60):
        if _accepts_connections(debian.port):
            return
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode == 0:
            return
        time.sleep(1.0)
    assert done is not None
    raise AssertionError(f"{' '.join(command)}: {done.stdout}{done.stderr}")

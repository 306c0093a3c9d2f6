"""Scripted recovery steps: restore (physical or logical), promote, switch the router, and prove
a backup restores (``postgres.verify_backup``)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from drillbook.backends.base import RecoveryStep
from drillbook.backends.postgres.restore import (
    RecoveryTarget,
    archive_current_wal,
    copy_backup,
    read_mark,
    restore_base_backup,
)
from drillbook.backends.postgres.target import PgTarget, pg_target
from drillbook.errors import ConfigError, RecoveryError

__all__ = ["Promote", "RestoreBaseBackup", "RestoreDump", "RouterSwitch", "VerifyBackup"]


def _timeout(step: RecoveryStep, default: float) -> float:
    """The step's own timeout, shortened to the drill's deadline when there is one."""
    limit = float(step.ctx.param("timeout_s", default))
    if step.ctx.deadline is not None:
        limit = min(limit, max(1.0, step.ctx.deadline - step.ctx.clock.monotonic()))
    return limit


class RestoreBaseBackup(RecoveryStep):
    """Base backup + WAL archive replay. ``to``: ``latest`` (default), ``before_fault`` (just
    before the xid the last drop/delete fault recorded), or an ISO timestamp."""

    def run(self) -> str:
        target = pg_target(self.ctx)
        to = str(self.ctx.param("to", "latest"))
        if to == "latest":
            recovery = RecoveryTarget()
        elif to == "before_fault":
            mark = read_mark(self.ctx.state_dir, target.name)
            recovery = RecoveryTarget(xid=str(mark["xid"]), time=str(mark["before"]))
        else:
            recovery = RecoveryTarget(time=to)
        if recovery.xid or recovery.time:
            archive_current_wal(target)  # the target point must be in the archive
        return restore_base_backup(
            target,
            recovery,
            timeout_s=_timeout(self, 600.0),
            keep_old=bool(self.ctx.param("keep_old", not target.is_sandbox)),
        )


class RestoreDump(RecoveryStep):
    """pg_restore a custom-format dump (default: the sandbox setup dump); ``table`` limits it."""

    def run(self) -> str:
        target = pg_target(self.ctx)
        dump = self.ctx.param("dump")
        if dump is None and target.is_sandbox:
            dump = target.sandbox_state()["dump"]["path"]
        if not dump:
            raise ConfigError(
                "postgres.restore_dump needs `dump` (a pg_dump -Fc file)", field="dump"
            )
        args = ["pg_restore", "-d", target.dsn(), "--no-owner", "--exit-on-error"]
        table = self.ctx.param("table")
        if table:
            args += ["-t", str(table)]
        if self.ctx.param("clean", True):
            args += ["--clean", "--if-exists"]
        args.append(str(dump))
        started = time.monotonic()
        target.run_program(args, _timeout(self, 600.0))
        what = f"table {table}" if table else "database"
        return f"pg_restore {what} from {dump} in {time.monotonic() - started:.1f}s"


class Promote(RecoveryStep):
    """Promote a standby to primary and wait until it accepts writes."""

    def run(self) -> str:
        import psycopg

        target = pg_target(self.ctx)
        timeout = _timeout(self, 60.0)
        if target.is_sandbox:
            from drillbook.sandbox.topology import promote

            assert target.root is not None
            promote(target.root, target.region(), timeout)
        else:
            with psycopg.connect(target.dsn(), autocommit=True) as conn:
                conn.execute("SELECT pg_promote(true, %s)", (int(timeout),))
            target.wait_ready(timeout, primary=True)
        return f"promoted {target.name} to primary"


class RouterSwitch(RecoveryStep):
    """Point the app at another region: the sandbox router file, or a configured command."""

    def run(self) -> str:
        to = self.ctx.param("to")
        if not to:
            raise ConfigError("router.switch needs `to` (the region that should serve)", field="to")
        target = pg_target(self.ctx)
        if target.is_sandbox:
            from drillbook.sandbox.state import load_state, read_router, write_router

            assert target.root is not None
            if str(to) not in load_state(target.root)["nodes"]:
                raise ConfigError(f"unknown sandbox region {to!r}", field="to")
            before = read_router(target.root)
            write_router(target.root, str(to))
            return f"router: {before} -> {to}"
        command = target.params.get("switch_command")
        if not command:
            raise ConfigError(f"{target.name}: router.switch needs `switch_command`", field="to")
        done = subprocess.run(
            [part.replace("{region}", str(to)) for part in str(command).split()],
            capture_output=True,
            text=True,
            timeout=_timeout(self, 120.0),
            check=False,
        )
        if done.returncode != 0:
            raise RecoveryError(f"switch_command failed: {done.stderr.strip()[-300:]}")
        return f"router switched to {to}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _counts(dsn: str, tables: list[str]) -> dict[str, int]:
    import psycopg

    out: dict[str, int] = {}
    with psycopg.connect(dsn, autocommit=True) as conn:
        for table in tables:
            row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()  # names validated
            out[table] = int(row[0]) if row else 0
    return out


class VerifyBackup(RecoveryStep):
    """A backup is not a backup until it has been restored: pg_verifybackup the newest base
    backup, restore it (plus archived WAL) into a scratch server, compare row counts with the
    source, then remove the scratch server."""

    def run(self) -> str:
        target = pg_target(self.ctx)
        backup = target.backup_dir()
        tables = [str(t) for t in self.ctx.param("tables", ["accounts"])]
        for table in tables:
            if not table.replace(".", "").replace("_", "").isalnum():
                raise ConfigError(f"bad table name {table!r}", field="tables")
        timeout = _timeout(self, 600.0)
        target.run_program(["pg_verifybackup", "-n", str(backup)], timeout)
        archive_current_wal(target)
        source = _counts(target.dsn(), tables)
        parent = target.root / "scratch" if target.root else None
        scratch = Path(tempfile.mkdtemp(prefix="verify-", dir=parent))
        target.chown_tree(scratch)
        data_dir = scratch / "data"
        proc: subprocess.Popen[bytes] | None = None
        try:
            copy_backup(backup, data_dir)
            port = _free_port()
            self._recovery_conf(target, data_dir, port, scratch)
            target.chown_tree(scratch)
            uid, gid = target.run_as()
            kwargs: dict[str, Any] = {}
            if uid is not None:
                kwargs = {"user": uid, "group": gid, "extra_groups": []}
            log = open(scratch / "server.log", "ab")
            proc = subprocess.Popen(
                [str(target.bin_dir() / "postgres"), "-D", str(data_dir)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                **kwargs,
            )
            log.close()
            dsn = f"host=127.0.0.1 port={port} user=postgres dbname=postgres connect_timeout=1"
            restored = self._wait_and_count(proc, dsn, tables, timeout)
        finally:
            if proc is not None:
                proc.terminate()
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(10)
            shutil.rmtree(scratch, ignore_errors=True)
        mismatched = {
            t: (source[t], restored.get(t)) for t in tables if source[t] != restored.get(t)
        }
        if mismatched:
            raise RecoveryError(f"restored row counts differ from the source: {mismatched}")
        summary = ", ".join(f"{t}={n}" for t, n in restored.items())
        return (
            f"pg_verifybackup ok; restored {backup} into a scratch server; counts match ({summary})"
        )

    @staticmethod
    def _recovery_conf(target: PgTarget, data_dir: Path, port: int, scratch: Path) -> None:
        archive = target.wal_archive()
        settings = {
            "port": str(port),
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": str(scratch),
            "archive_mode": "off",
            "recovery_target_action": "promote",
            "recovery_target_timeline": "latest",
            "synchronous_standby_names": "",
            "primary_conninfo": "",
        }
        if archive is not None:
            settings["restore_command"] = f'cp "{archive}/%f" "%p"'
        (data_dir / "drillbook.node.conf").unlink(missing_ok=True)
        (data_dir / "standby.signal").unlink(missing_ok=True)
        with open(data_dir / "postgresql.auto.conf", "a") as conf:
            conf.writelines(f"{k} = '{v}'\n" for k, v in settings.items())
        (data_dir / "recovery.signal").touch()

    @staticmethod
    def _wait_and_count(
        proc: subprocess.Popen[bytes], dsn: str, tables: list[str], timeout: float
    ) -> dict[str, int]:
        import psycopg

        deadline = time.monotonic() + timeout
        last = "not started"
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RecoveryError(f"scratch server exited ({proc.returncode}) during recovery")
            try:
                with psycopg.connect(dsn, autocommit=True) as conn:
                    row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
                    if row and not row[0]:
                        return _counts(dsn, tables)
                    last = "replaying WAL"
            except psycopg.Error as exc:
                last = (str(exc).strip().splitlines() or ["?"])[0]
            time.sleep(0.05)
        raise RecoveryError(f"scratch server not ready after {timeout:.0f}s ({last})")

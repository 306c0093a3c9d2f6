"""Scripted recovery steps: restore (physical or logical), promote, switch the router, and prove
a backup restores (``postgres.verify_backup``)."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
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
from drillbook.backends.postgres.runcmd import root_cause, tail_log
from drillbook.backends.postgres.target import PgTarget, pg_target
from drillbook.clock import get_clock
from drillbook.errors import ConfigError, RecoveryError
from drillbook.redact import redact_text

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
        from drillbook.backends.postgres.wayback import require_way_back

        require_way_back(target)  # before the server is stopped: a restore that cannot finish
        if recovery.xid or recovery.time:
            archive_current_wal(target)  # the target point must be in the archive
        return restore_base_backup(
            target,
            recovery,
            timeout_s=_timeout(self, 600.0),
            keep_old=bool(self.ctx.param("keep_old", not target.is_sandbox)),
            state_dir=self.ctx.state_dir,
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
        started = get_clock().monotonic()
        target.run_program(args, _timeout(self, 600.0))
        what = f"table {table}" if table else "database"
        return f"pg_restore {what} from {dump} in {get_clock().monotonic() - started:.1f}s"


class Promote(RecoveryStep):
    """Promote a standby to primary and wait until it accepts writes."""

    def run(self) -> str:
        import psycopg

        target = pg_target(self.ctx)
        timeout = _timeout(self, 60.0)
        if target.is_sandbox:
            from drillbook.backends.postgres.sandbox.replication import promote

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
            from drillbook.backends.postgres.sandbox.state import (
                load_state,
                read_router,
                write_router,
            )

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
            raise RecoveryError(f"switch_command failed: {redact_text(done.stderr.strip())[-300:]}")
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


_PERMANENT = ("does not exist", "no pg_hba.conf entry", "authentication failed")


def _fatal_lines(log: Path) -> str:
    """The scratch server's own FATAL/PANIC lines (what a reader needs to fix the backup)."""
    text = tail_log(log, 200)
    lines = [line for line in text.splitlines() if "FATAL" in line or "PANIC" in line]
    return " | ".join(lines[-3:]) or root_cause(text)


def _identity(target: PgTarget) -> tuple[str, str]:
    """The database and role the drill reads as: from the target's DSN (issue 21: a fixed
    ``postgres``/``postgres`` never found a table in the team's database)."""
    from psycopg.conninfo import conninfo_to_dict

    info = conninfo_to_dict(target.dsn())
    user = str(info.get("user") or "postgres")
    return str(info.get("dbname") or user), user


class VerifyBackup(RecoveryStep):
    """A backup is not a backup until it has been restored: pg_verifybackup the newest base
    backup, restore it (plus archived WAL) into a scratch server, compare row counts with the
    source, then remove the scratch server. Its log is kept with the drill's report."""

    def run(self) -> str:
        target = pg_target(self.ctx)
        backup = target.backup_dir()
        tables = [str(t) for t in self.ctx.param("tables", ["accounts"])]
        for table in tables:
            if not table.replace(".", "").replace("_", "").isalnum():
                raise ConfigError(f"bad table name {table!r}", field="tables")
        timeout = _timeout(self, 600.0)
        if not (backup / "PG_VERSION").is_file():
            raise RecoveryError(f"{target.name}: no plain-format base backup at {backup}")
        checked = "no backup_manifest: not checked by pg_verifybackup"
        if (backup / "backup_manifest").is_file():
            target.run_program(["pg_verifybackup", "-n", "-q", str(backup)], timeout)
            checked = "pg_verifybackup ok"
        archive_current_wal(target)
        source = _counts(target.dsn(), tables)
        dbname, user = _identity(target)
        preload = self._source_setting(target, "shared_preload_libraries")
        parent = target.root / "scratch" if target.root else None
        if parent is not None:
            parent.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix="verify-", dir=parent))
        keep = self._log_home()
        kept = keep / f"verify-backup-{target.name}.log"
        log_path = scratch / "server.log"
        data_dir = scratch / "data"
        proc: subprocess.Popen[bytes] | None = None
        try:
            copy_backup(backup, data_dir)
            port = _free_port()
            options = self._scratch_conf(target, data_dir, port, scratch, preload)
            target.chown_tree(scratch)
            uid, gid = target.run_as()
            kwargs: dict[str, Any] = {}
            if uid is not None:
                kwargs = {"user": uid, "group": gid, "extra_groups": []}
            with open(log_path, "ab") as log:
                proc = subprocess.Popen(
                    [str(target.bin_dir() / "postgres"), "-D", str(data_dir), *options],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    cwd="/",  # the server's user may not enter the harness's folder
                    **kwargs,
                )
            dsn = (
                f"host=127.0.0.1 port={port} user={user} dbname={dbname} "
                "connect_timeout=1 sslmode=disable"
            )
            try:
                restored = self._wait_and_count(proc, dsn, tables, timeout, log_path)
            except RecoveryError as exc:
                raise RecoveryError(f"{exc} (scratch server log kept at {kept})") from None
        finally:
            if proc is not None:
                proc.terminate()
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(10)
            with contextlib.suppress(OSError):
                keep.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(log_path, kept)
            shutil.rmtree(scratch, ignore_errors=True)
        mismatched = {
            t: (source[t], restored.get(t)) for t in tables if source[t] != restored.get(t)
        }
        if mismatched:
            raise RecoveryError(
                f"restored row counts differ from the source: {mismatched} (scratch log {kept})"
            )
        summary = ", ".join(f"{t}={n}" for t, n in restored.items())
        return (
            f"{checked}; restored {backup} into a scratch server as {user}/{dbname}; "
            f"counts match ({summary}); scratch log {kept}"
        )

    def _log_home(self) -> Path:
        """The drill's report folder when there is one, else drillbook's state folder."""
        return self.ctx.artifacts_dir or (self.ctx.state_dir / "postgres")

    @staticmethod
    def _source_setting(target: PgTarget, name: str) -> str:
        import psycopg

        try:
            with psycopg.connect(target.dsn(), autocommit=True) as conn:
                row = conn.execute("SELECT current_setting(%s)", (name,)).fetchone()
        except psycopg.Error:
            return ""
        return str(row[0]) if row and row[0] else ""

    @staticmethod
    def _scratch_conf(
        target: PgTarget, data_dir: Path, port: int, scratch: Path, preload: str
    ) -> list[str]:
        """The scratch server's own configuration, whatever the source's layout (Debian keeps
        postgresql.conf in /etc, outside the backup): a config file, an hba allowing only local
        trust, and the settings that must win over the backup's postgresql.auto.conf on the
        command line. Returns the command-line options."""
        archive = target.wal_archive()
        command = target.params.get("restore_command") or (
            f'cp "{archive}/%f" "%p"' if archive is not None else ""
        )
        recovery = {
            "recovery_target_action": "promote",
            "recovery_target_timeline": "latest",
            "hot_standby": "off",
            "logging_collector": "off",
        }
        if command:
            recovery["restore_command"] = str(command)
        if preload:
            recovery["shared_preload_libraries"] = preload
        conf = scratch / "postgresql.conf"
        conf.write_text(
            "".join(f"{k} = '{v.replace(chr(39), chr(39) * 2)}'\n" for k, v in recovery.items())
        )
        (scratch / "pg_hba.conf").write_text(
            "local all all trust\nhost all all 127.0.0.1/32 trust\n"
        )
        (scratch / "pg_ident.conf").write_text("")
        for name in ("drillbook.node.conf", "standby.signal", "postmaster.pid"):
            (data_dir / name).unlink(missing_ok=True)
        (data_dir / "recovery.signal").touch()
        forced = {
            "config_file": str(conf),
            "hba_file": str(scratch / "pg_hba.conf"),
            "ident_file": str(scratch / "pg_ident.conf"),
            "port": str(port),
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": str(scratch),
            "archive_mode": "off",
            "synchronous_standby_names": "",
            "primary_conninfo": "",
            "data_directory": str(data_dir),
        }
        return [part for k, v in forced.items() for part in ("-c", f"{k}={v}")]

    @staticmethod
    def _wait_and_count(
        proc: subprocess.Popen[bytes],
        dsn: str,
        tables: list[str],
        timeout: float,
        log: Path,
    ) -> dict[str, int]:
        """Counts once the scratch server is promoted; a permanent error fails at once, with
        the server's own FATAL line."""
        import psycopg

        deadline = get_clock().monotonic() + timeout
        last = "not started"
        while get_clock().monotonic() < deadline:
            if proc.poll() is not None:
                raise RecoveryError(
                    f"scratch server exited ({proc.returncode}) during recovery: "
                    f"{_fatal_lines(log)}"
                )
            try:
                with psycopg.connect(dsn, autocommit=True) as conn:
                    row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
                    if row and not row[0]:
                        return _counts(dsn, tables)
                    last = "replaying WAL"
            except psycopg.errors.UndefinedTable as exc:
                raise RecoveryError(f"restored backup lacks a table: {exc}") from None
            except psycopg.Error as exc:
                last = (str(exc).strip().splitlines() or ["?"])[0]
                if any(word in str(exc) for word in _PERMANENT):
                    raise RecoveryError(
                        f"scratch server refused the drill's role/database: {last}"
                    ) from None
            get_clock().sleep(0.05)
        raise RecoveryError(
            f"scratch server not ready after {timeout:.0f}s ({last}): {_fatal_lines(log)}"
        )

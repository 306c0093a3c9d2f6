"""PostgreSQL faults: kill, destroy data, accidental drop/delete, lose a whole region.

Each records in ``state()`` what its revert needs (pids, the quarantine copy's name, the delete's
xid) and nothing secret; revert re-reads the DSN from the config. On sandbox targets revert also
puts the canonical topology back (``sandbox.reconcile``) so the next drill starts from the same
shape; on real targets it only undoes its own change.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
from collections.abc import Mapping
from datetime import UTC
from pathlib import Path
from typing import Any

from drillbook.backends.base import Context, Fault
from drillbook.backends.postgres.restore import (
    RecoveryTarget,
    restore_base_backup,
    safe_remove_data_dir,
    save_auto_conf,
    settle_config,
    write_mark,
)
from drillbook.backends.postgres.target import PgTarget, pg_target
from drillbook.clock import epoch, get_clock
from drillbook.errors import ConfigError, FaultError, SafetyError
from drillbook.procs import pid_alive

__all__ = ["DeleteRows", "DestroyData", "DropTable", "KillPostgres", "RegionKill"]

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[-1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _wait_gone(pids: list[int], timeout_s: float = 10.0) -> None:
    """Return once every pid is dead (a killed server's backends notice within milliseconds)."""
    deadline = get_clock().monotonic() + timeout_s
    while any(pid_alive(p) for p in pids) and get_clock().monotonic() < deadline:
        get_clock().sleep(0.01)


def _ready(target: PgTarget) -> bool:
    import psycopg

    try:
        with psycopg.connect(target.dsn(timeout_s=1), autocommit=True) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error:
        return False
    return True


def _reconcile(target: PgTarget) -> None:
    if target.is_sandbox:
        from drillbook.backends.postgres.sandbox.replication import reconcile

        assert target.root is not None
        reconcile(target.root)


def _in_recovery(target: PgTarget) -> bool | None:
    """The server's own answer: True for a standby, False for a primary, None when down."""
    import psycopg

    try:
        with psycopg.connect(target.dsn(timeout_s=1), autocommit=True) as conn:
            row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
    except psycopg.Error:
        return None
    return bool(row and row[0])


class _PgFault(Fault):
    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.target = pg_target(ctx)
        self._state: dict[str, Any] = {}

    def state(self) -> Mapping[str, Any]:
        return dict(self._state)

    def load_state(self, state: Mapping[str, Any]) -> None:
        self._state = dict(state)

    def _cluster_facts(self) -> dict[str, Any]:
        """Before a real primary is killed: that it was one, and which configured postgres
        targets were its standbys then, so revert can tell whether the drill promoted one."""
        if self.target.is_sandbox or _in_recovery(self.target) is not False:
            return {}
        standbys = []
        for spec in self.ctx.peers:
            real_peer = spec.name != self.target.name and "sandbox" not in spec.params
            if real_peer and _in_recovery(pg_target(self.ctx, spec)) is True:
                standbys.append(spec.name)
        return {"was_primary": True, "standbys": standbys}

    def _promoted_peer(self) -> str | None:
        """A standby of the killed primary that is a primary now (the drill failed over)."""
        for spec in self.ctx.peers:
            was_standby = spec.name in self._state.get("standbys", ())
            if was_standby and _in_recovery(pg_target(self.ctx, spec)) is False:
                return spec.name
        return None

    def _start_unless_failed_over(self) -> None:
        """Start a real server the fault killed, unless a standby was promoted in its place.

        Starting it then would make two primaries (split brain: writes to both, lost on
        reconciliation), which is worse than any fault a drill injects. It is left stopped, the
        timeline says why and what to do, and the revert counts as done: the fault is gone,
        the service runs on the promoted server."""
        if _ready(self.target):
            return
        if self._state.get("was_primary"):
            promoted = self._promoted_peer()
            if promoted is not None:
                self._state["left_stopped"] = promoted
                return
        self._state.pop("left_stopped", None)
        self.target.start_server()

    def verify_reverted(self) -> bool:
        if self._state.get("left_stopped"):
            return not _ready(self.target)
        return _ready(self.target)

    def revert_report(self) -> str:
        promoted = self._state.get("left_stopped")
        if not promoted:
            return ""
        return (
            f"{self.target.name} left stopped: {promoted} was promoted during the drill and "
            f"starting {self.target.name} would make two primaries; rebuild it as a standby of "
            f"{promoted} (pg_rewind or a new base backup) before starting it"
        )

    def _ident(self, key: str) -> str:
        value = str(self.ctx.param(key) or "")
        if not _IDENT.match(value):
            raise ConfigError(
                f"`{key}` must be a table name like accounts or app.accounts", field=key
            )
        return value


class KillPostgres(_PgFault):
    """SIGKILL the postmaster: a crash, recovered by restarting (crash recovery from local WAL)."""

    def plan(self) -> str:
        return f"SIGKILL the postmaster of {self.target.name}"

    def preflight(self) -> None:
        if self.target.postmaster_pid() is None:
            raise FaultError(f"{self.target.name}: no running postmaster to kill")

    def inject(self) -> None:
        pid = self.target.postmaster_pid()
        if pid is None:
            raise FaultError(f"{self.target.name}: no running postmaster")
        self._state = {"pid": pid, "at": get_clock().wall().isoformat(), **self._cluster_facts()}
        os.kill(pid, signal.SIGKILL)
        # Only the postmaster: its backends may take a while to notice, and waiting for them
        # would push t_inject later than the crash and inflate the measured RPA.
        _wait_gone([pid])

    def verify_injected(self) -> bool:
        return not pid_alive(int(self._state["pid"])) and not _ready(self.target)

    def revert(self) -> None:
        if self.target.is_sandbox:
            if not _ready(self.target):
                self.target.start_server()
            _reconcile(self.target)
        else:
            self._start_unless_failed_over()


class DestroyData(_PgFault):
    """Kill the server, then delete its data folder: only a restore from backup brings it back."""

    def plan(self) -> str:
        try:
            where = str(self.target.data_dir())
        except (FaultError, ConfigError):  # a dry run does not start the sandbox
            where = "(sandbox not running)" if self.target.is_sandbox else "(no data_dir)"
        return f"SIGKILL {self.target.name} and delete its data folder {where}"

    def preflight(self) -> None:
        data_dir = self.target.data_dir().resolve()
        allowed = self.target.allowed_root()
        if allowed is not None and not data_dir.is_relative_to(allowed.resolve()):
            raise SafetyError(f"{data_dir} is outside the sandbox {allowed}")
        if allowed is None and not self.target.params.get("data_dir"):
            raise SafetyError(f"{self.target.name}: destroy_data needs an explicit data_dir")
        if not (data_dir / "PG_VERSION").exists():
            raise FaultError(f"{data_dir} is not a PostgreSQL data folder")
        from drillbook.backends.postgres.wayback import check_way_back

        # Never destroy what cannot be put back: the restore's own files and commands first.
        self._way_back = check_way_back(self.target)

    def inject(self) -> None:
        if not getattr(self, "_way_back", ""):
            self.preflight()
        data_dir = self.target.data_dir()
        pid = self.target.postmaster_pid()
        self._state = {"pid": pid, "data_dir": str(data_dir), "at": get_clock().wall().isoformat()}
        if not self.target.is_sandbox:
            save_auto_conf(self.ctx.state_dir, self.target)
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
            _wait_gone([pid])  # not its backends: see KillPostgres
        safe_remove_data_dir(self.target, data_dir)

    def verify_injected(self) -> bool:
        return not (Path(self._state["data_dir"]) / "PG_VERSION").exists() and not _ready(
            self.target
        )

    def revert(self) -> None:
        """If the drill's recovery did not bring the data back, restore to the end of the WAL."""
        if not _ready(self.target):
            if self.target.is_sandbox or self.target.params.get("backup_dir"):
                restore_base_backup(self.target, RecoveryTarget(), state_dir=self.ctx.state_dir)
            else:
                raise FaultError(f"{self.target.name}: data destroyed and no backup_dir to restore")
        settle_config(self.ctx.state_dir, self.target)
        _reconcile(self.target)

    def verify_reverted(self) -> bool:
        return _ready(self.target)


class _LogicalFault(_PgFault):
    """Shared by drop/delete: keep a quarantine copy first, so revert can always undo the damage."""

    def _copy_name(self, table: str) -> str:
        return f"drillbook_quarantine_{table.replace('.', '_')}_{int(epoch())}"

    def _snapshot_and_run(self, statement: str, table: str, where: str | None) -> None:
        import psycopg

        keep = bool(self.ctx.param("keep_copy", True))
        copy = self._copy_name(table) if keep else None
        with psycopg.connect(self.target.dsn(), autocommit=True) as conn:
            selector = f"SELECT * FROM {table}" + (f" WHERE {where}" if where else "")
            count_row = conn.execute(f"SELECT count(*) FROM ({selector}) AS s").fetchone()
            affected = int(count_row[0]) if count_row else 0
            if copy:
                conn.execute(f"CREATE TABLE {copy} AS {selector}")
            began = epoch()
            with conn.transaction():
                row = conn.execute("SELECT txid_current()::text, clock_timestamp()").fetchone()
                assert row is not None
                xid, before = str(row[0]), row[1]
                conn.execute(statement)
            committed = epoch()  # the COMMIT has returned (harness clock, like the ledger)
        self._state = {
            "table": table,
            "where": where,
            "copy": copy,
            "rows": affected,
            "xid": xid,
            "before": before.astimezone(UTC).isoformat(),
            "began_epoch": began,
            "committed_epoch": committed,
        }
        write_mark(self.ctx.state_dir, self.target.name, dict(self._state))

    def _count(self, table: str, where: str | None) -> int | None:
        import psycopg

        try:
            with psycopg.connect(self.target.dsn(), autocommit=True) as conn:
                sql = f"SELECT count(*) FROM {table}" + (f" WHERE {where}" if where else "")
                row = conn.execute(sql).fetchone()
        except psycopg.errors.UndefinedTable:
            return None
        return int(row[0]) if row else 0

    def revert(self) -> None:
        import psycopg

        table, where, copy = self._state["table"], self._state.get("where"), self._state["copy"]
        if not _ready(self.target):
            self.target.start_server()
        with psycopg.connect(self.target.dsn(), autocommit=True) as conn:
            exists = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (copy or "",)).fetchone()
            have_copy = bool(copy and exists and exists[0])
            current = self._count(table, where)
            if have_copy and (current is None or current < int(self._state["rows"])):
                with conn.transaction():
                    if current is None:
                        conn.execute(f"CREATE TABLE {table} AS SELECT * FROM {copy} WITH NO DATA")
                    elif where:
                        conn.execute(f"DELETE FROM {table} WHERE {where}")
                    else:
                        conn.execute(f"DELETE FROM {table}")
                    conn.execute(f"INSERT INTO {table} SELECT * FROM {copy}")
            if have_copy:
                conn.execute(f"DROP TABLE IF EXISTS {copy}")
        settle_config(self.ctx.state_dir, self.target)
        _reconcile(self.target)

    def verify_reverted(self) -> bool:
        current = self._count(self._state["table"], self._state.get("where"))
        return current is not None and current >= int(self._state["rows"])


class DropTable(_LogicalFault):
    """``DROP TABLE``: the classic accident. The xid is recorded for a restore to just before."""

    def plan(self) -> str:
        return f"DROP TABLE {self._ident('table')} on {self.target.name}"

    def inject(self) -> None:
        table = self._ident("table")
        self._snapshot_and_run(f"DROP TABLE {table}", table, None)

    def verify_injected(self) -> bool:
        return self._count(self._state["table"], None) is None


class DeleteRows(_LogicalFault):
    """``DELETE FROM table [WHERE ...]``: rows gone, table still there."""

    def _where(self) -> str | None:
        where = self.ctx.param("where")
        if where is not None and (";" in str(where) or "--" in str(where)):
            raise ConfigError("`where` must be one SQL condition", field="where")
        return str(where) if where else None

    def plan(self) -> str:
        where = self._where()
        cond = f" WHERE {where}" if where else ""
        return f"DELETE FROM {self._ident('table')}{cond} on {self.target.name}"

    def inject(self) -> None:
        table, where = self._ident("table"), self._where()
        cond = f" WHERE {where}" if where else ""
        self._snapshot_and_run(f"DELETE FROM {table}{cond}", table, where)

    def verify_injected(self) -> bool:
        return self._count(self._state["table"], self._state.get("where")) == 0


class RegionKill(_PgFault):
    """SIGKILL every process of a region: the postmaster and all its children at once."""

    def plan(self) -> str:
        return f"SIGKILL every process of {self.target.name}"

    def preflight(self) -> None:
        if self.target.postmaster_pid() is None:
            raise FaultError(f"{self.target.name}: region has no running server")

    def inject(self) -> None:
        pid = self.target.postmaster_pid()
        if pid is None:
            raise FaultError(f"{self.target.name}: region has no running server")
        facts = self._cluster_facts()
        pids = [pid, *_children(pid)]
        self._state = {"pids": pids, "at": get_clock().wall().isoformat(), **facts}
        os.kill(pid, signal.SIGSTOP)  # freeze first, so no child outlives its siblings' deaths
        for each in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(each, signal.SIGKILL)
        _wait_gone(pids)

    def verify_injected(self) -> bool:
        return not any(pid_alive(p) for p in self._state["pids"]) and not _ready(self.target)

    def revert(self) -> None:
        if self.target.is_sandbox:
            _reconcile(self.target)
        else:
            self._start_unless_failed_over()

    def verify_reverted(self) -> bool:
        if self.target.is_sandbox:
            from drillbook.backends.postgres.sandbox.state import read_router

            assert self.target.root is not None
            return _ready(self.target) and read_router(self.target.root) == self.target.region()
        return super().verify_reverted()

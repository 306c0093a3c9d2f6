"""Physical restore: base backup into place, WAL replay from the archive, optional target.

Shared by the ``postgres.restore_base_backup`` step, the destroy-data fault's revert, the backup
check and the benchmark, so what the benchmark measures is what the drill runs.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drillbook.backends.postgres.target import PgTarget
from drillbook.clock import epoch, get_clock
from drillbook.errors import RecoveryError, SafetyError

__all__ = [
    "OLD_MARK",
    "RecoveryTarget",
    "archive_current_wal",
    "copy_backup",
    "mark_path",
    "read_mark",
    "restore_base_backup",
    "safe_remove_data_dir",
    "save_auto_conf",
    "settle_config",
    "write_mark",
]

#: A kept old data folder is named ``<data_dir>.drillbook-old-<UTC stamp>``.
OLD_MARK = ".drillbook-old-"
#: The settings a restore sets (``postgresql.auto.conf``) and must see gone afterwards.
RECOVERY_SETTINGS = (
    "recovery_target_xid",
    "recovery_target_time",
    "recovery_target_inclusive",
    "recovery_target_action",
    "recovery_target_timeline",
    "restore_command",
)


@dataclass(frozen=True)
class RecoveryTarget:
    """Where WAL replay stops: the end of the archive (``latest``), a time, or before an xid."""

    time: str | None = None
    xid: str | None = None

    def settings(self) -> dict[str, str]:
        out = {"recovery_target_timeline": "latest", "recovery_target_action": "promote"}
        if self.xid:
            out |= {"recovery_target_xid": self.xid, "recovery_target_inclusive": "false"}
        elif self.time:
            out |= {"recovery_target_time": self.time, "recovery_target_inclusive": "false"}
        return out

    def describe(self) -> str:
        if self.xid:
            return f"just before xid {self.xid}"
        if self.time:
            return f"to {self.time}"
        return "to the end of the WAL archive"


def mark_path(state_dir: Path, target_name: str) -> Path:
    return state_dir / "postgres" / f"{target_name}.last-destructive.json"


def write_mark(state_dir: Path, target_name: str, mark: dict[str, Any]) -> None:
    """Record the moment of an accidental delete, so a later step can restore to just before."""
    path = mark_path(state_dir, target_name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(mark))


def read_mark(state_dir: Path, target_name: str) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(mark_path(state_dir, target_name).read_text())
    except FileNotFoundError:
        raise RecoveryError(
            f"no recorded destructive change on {target_name}: nothing to restore 'before'"
        ) from None
    return data


def _auto_conf_copy(state_dir: Path, target_name: str) -> Path:
    return state_dir / "postgres" / f"{target_name}.auto.conf"


def _pending_path(state_dir: Path, target_name: str) -> Path:
    return state_dir / "postgres" / f"{target_name}.restart-pending.json"


def save_auto_conf(state_dir: Path, target: PgTarget) -> None:
    """Keep the live server's postgresql.auto.conf (0600, it may hold a primary_conninfo
    password) before its folder is destroyed, so a restore puts back exactly these bytes."""
    try:
        data = (target.data_dir() / "postgresql.auto.conf").read_bytes()
    except OSError:
        return
    path = _auto_conf_copy(state_dir, target.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _original_auto_conf(state_dir: Path | None, target: PgTarget, backup: Path) -> bytes:
    """What postgresql.auto.conf must hold after the restore: the live server's, when its folder
    is still there; the copy the destroy fault kept; else the backup's own."""
    live = target.data_dir() / "postgresql.auto.conf"
    if live.is_file():
        return live.read_bytes()
    if state_dir is not None and _auto_conf_copy(state_dir, target.name).is_file():
        return _auto_conf_copy(state_dir, target.name).read_bytes()
    try:
        return (backup / "postgresql.auto.conf").read_bytes()
    except OSError:
        return b""


def _put_back_config(target: PgTarget, data_dir: Path, original: bytes) -> None:
    """Undo the restore's configuration: the exact auto.conf bytes, no signal files, no manifest
    copied from the backup; then reload, so restore_command stops applying."""
    conf = data_dir / "postgresql.auto.conf"
    conf.write_bytes(original)
    os.chmod(conf, 0o600)
    uid, gid = target.run_as()
    if uid is not None:
        os.chown(conf, uid, gid if gid is not None else -1)
    for name in ("recovery.signal", "standby.signal", "backup_manifest"):
        (data_dir / name).unlink(missing_ok=True)
    pid = target.postmaster_pid()
    if pid is not None:
        os.kill(pid, signal.SIGHUP)


def _still_set(target: PgTarget) -> list[str]:
    """Recovery settings the running server still holds (postmaster-context ones keep their
    value until a restart, even after the file no longer sets them)."""
    import psycopg

    with psycopg.connect(target.dsn(timeout_s=2), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT name, setting FROM pg_settings WHERE name = ANY(%s)",
            (list(RECOVERY_SETTINGS),),
        ).fetchall()
    defaults = {
        "recovery_target_inclusive": "on",
        "recovery_target_action": "pause",
        "recovery_target_timeline": "latest",
    }
    return [
        f"{name}={value}"
        for name, value in rows
        if str(value or "") not in ("", defaults.get(str(name), ""))
    ]


def settle_config(state_dir: Path, target: PgTarget, timeout_s: float = 120.0) -> str:
    """After a restore: restart the server when it still holds recovery settings in memory (and
    verify they are gone), and verify auto.conf holds no drillbook line. Idempotent; runs in the
    fault's revert and in ``drillbook postgres cleanup``, after the drill's measures."""
    if target.is_sandbox:
        return "sandbox"
    pending = _pending_path(state_dir, target.name)
    done = "nothing to settle"
    if pending.exists() or _still_set(target):
        held = _still_set(target)
        if held:
            target.stop_server(timeout_s)
            target.start_server(timeout_s)
            target.wait_ready(timeout_s, primary=target.role() == "primary")
            left = _still_set(target)
            if left:
                raise RecoveryError(f"{target.name}: still set after a restart: {left}")
            done = f"restarted to drop {', '.join(held)}"
        pending.unlink(missing_ok=True)
    conf = (target.data_dir() / "postgresql.auto.conf").read_text(errors="replace")
    if "drillbook" in conf or any(f"{name} =" in conf for name in RECOVERY_SETTINGS[:4]):
        raise RecoveryError(f"{target.name}: postgresql.auto.conf still holds recovery settings")
    if (target.data_dir() / "recovery.signal").exists():
        raise RecoveryError(f"{target.name}: recovery.signal is still in the data folder")
    _auto_conf_copy(state_dir, target.name).unlink(missing_ok=True)
    return done


def safe_remove_data_dir(target: PgTarget, data_dir: Path) -> None:
    """Delete a data folder, refusing anything outside the sandbox root (sandbox targets) or not
    the explicitly configured ``data_dir`` (real targets)."""
    data_dir = data_dir.resolve()
    allowed = target.allowed_root()
    if allowed is not None:
        if not data_dir.is_relative_to(allowed.resolve()) or data_dir == allowed.resolve():
            raise SafetyError(f"refusing to delete {data_dir}: outside the sandbox {allowed}")
    elif Path(str(target.params.get("data_dir", ""))).resolve() != data_dir:
        raise SafetyError(f"refusing to delete {data_dir}: not the target's configured data_dir")
    if len(data_dir.parts) < 3:
        raise SafetyError(f"refusing to delete {data_dir}: too close to /")
    shutil.rmtree(data_dir, ignore_errors=True)


def copy_backup(backup: Path, data_dir: Path) -> None:
    """A plain copy of a plain-format base backup into place (the physical floor of a restore)."""
    shutil.copytree(backup, data_dir, symlinks=True)
    os.chmod(data_dir, 0o700)
    (data_dir / "postmaster.pid").unlink(missing_ok=True)


def _walfile_before(conn: Any, lsn: str) -> str:
    """The WAL file holding the byte before ``lsn`` (``X/Y``, hexadecimal halves)."""
    high, low = (int(part, 16) for part in lsn.split("/"))
    before = max(0, (high << 32 | low) - 1)
    row = conn.execute(
        "SELECT pg_walfile_name(%s::pg_lsn)", (f"{before >> 32:X}/{before & 0xFFFFFFFF:X}",)
    ).fetchone()
    return str(row[0]) if row else ""


def archive_current_wal(target: PgTarget, timeout_s: float = 30.0) -> str | None:
    """Switch WAL and wait until the archive has it, so a point-in-time restore can reach "now".

    Returns the archived segment name, or None when the server is down (nothing more to save).
    """
    import psycopg

    try:
        conn = psycopg.connect(target.dsn(timeout_s=2), autocommit=True)
    except psycopg.Error:
        return None
    archive = target.wal_archive()
    with conn:
        # The segment holding the byte just before what pg_switch_wal returns. After a switch
        # that is the file it completed; with no WAL written since the last switch (the 1 s
        # archive_timeout's included) it does nothing and returns the start of the file in use,
        # whose own name is an empty segment that is never archived while the server is idle:
        # waiting for it timed out (CI, twice). One byte back names the last completed one.
        row = conn.execute("SELECT pg_switch_wal()::text").fetchone()
        segment = _walfile_before(conn, str(row[0])) if row else ""
        deadline = get_clock().monotonic() + timeout_s
        status: tuple[Any, ...] = ()
        while get_clock().monotonic() < deadline:
            # The archive folder is the authority where we know it; pg_stat_archiver otherwise
            # (its last_archived_wal may also name a .history, .partial or .backup file).
            if archive is not None and (archive / segment).exists():
                return segment
            done = conn.execute(
                "SELECT last_archived_wal, last_failed_wal, failed_count FROM pg_stat_archiver"
            ).fetchone()
            status = tuple(done) if done else ()
            last = str(status[0]) if status and status[0] else ""
            if len(last) == 24 and last[8:] >= segment[8:]:  # log/segment, ignore the timeline
                return segment
            get_clock().sleep(0.05)
    raise RecoveryError(
        f"WAL segment {segment} not archived within {timeout_s}s "
        f"(archiver: last archived {status[0] if status else None}, last failed "
        f"{status[1] if status else None}, failures {status[2] if status else None})"
    )


def _write_recovery_conf(target: PgTarget, data_dir: Path, recovery: RecoveryTarget) -> None:
    settings = recovery.settings()
    if target.is_sandbox:
        from drillbook.backends.postgres.sandbox.nodes import write_node_conf

        write_node_conf(data_dir, target.port(), settings)
    else:
        archive = target.wal_archive()
        command = target.params.get("restore_command") or (
            f'cp "{archive}/%f" "%p"' if archive else None
        )
        if not command:
            raise RecoveryError(f"{target.name}: `wal_archive` or `restore_command` is needed")
        settings["restore_command"] = str(command)
        with open(data_dir / "postgresql.auto.conf", "a") as conf:
            conf.write("\n# drillbook restore (removed again once the server is promoted)\n")
            conf.writelines(f"{k} = '{v}'\n" for k, v in settings.items())
    (data_dir / "recovery.signal").touch()


def _wait_promoted(target: PgTarget, timeout_s: float) -> None:
    import psycopg

    deadline = get_clock().monotonic() + timeout_s
    seen_pid = False
    last = "not started"
    while get_clock().monotonic() < deadline:
        pid = target.postmaster_pid()
        seen_pid = seen_pid or pid is not None
        if seen_pid and pid is None:
            raise RecoveryError(
                f"{target.name}: server exited during recovery ({last}); see its log"
            )
        try:
            with psycopg.connect(target.dsn(timeout_s=1), autocommit=True) as conn:
                row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
                if row and not row[0]:
                    return
                last = "replaying WAL"
        except psycopg.Error as exc:
            last = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        get_clock().sleep(0.05)
    raise RecoveryError(f"{target.name}: recovery not finished after {timeout_s:.0f}s ({last})")


def restore_base_backup(
    target: PgTarget,
    recovery: RecoveryTarget,
    *,
    timeout_s: float = 600.0,
    keep_old: bool = False,
    state_dir: Path | None = None,
) -> str:
    """Stop, replace the data folder with the base backup, replay WAL, promote, and put the
    configuration back as it was (real targets). One-line detail."""
    backup = target.backup_dir()
    if not (backup / "PG_VERSION").exists():
        raise RecoveryError(f"{target.name}: no plain-format base backup at {backup}")
    started = get_clock().monotonic()
    original = b"" if target.is_sandbox else _original_auto_conf(state_dir, target, backup)
    target.stop_server()
    data_dir = target.data_dir()
    kept = ""
    if data_dir.exists():
        if keep_old:
            stamp = get_clock().wall().strftime("%Y%m%dT%H%M%SZ")
            old = data_dir.with_name(f"{data_dir.name}{OLD_MARK}{stamp}")
            os.replace(data_dir, old)
            kept = f"; old folder kept at {old} (drillbook postgres cleanup removes it)"
        else:
            safe_remove_data_dir(target, data_dir)
    copy_backup(backup, data_dir)
    copied = get_clock().monotonic() - started
    _write_recovery_conf(target, data_dir, recovery)
    target.chown_tree(data_dir)
    if not target.is_sandbox and state_dir is not None:
        pending = _pending_path(state_dir, target.name)
        pending.parent.mkdir(parents=True, exist_ok=True)
        pending.write_text(json.dumps({"data_dir": str(data_dir), "at": epoch()}))
    if target.is_sandbox:
        from drillbook.backends.postgres.sandbox.control import SupervisorClient

        assert target.root is not None
        SupervisorClient(target.root).start(target.region())
    else:
        target.start_server(timeout_s)
    _wait_promoted(target, timeout_s)
    if target.is_sandbox:
        from drillbook.backends.postgres.sandbox.replication import set_primary_conf

        assert target.root is not None
        set_primary_conf(target.root, target.region())  # recovery settings must not apply again
    else:
        _put_back_config(target, data_dir, original)
    total = get_clock().monotonic() - started
    return (
        f"restored {backup} into {data_dir} {recovery.describe()} "
        f"(copy {copied:.1f}s, total {total:.1f}s){kept}"
    )

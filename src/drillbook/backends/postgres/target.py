"""A configured PostgreSQL target, sandbox or real, as the faults and steps need it.

Two shapes in drillbook.yaml (docs/postgres.md):

- sandbox: ``{backend: postgres, sandbox: region-a}`` (or ``region-b``; ``serving`` follows the
  router; ``app`` is the sandbox's HTTP app). Paths and ports come from the sandbox's state.json;
  processes are started and stopped through its supervisor.
- real: ``{backend: postgres, dsn: ..., data_dir: ..., bin_dir: ..., backup_dir: ...,
  wal_archive: ..., start_command: ..., stop_command: ..., os_user: ...}``. Only ``dsn`` is needed
  for probes, the ledger and the logical faults; the physical faults and restores need the rest.

The DSN is read from the config each time, never put in a fault's state (it may hold a password).
"""

from __future__ import annotations

import os
import pwd
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drillbook.backends.base import Context
from drillbook.backends.postgres.runcmd import lock_held, root_cause, run_command, tail_log
from drillbook.clock import get_clock
from drillbook.errors import ConfigError, FaultError, RecoveryError
from drillbook.model import TargetSpec
from drillbook.procs import pid_alive

__all__ = ["SANDBOX_NODES", "PgTarget", "pg_target", "sandbox_root"]

SANDBOX_NODES = ("region-a", "region-b", "serving", "app")


def sandbox_root(ctx: Context, target: TargetSpec | None = None) -> Path:
    """The sandbox folder: the target's ``root``, the backend setting, or ``<workdir>/.sandbox``."""
    raw = (target.params.get("root") if target else None) or ctx.settings.get("sandbox_root")
    base = Path(str(raw)) if raw else Path(".sandbox")
    return (base if base.is_absolute() else ctx.workdir / base).resolve()


@dataclass(frozen=True)
class PgTarget:
    name: str
    params: dict[str, Any]
    root: Path | None  # the sandbox root, for sandbox targets
    node: str | None  # region-a / region-b (``serving`` resolved at each use)

    @property
    def is_sandbox(self) -> bool:
        return self.root is not None

    # -- sandbox helpers --------------------------------------------------------------------
    def sandbox_state(self) -> dict[str, Any]:
        """The sandbox's state.json (sandbox targets only)."""
        from drillbook.backends.postgres.sandbox.state import load_state

        assert self.root is not None
        try:
            return load_state(self.root)
        except FileNotFoundError:
            raise FaultError(
                f"{self.name}: no sandbox at {self.root} (drillbook sandbox up)"
            ) from None

    def region(self) -> str:
        """The sandbox node this target names now (``serving`` follows the router)."""
        from drillbook.backends.postgres.sandbox.state import read_router

        if self.node == "serving":
            assert self.root is not None
            return read_router(self.root)
        if self.node is None:
            raise ConfigError(f"{self.name} is not a sandbox target", field="sandbox")
        return self.node

    # -- what every use needs ---------------------------------------------------------------
    def dsn(self, dbname: str | None = None, timeout_s: int = 2) -> str:
        if self.is_sandbox:
            from drillbook.backends.postgres.sandbox.state import dsn_for_port

            port = int(self.sandbox_state()["nodes"][self.region()]["port"])
            return dsn_for_port(
                port, dbname or str(self.params.get("dbname", "postgres")), timeout_s
            )
        dsn = self.params.get("dsn")
        if not dsn:
            raise ConfigError(f"target {self.name}: expected `dsn` or `sandbox`", field="dsn")
        return str(dsn)

    def port(self) -> int:
        return int(self.sandbox_state()["nodes"][self.region()]["port"])

    def data_dir(self) -> Path:
        if self.is_sandbox:
            return Path(self.sandbox_state()["nodes"][self.region()]["data_dir"])
        return Path(self._require("data_dir"))

    def bin_dir(self) -> Path:
        from drillbook.backends.postgres.sandbox.pgbin import find_binaries

        if self.is_sandbox:
            return Path(self.sandbox_state()["bin_dir"])
        return find_binaries(self.params.get("bin_dir")).bin_dir

    def backup_dir(self) -> Path:
        if self.is_sandbox:
            return Path(self.sandbox_state()["root"]) / "backups" / "base"
        return Path(self._require("backup_dir"))

    def wal_archive(self) -> Path | None:
        if self.is_sandbox:
            return Path(self.sandbox_state()["archive_dir"])
        raw = self.params.get("wal_archive")
        return Path(str(raw)) if raw else None

    def role(self) -> str:
        """``primary`` or ``standby``: what the target is meant to be when healthy.

        Real targets say so with ``role`` (default ``primary``: the stricter reading, since a
        primary is only recovered once it takes writes); in the sandbox region-b is the standby.
        """
        if self.is_sandbox:
            return "standby" if self.node == "region-b" else "primary"
        role = str(self.params.get("role", "primary"))
        if role not in ("primary", "standby"):
            raise ConfigError(
                f"target {self.name}: `role` must be primary or standby, got {role!r}",
                field="role",
            )
        return role

    def log_file(self) -> Path | None:
        """The server's log (``log_file``; Debian: /var/log/postgresql/postgresql-V-C.log)."""
        raw = self.params.get("log_file")
        if raw:
            return Path(str(raw))
        if not self.is_sandbox and not self.params.get("start_command"):
            return self.data_dir() / "drillbook-server.log"
        return None

    def allowed_root(self) -> Path | None:
        """Destructive file operations must stay under this folder (None: explicitly configured)."""
        return Path(self.sandbox_state()["root"]) if self.is_sandbox else None

    def _require(self, key: str) -> str:
        value = self.params.get(key)
        if not value:
            raise ConfigError(f"target {self.name}: `{key}` is needed for this step", field=key)
        return str(value)

    # -- processes --------------------------------------------------------------------------
    def postmaster_pid(self) -> int | None:
        """The running postmaster's pid, from the sandbox state or ``postmaster.pid``."""
        if self.is_sandbox:
            pid = self.sandbox_state()["nodes"][self.region()].get("pid")
            return int(pid) if pid else None
        try:
            first = (self.data_dir() / "postmaster.pid").read_text().splitlines()[0]
            pid = int(first)
        except (OSError, ValueError, IndexError):
            return None
        return pid if pid_alive(pid) else None

    def run_as(self) -> tuple[int | None, int | None]:
        if self.is_sandbox:
            state = self.sandbox_state()
            return state.get("uid"), state.get("gid")
        user = self.params.get("os_user")
        if not user:
            return None, None
        entry = pwd.getpwnam(str(user))
        return entry.pw_uid, entry.pw_gid

    def chown_tree(self, path: Path) -> None:
        from drillbook.backends.postgres.sandbox.pgbin import RunAs

        uid, gid = self.run_as()
        RunAs(uid, gid, "").chown_tree(path)

    def run_program(self, args: list[str], timeout_s: float = 3600.0) -> str:
        """Run a PostgreSQL program from ``bin_dir`` as the server's OS user."""
        uid, gid = self.run_as()
        kwargs: dict[str, Any] = {}
        if uid is not None:
            kwargs = {"user": uid, "group": gid, "extra_groups": []}
        cmd = [str(self.bin_dir() / args[0]), *args[1:]]
        try:
            done = subprocess.run(
                cmd,
                capture_output=True,
                text=True,
                timeout=timeout_s,
                check=False,
                cwd="/",
                **kwargs,
            )
        except subprocess.TimeoutExpired:
            raise RecoveryError(f"{args[0]} timed out after {timeout_s}s") from None
        if done.returncode != 0:
            raise RecoveryError(
                f"{args[0]} failed (exit {done.returncode}): "
                f"{root_cause(done.stderr + chr(10) + done.stdout)}"
            )
        return str(done.stdout)

    def start_server(self, timeout_s: float = 120.0) -> None:
        """Start the server and wait until it accepts connections (recovery may take a while).

        A start refused because an old postmaster's lock file is still there (a killed server
        not yet reaped by init: about 30 s on some hosts) is retried until ``lock_wait_s``
        (default 60) or ``timeout_s`` passes, whichever is first.
        """
        if self.is_sandbox:
            from drillbook.backends.postgres.sandbox.nodes import start_node

            assert self.root is not None
            start_node(self.root, self.region(), timeout_s)
            return
        deadline = get_clock().monotonic() + timeout_s
        lock_until = get_clock().monotonic() + min(
            timeout_s, float(self.params.get("lock_wait_s", 60))
        )
        while True:
            try:
                self._start_once(max(1.0, deadline - get_clock().monotonic()))
                break
            except RecoveryError as exc:
                log = self.log_file()
                seen = f"{exc} {tail_log(log, 10) if log else ''}"
                if not lock_held(seen) or get_clock().monotonic() > lock_until:
                    if log is not None and "FATAL" not in str(exc):
                        cause = root_cause(tail_log(log, 20))
                        raise RecoveryError(f"{exc}; server log {log}: {cause}") from None
                    raise
                get_clock().sleep(0.5)
        self.wait_ready(max(1.0, deadline - get_clock().monotonic()))

    def _start_once(self, timeout_s: float) -> None:
        command = self.params.get("start_command")
        if command:
            run_command(str(command), timeout_s, "start_command")
            return
        log = self.data_dir() / "drillbook-server.log"
        self.run_program(
            [
                "pg_ctl",
                "-D",
                str(self.data_dir()),
                "-l",
                str(log),
                "-w",
                "-t",
                str(int(timeout_s)),
                "start",
            ],
            timeout_s + 10,
        )

    def is_down(self) -> bool:
        """No live postmaster for the data folder and no answer on the DSN."""
        import psycopg

        if self.postmaster_pid() is not None:
            return False
        try:
            with psycopg.connect(self.dsn(timeout_s=1), autocommit=True):
                return False
        except psycopg.Error:
            return True

    def stop_server(self, timeout_s: float = 60.0) -> None:
        """Fast shutdown; then SIGKILL when it does not stop in time. Idempotent."""
        if self.is_sandbox:
            from drillbook.backends.postgres.sandbox.nodes import stop_node

            assert self.root is not None
            stop_node(self.root, self.region(), timeout_s)
            return
        command = self.params.get("stop_command")
        if command:
            try:
                run_command(str(command), timeout_s, "stop_command")
            except RecoveryError:
                # A server that is already down (killed, its folder deleted: pg_ctlcluster
                # then fails with "... is not accessible or does not exist") is stopped.
                if not self.is_down():
                    raise
            return
        pid = self.postmaster_pid()
        if pid is None:
            return
        os.kill(pid, signal.SIGINT)
        deadline = get_clock().monotonic() + timeout_s
        while get_clock().monotonic() < deadline and self.postmaster_pid() is not None:
            get_clock().sleep(0.05)
        if self.postmaster_pid() is not None:
            os.kill(pid, signal.SIGKILL)

    def wait_ready(self, timeout_s: float = 60.0, primary: bool | None = None) -> None:
        import psycopg

        deadline = get_clock().monotonic() + timeout_s
        last = "not tried"
        while get_clock().monotonic() < deadline:
            try:
                with psycopg.connect(self.dsn(timeout_s=1), autocommit=True) as conn:
                    row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
                    if primary is None or primary != bool(row and row[0]):
                        return
                    last = "still in recovery" if primary else "not a standby"
            except psycopg.Error as exc:
                last = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            get_clock().sleep(0.05)
        raise RecoveryError(f"{self.name} not ready after {timeout_s:.0f}s: {last}")


def pg_target(ctx: Context, target: TargetSpec | None = None) -> PgTarget:
    """Resolve the (single) target of ``ctx`` into a PgTarget."""
    spec = target or ctx.target()
    params = dict(spec.params)
    node = params.get("sandbox")
    if node is not None:
        if node not in SANDBOX_NODES:
            raise ConfigError(
                f"target {spec.name}: sandbox must be one of {', '.join(SANDBOX_NODES)}",
                field="sandbox",
            )
        return PgTarget(spec.name, params, sandbox_root(ctx, spec), str(node))
    return PgTarget(spec.name, params, None, None)

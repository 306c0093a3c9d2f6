"""The sandbox's servers one at a time: their settings, the programs run as their user, start,
stop and readiness.

Everything that touches a single node lives here, so the replication and lifecycle modules above it
speak in nodes and roles rather than in ports, conf files and retries.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

from drillbook.backends.postgres.sandbox.control import SupervisorClient
from drillbook.backends.postgres.sandbox.pgbin import RunAs
from drillbook.backends.postgres.sandbox.state import NODE_APP, dsn_for_port, load_state
from drillbook.clock import get_clock

__all__ = [
    "NODE_CONF",
    "SandboxError",
    "common_conf",
    "free_port",
    "node_port",
    "pg_run",
    "reload_conf",
    "run_as_of",
    "server_role",
    "start_node",
    "stop_node",
    "wait_ready",
    "write_node_conf",
]

NODE_CONF = "drillbook.node.conf"


class SandboxError(RuntimeError):
    """The sandbox could not be built, repaired or inspected."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def run_as_of(state: dict[str, Any]) -> RunAs:
    return RunAs(state.get("uid"), state.get("gid"), str(state.get("user", "")))


def pg_run(state: dict[str, Any], args: list[str], timeout_s: float = 600.0) -> str:
    """Run a PostgreSQL program as the server user; SandboxError with its stderr on failure."""
    run_as = run_as_of(state)
    kwargs: dict[str, Any] = {}
    if run_as.uid is not None:
        kwargs = {"user": run_as.uid, "group": run_as.gid, "extra_groups": []}
    program = str(Path(state["bin_dir"]) / args[0])
    try:
        done = subprocess.run(
            [program, *args[1:]],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            cwd=state["root"],
            check=False,
            **kwargs,
        )
    except subprocess.TimeoutExpired as exc:
        raise SandboxError(f"{args[0]} timed out after {timeout_s}s") from exc
    if done.returncode != 0:
        raise SandboxError(f"{args[0]} failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    return str(done.stdout)


def node_port(state: dict[str, Any], name: str) -> int:
    return int(state["nodes"][name]["port"])


def write_node_conf(data_dir: Path, port: int, extra: dict[str, str] | None = None) -> None:
    """Node-specific settings, included last by postgresql.conf, so copies of a data folder (a
    standby, a restore, a scratch server) only need this one file rewritten."""
    lines = [f"port = {port}"]
    for key, value in (extra or {}).items():
        lines.append(f"{key} = '{value}'")
    (data_dir / NODE_CONF).write_text("\n".join(lines) + "\n")
    for leftover in ("standby.signal", "recovery.signal"):
        (data_dir / leftover).unlink(missing_ok=True)


def common_conf(root: Path) -> str:
    archive = root / "archive"
    archive_cmd = (
        f'f="{archive}/%f"; if [ -f "$f" ]; then cmp -s "%p" "$f"; '
        f'else cp "%p" "$f.tmp" && mv "$f.tmp" "$f"; fi'
    )
    settings = {
        "listen_addresses": "127.0.0.1",
        "unix_socket_directories": str(root / "run"),
        "wal_level": "replica",
        "archive_mode": "on",
        "archive_command": archive_cmd,
        "archive_timeout": "1s",
        "restore_command": f'cp "{archive}/%f" "%p"',
        "max_wal_senders": "10",
        "wal_keep_size": "128MB",
        "hot_standby": "on",
        "wal_retrieve_retry_interval": "500ms",
        "max_connections": "60",
        "shared_buffers": "64MB",
        # Commits still write() their WAL before returning, so a killed server (what drills
        # inject) loses nothing acknowledged; only a host power loss could. Without fsync the
        # ledger keeps its rate on a busy 2-core CI machine, where fsync takes tens of ms.
        "fsync": "off",
        "logging_collector": "off",
        "log_min_messages": "warning",
    }
    body = "\n".join(f"{k} = '{v}'" for k, v in settings.items())
    return f"\n# drillbook sandbox\n{body}\ninclude_if_exists = '{NODE_CONF}'\n"


def wait_ready(
    port: int,
    timeout_s: float = 60.0,
    *,
    primary: bool | None = None,
    dbname: str = "postgres",
    root: Path | None = None,
    node: str | None = None,
) -> None:
    """Wait until the server accepts queries (and, if asked, is or is not in recovery). With
    ``root`` and ``node``, fail at once when the supervisor saw the server exit."""
    import psycopg

    deadline = get_clock().monotonic() + timeout_s
    last = "not tried"
    while get_clock().monotonic() < deadline:
        if (
            root is not None
            and node is not None
            and load_state(root)["nodes"][node].get("pid") is None
        ):
            raise SandboxError(f"{node} exited while starting; see {root}/logs/{node}.log")
        try:
            with psycopg.connect(dsn_for_port(port, dbname, timeout_s=1), autocommit=True) as c:
                row = c.execute("SELECT pg_is_in_recovery()").fetchone()
                in_recovery = bool(row and row[0])
                if primary is None or primary != in_recovery:
                    return
                last = "in recovery" if in_recovery else "not in recovery"
        except psycopg.Error as exc:
            last = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        get_clock().sleep(0.05)
    raise SandboxError(f"server on port {port} not ready after {timeout_s}s: {last}")


def start_node(root: Path, name: str, timeout_s: float = 60.0, primary: bool | None = None) -> int:
    """Start through the supervisor and wait until it serves. A postmaster that exits at once
    (the killed one's backends still hold its shared memory for a moment) is started again."""
    deadline = get_clock().monotonic() + timeout_s
    attempts = 0
    while True:
        attempts += 1
        pid = SupervisorClient(root).start(name)
        state = load_state(root)
        if name == NODE_APP:
            _wait_http(node_port(state, NODE_APP), timeout_s)
            return pid
        try:
            wait_ready(
                node_port(state, name),
                max(1.0, deadline - get_clock().monotonic()),
                primary=primary,
                root=root,
                node=name,
            )
            return pid
        except SandboxError as exc:
            if "exited" not in str(exc) or attempts >= 5 or get_clock().monotonic() > deadline:
                raise
            get_clock().sleep(0.3)


def stop_node(root: Path, name: str, timeout_s: float = 15.0) -> bool:
    return SupervisorClient(root).stop(name, timeout_s)


def _wait_http(port: int, timeout_s: float) -> None:
    deadline = get_clock().monotonic() + timeout_s
    while get_clock().monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/router", timeout=1):
                return
        except OSError:
            get_clock().sleep(0.05)
    raise SandboxError(f"app on port {port} not answering after {timeout_s}s")


def server_role(port: int) -> str:
    """'primary', 'standby' or 'down', asked of the server itself."""
    import psycopg

    try:
        with psycopg.connect(dsn_for_port(port, timeout_s=1), autocommit=True) as conn:
            row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
    except psycopg.Error:
        return "down"
    return "standby" if row and row[0] else "primary"


def reload_conf(port: int) -> None:
    """Apply a rewritten conf file to a running server (no-op when it is down)."""
    import psycopg

    with (
        contextlib.suppress(psycopg.Error),
        psycopg.connect(dsn_for_port(port, timeout_s=1), autocommit=True) as conn,
    ):
        conn.execute("SELECT pg_reload_conf()")

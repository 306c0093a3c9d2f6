"""Build, inspect, repair and tear down the sandbox topology.

region-a: primary with WAL archiving (1 s archive_timeout, 1 MB segments, so the RPO is bounded
and cheap) and a base backup taken at setup; region-b: streaming standby (async, or sync on
request); the app behind a router file. Every file lives under one root; every process is a child
of the supervisor. ``reconcile`` puts the canonical shape back after a drill (failback, re-seeded
standby): it is what postgres faults' ``revert`` runs on sandbox targets.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from drillbook.procs import pid_alive
from drillbook.sandbox.control import SupervisorClient, SupervisorDown
from drillbook.sandbox.pgbin import RunAs, find_binaries, grant_traverse, server_user
from drillbook.sandbox.state import (
    NODE_APP,
    REGION_A,
    REGION_B,
    dsn_for_port,
    load_state,
    read_router,
    save_state,
    update_state,
    write_router,
)

__all__ = [
    "DEMO_ROWS",
    "SandboxError",
    "default_root",
    "down",
    "is_up",
    "node_port",
    "pg_run",
    "promote",
    "reconcile",
    "sandbox_status",
    "seed_standby",
    "set_primary_conf",
    "start_node",
    "stop_node",
    "take_base_backup",
    "up",
    "wait_ready",
    "write_node_conf",
]

NODE_CONF = "drillbook.node.conf"


class SandboxError(RuntimeError):
    """The sandbox could not be built, repaired or inspected."""


def default_root(workdir: Path | None = None) -> Path:
    return ((workdir or Path.cwd()) / ".sandbox").resolve()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _run_as(state: dict[str, Any]) -> RunAs:
    return RunAs(state.get("uid"), state.get("gid"), str(state.get("user", "")))


def pg_run(state: dict[str, Any], args: list[str], timeout_s: float = 600.0) -> str:
    """Run a PostgreSQL program as the server user; SandboxError with its stderr on failure."""
    run_as = _run_as(state)
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


def _common_conf(root: Path) -> str:
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

    deadline = time.monotonic() + timeout_s
    last = "not tried"
    while time.monotonic() < deadline:
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
        time.sleep(0.05)
    raise SandboxError(f"server on port {port} not ready after {timeout_s}s: {last}")


def start_node(root: Path, name: str, timeout_s: float = 60.0, primary: bool | None = None) -> int:
    """Start through the supervisor and wait until it serves. A postmaster that exits at once
    (the killed one's backends still hold its shared memory for a moment) is started again."""
    deadline = time.monotonic() + timeout_s
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
                max(1.0, deadline - time.monotonic()),
                primary=primary,
                root=root,
                node=name,
            )
            return pid
        except SandboxError as exc:
            if "exited" not in str(exc) or attempts >= 5 or time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def stop_node(root: Path, name: str, timeout_s: float = 15.0) -> bool:
    return SupervisorClient(root).stop(name, timeout_s)


def _wait_http(port: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/router", timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise SandboxError(f"app on port {port} not answering after {timeout_s}s")


def take_base_backup(root: Path, source: str = REGION_A) -> Path:
    """pg_basebackup the serving primary into ``backups/base`` (replacing the previous one)."""
    state = load_state(root)
    backups = root / "backups"
    fresh = backups / "base.new"
    shutil.rmtree(fresh, ignore_errors=True)
    pg_run(
        state,
        [
            "pg_basebackup",
            "-d",
            dsn_for_port(node_port(state, source)),
            "-D",
            str(fresh),
            "-Fp",
            "-Xs",
            "-c",
            "fast",
            "--no-sync",
            "--label",
            "drillbook-sandbox",
        ],
    )
    target = backups / "base"
    shutil.rmtree(target, ignore_errors=True)
    os.replace(fresh, target)
    stamp = datetime.now(UTC).isoformat()

    def change(data: dict[str, Any]) -> None:
        data["base_backup"] = {"path": str(target), "taken_at": stamp, "source": source}

    update_state(root, change)
    return target


def seed_standby(root: Path, name: str, source: str) -> None:
    """(Re)build ``name`` as a streaming standby of ``source`` from a fresh pg_basebackup."""
    client = SupervisorClient(root)
    client.stop(name)
    state = load_state(root)
    data_dir = Path(state["nodes"][name]["data_dir"])
    shutil.rmtree(data_dir, ignore_errors=True)
    source_port = node_port(state, source)
    pg_run(
        state,
        [
            "pg_basebackup",
            "-d",
            dsn_for_port(source_port),
            "-D",
            str(data_dir),
            "-Fp",
            "-Xs",
            "-c",
            "fast",
            "--no-sync",
        ],
    )
    app_name = name.replace("-", "_")
    write_node_conf(
        data_dir,
        node_port(state, name),
        {
            "primary_conninfo": f"host=127.0.0.1 port={source_port} user=postgres"
            f" application_name={app_name}",
            "recovery_target_timeline": "latest",
        },
    )
    (data_dir / "standby.signal").touch()
    _run_as(state).chown_tree(data_dir)

    def change(data: dict[str, Any]) -> None:
        data["nodes"][name]["role"] = "standby"
        data["nodes"][name]["upstream"] = source

    update_state(root, change)
    start_node(root, name, primary=False)


def promote(root: Path, name: str, timeout_s: float = 60.0) -> None:
    import psycopg

    state = load_state(root)
    with psycopg.connect(dsn_for_port(node_port(state, name)), autocommit=True) as conn:
        conn.execute("SELECT pg_promote(true, %s)", (int(timeout_s),))
    wait_ready(node_port(state, name), timeout_s, primary=True)
    set_primary_conf(root, name)

    def change(data: dict[str, Any]) -> None:
        data["nodes"][name]["role"] = "primary"
        data["nodes"][name].pop("upstream", None)

    update_state(root, change)


def set_primary_conf(root: Path, name: str) -> None:
    """A promoted node keeps its conf file; drop standby settings and add sync replication."""
    state = load_state(root)
    extra: dict[str, str] = {}
    if state.get("sync"):
        other = REGION_B if name == REGION_A else REGION_A
        extra["synchronous_standby_names"] = other.replace("-", "_")
    write_node_conf(Path(state["nodes"][name]["data_dir"]), node_port(state, name), extra)
    _run_as(state).chown_tree(Path(state["nodes"][name]["data_dir"]) / NODE_CONF)
    _reload(node_port(state, name))


def _reload(port: int) -> None:
    """Apply a rewritten conf file to a running server (no-op when it is down)."""
    import psycopg

    with (
        contextlib.suppress(psycopg.Error),
        psycopg.connect(dsn_for_port(port, timeout_s=1), autocommit=True) as conn,
    ):
        conn.execute("SELECT pg_reload_conf()")


def _role(port: int) -> str:
    """'primary', 'standby' or 'down', asked of the server itself."""
    import psycopg

    try:
        with psycopg.connect(dsn_for_port(port, timeout_s=1), autocommit=True) as conn:
            row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
    except psycopg.Error:
        return "down"
    return "standby" if row and row[0] else "primary"


def _streaming_to(primary_port: int, standby: str) -> bool:
    import psycopg

    try:
        with psycopg.connect(dsn_for_port(primary_port, timeout_s=1), autocommit=True) as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_replication WHERE application_name = %s"
                " AND state = 'streaming'",
                (standby.replace("-", "_"),),
            ).fetchone()
    except psycopg.Error:
        return False
    return bool(row and row[0])


def _wait_streaming(primary_port: int, standby: str, timeout_s: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if _streaming_to(primary_port, standby):
            return True
        time.sleep(0.1)
    return False


def reconcile(root: Path) -> list[str]:
    """Put back the canonical topology: region-a primary and serving, region-b streaming from it,
    the app up. Idempotent; returns what it had to do (empty when nothing was wrong)."""
    done: list[str] = []
    state = load_state(root)
    port_a, port_b = node_port(state, REGION_A), node_port(state, REGION_B)
    role_a, role_b = _role(port_a), _role(port_b)
    if role_a != "primary":
        if role_b == "standby":
            promote(root, REGION_B)
            done.append("promoted region-b")
            role_b = "primary"
        if role_b != "primary":
            raise SandboxError("no primary left in the sandbox: run `drillbook sandbox down && up`")
        if state["nodes"][REGION_A].get("pid") is not None:
            stop_node(root, REGION_A)
        seed_standby(root, REGION_A, REGION_B)
        if not _wait_streaming(port_b, REGION_A):
            raise SandboxError("region-a did not start streaming from region-b")
        stop_node(root, REGION_B)  # a clean shutdown sends every WAL record to the standby first
        promote(root, REGION_A)
        done.append("failed back to region-a")
        role_b = "down"
    if read_router(root) != REGION_A:
        write_router(root, REGION_A)
        done.append("router -> region-a")
    if role_b != "standby" or not _wait_streaming(port_a, REGION_B, timeout_s=3.0):
        seed_standby(root, REGION_B, REGION_A)
        if not _wait_streaming(port_a, REGION_B):
            raise SandboxError("region-b did not start streaming from region-a")
        done.append("re-seeded region-b")
    if "failed back to region-a" in done:
        take_base_backup(root)
        done.append("new base backup")
    if load_state(root)["nodes"][NODE_APP].get("pid") is None:
        start_node(root, NODE_APP)
        done.append("started app")
    return done


#: Rows in the demo table the accidental-deletion drills delete and restore.
DEMO_ROWS = 1000


def _seed_demo_data(root: Path) -> None:
    """A small table with known contents, and a logical dump of it (for ``restore_dump``)."""
    import psycopg

    state = load_state(root)
    port = node_port(state, REGION_A)
    with psycopg.connect(dsn_for_port(port), autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS accounts (id int PRIMARY KEY, owner text NOT NULL,"
            " balance numeric(12,2) NOT NULL)"
        )
        conn.execute(
            "INSERT INTO accounts SELECT i, 'owner-' || i, i * 1.5"
            " FROM generate_series(1, %s) AS i ON CONFLICT DO NOTHING",
            (DEMO_ROWS,),
        )
    dump = root / "backups" / "postgres.dump"
    pg_run(state, ["pg_dump", "-d", dsn_for_port(port), "-Fc", "-f", str(dump)])

    def change(data: dict[str, Any]) -> None:
        data["dump"] = {"path": str(dump), "taken_at": datetime.now(UTC).isoformat()}

    update_state(root, change)


def is_up(root: Path) -> bool:
    try:
        SupervisorClient(root, timeout_s=3).status()
    except (SupervisorDown, FileNotFoundError, RuntimeError):
        return False
    return True


def _start_supervisor(root: Path, timeout_s: float = 15.0) -> None:
    log = open(root / "logs" / "supervisor.log", "ab")
    env = dict(os.environ)
    src = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    proc = subprocess.Popen(
        [sys.executable, "-m", "drillbook.sandbox.supervisor", str(root)],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # survives the terminal and the harness's process group
        env=env,
    )
    log.close()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SandboxError(f"supervisor exited ({proc.returncode}); see {root}/logs")
        if (load_state(root).get("supervisor") or {}).get("port"):
            _ADOPTED.append(proc)
            return
        time.sleep(0.05)
    raise SandboxError("supervisor did not start")


#: Supervisors this process started, so ``down`` can reap them instead of leaving zombies.
_ADOPTED: list[subprocess.Popen[bytes]] = []


def up(root: Path, *, sync: bool = False, timeout_s: float = 120.0) -> dict[str, Any]:
    """Build and start the whole sandbox; idempotent when it is already up."""
    root = root.resolve()
    if is_up(root):
        return load_state(root)
    if root.exists():
        down(root)
    binaries = find_binaries()
    run_as = server_user()
    grant_traverse(binaries.bin_dir)
    for sub in ("region-a", "region-b", "archive", "backups", "run", "logs", "scratch"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    grant_traverse(root)
    for sub in ("region-a", "region-b", "archive", "backups", "run", "scratch"):
        run_as.chown_tree(root / sub)
    state: dict[str, Any] = {
        "root": str(root),
        "created_at": datetime.now(UTC).isoformat(),
        "sync": sync,
        "bin_dir": str(binaries.bin_dir),
        "user": run_as.name,
        "uid": run_as.uid,
        "gid": run_as.gid,
        "archive_dir": str(root / "archive"),
        "supervisor": {"pid": None, "port": None},
        "nodes": {
            REGION_A: {
                "kind": "postgres",
                "port": _free_port(),
                "pid": None,
                "role": "primary",
                "data_dir": str(root / "region-a" / "data"),
            },
            REGION_B: {
                "kind": "postgres",
                "port": _free_port(),
                "pid": None,
                "role": "standby",
                "data_dir": str(root / "region-b" / "data"),
            },
            NODE_APP: {"kind": "app", "port": _free_port(), "pid": None},
        },
    }
    save_state(root, state)
    write_router(root, REGION_A)
    data_a = Path(state["nodes"][REGION_A]["data_dir"])
    pg_run(
        state,
        [
            "initdb",
            "-D",
            str(data_a),
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--wal-segsize=1",
            "--no-instructions",
            "--no-sync",  # setup speed; the servers themselves run with fsync on
        ],
        timeout_s=timeout_s,
    )
    with open(data_a / "postgresql.conf", "a") as conf:
        conf.write(_common_conf(root))
    # Asynchronous at first even with sync=True: with no standby yet, the setup's own commits
    # would wait forever for one. Sync replication is switched on once region-b streams.
    write_node_conf(data_a, node_port(state, REGION_A))
    run_as.chown_tree(data_a)
    try:
        _start_supervisor(root)
        start_node(root, REGION_A, timeout_s, primary=True)
        _seed_demo_data(root)
        take_base_backup(root)
        seed_standby(root, REGION_B, REGION_A)
        if not _wait_streaming(node_port(state, REGION_A), REGION_B):
            raise SandboxError("region-b did not start streaming")
        if sync:
            set_primary_conf(root, REGION_A)
        start_node(root, NODE_APP, timeout_s)
    except Exception:
        down(root)
        raise
    return load_state(root)


def _our_processes(root: Path) -> list[int]:
    """Processes whose command line names this sandbox root (postmasters, supervisor, app)."""
    needle = str(root).encode()
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if needle in cmdline and pid_alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def down(root: Path, timeout_s: float = 30.0) -> list[str]:
    """Stop everything and delete the root. Works when the supervisor or the harness was killed."""
    root = root.resolve()
    done: list[str] = []
    if not root.exists():
        return done
    try:
        SupervisorClient(root, timeout_s=timeout_s).shutdown()
        done.append("supervisor stopped its children")
        grace = timeout_s
    except (SupervisorDown, FileNotFoundError, RuntimeError, ValueError):
        # No supervisor (killed, or never started): ask each server for a fast shutdown.
        for pid in _our_processes(root):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGINT)
                done.append(f"stopped stray pid {pid}")
        grace = 10.0
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and _our_processes(root):
        time.sleep(0.05)
    for pid in _our_processes(root):  # the supervisor was killed, or ignored us: by pid
        try:
            os.kill(pid, signal.SIGKILL)
            done.append(f"killed stray pid {pid}")
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 10.0
    while time.monotonic() < deadline and _our_processes(root):
        time.sleep(0.05)
    for proc in list(_ADOPTED):
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            continue
        _ADOPTED.remove(proc)
    left = _our_processes(root)
    if left:
        raise SandboxError(f"processes still running under {root}: {left}")
    shutil.rmtree(root, ignore_errors=False)
    done.append(f"removed {root}")
    return done


def sandbox_status(root: Path) -> dict[str, Any]:
    """Each node's pid and role as the servers themselves report it."""
    root = root.resolve()
    try:
        state = load_state(root)
    except FileNotFoundError:
        return {"root": str(root), "up": False, "nodes": {}}
    nodes: dict[str, Any] = {}
    for name, node in state["nodes"].items():
        info = {"port": node["port"], "pid": node.get("pid")}
        if node["kind"] == "postgres":
            info["role"] = _role(int(node["port"]))
        nodes[name] = info
    try:
        serving = read_router(root)
    except FileNotFoundError:
        serving = None
    return {
        "root": str(root),
        "up": is_up(root),
        "serving": serving,
        "nodes": nodes,
        "base_backup": state.get("base_backup"),
    }

"""Build, inspect and tear down the whole sandbox under one root folder.

Every process is a child of the supervisor, started in its own session so the sandbox outlives
the command that built it. ``down`` must work when the supervisor or the harness was killed, so it
finds leftovers by the root folder named on their command lines and stops them by pid.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import drillbook
from drillbook.backends.postgres.sandbox.control import SupervisorClient, SupervisorDown
from drillbook.backends.postgres.sandbox.demo import seed_demo_data
from drillbook.backends.postgres.sandbox.nodes import (
    SandboxError,
    common_conf,
    free_port,
    node_port,
    pg_run,
    server_role,
    start_node,
    write_node_conf,
)
from drillbook.backends.postgres.sandbox.pgbin import find_binaries, grant_traverse, server_user
from drillbook.backends.postgres.sandbox.replication import (
    seed_standby,
    set_primary_conf,
    take_base_backup,
    wait_streaming,
)
from drillbook.backends.postgres.sandbox.state import (
    NODE_APP,
    REGION_A,
    REGION_B,
    load_state,
    read_router,
    save_state,
    write_router,
)
from drillbook.clock import get_clock
from drillbook.procs import pid_alive

__all__ = [
    "default_root",
    "down",
    "is_up",
    "our_processes",
    "sandbox_status",
    "up",
]


def default_root(workdir: Path | None = None) -> Path:
    return ((workdir or Path.cwd()) / ".sandbox").resolve()


def is_up(root: Path) -> bool:
    try:
        SupervisorClient(root, timeout_s=3).status()
    except (SupervisorDown, FileNotFoundError, RuntimeError):
        return False
    return True


def _start_supervisor(root: Path, timeout_s: float = 15.0) -> None:
    log = open(root / "logs" / "supervisor.log", "ab")
    env = dict(os.environ)
    src = str(Path(drillbook.__file__).resolve().parent.parent)  # this drillbook, not another
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    proc = subprocess.Popen(
        [sys.executable, "-m", "drillbook.backends.postgres.sandbox.supervisor", str(root)],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # survives the terminal and the harness's process group
        env=env,
    )
    log.close()
    deadline = get_clock().monotonic() + timeout_s
    while get_clock().monotonic() < deadline:
        if proc.poll() is not None:
            raise SandboxError(f"supervisor exited ({proc.returncode}); see {root}/logs")
        if (load_state(root).get("supervisor") or {}).get("port"):
            _ADOPTED.append(proc)
            return
        get_clock().sleep(0.05)
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
        "created_at": get_clock().wall().isoformat(),
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
                "port": free_port(),
                "pid": None,
                "role": "primary",
                "data_dir": str(root / "region-a" / "data"),
            },
            REGION_B: {
                "kind": "postgres",
                "port": free_port(),
                "pid": None,
                "role": "standby",
                "data_dir": str(root / "region-b" / "data"),
            },
            NODE_APP: {"kind": "app", "port": free_port(), "pid": None},
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
            "--no-sync",  # setup speed; a crash during setup means building again anyway
        ],
        timeout_s=timeout_s,
    )
    with open(data_a / "postgresql.conf", "a") as conf:
        conf.write(common_conf(root))
    # Asynchronous at first even with sync=True: with no standby yet, the setup's own commits
    # would wait forever for one. Sync replication is switched on once region-b streams.
    write_node_conf(data_a, node_port(state, REGION_A))
    run_as.chown_tree(data_a)
    try:
        _start_supervisor(root)
        start_node(root, REGION_A, timeout_s, primary=True)
        seed_demo_data(root)
        take_base_backup(root)
        seed_standby(root, REGION_B, REGION_A)
        if not wait_streaming(node_port(state, REGION_A), REGION_B):
            raise SandboxError("region-b did not start streaming")
        if sync:
            set_primary_conf(root, REGION_A)
        start_node(root, NODE_APP, timeout_s)
    except Exception:
        down(root)
        raise
    return load_state(root)


def our_processes(root: Path) -> list[int]:
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
        for pid in our_processes(root):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGINT)
                done.append(f"stopped stray pid {pid}")
        grace = 10.0
    deadline = get_clock().monotonic() + grace
    while get_clock().monotonic() < deadline and our_processes(root):
        get_clock().sleep(0.05)
    for pid in our_processes(root):  # the supervisor was killed, or ignored us: by pid
        try:
            os.kill(pid, signal.SIGKILL)
            done.append(f"killed stray pid {pid}")
        except ProcessLookupError:
            pass
    deadline = get_clock().monotonic() + 10.0
    while get_clock().monotonic() < deadline and our_processes(root):
        get_clock().sleep(0.05)
    for proc in list(_ADOPTED):
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            continue
        _ADOPTED.remove(proc)
    left = our_processes(root)
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
            info["role"] = server_role(int(node["port"]))
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

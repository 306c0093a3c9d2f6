"""Replication in the sandbox: base backups, (re)seeding a standby, promotion, and ``reconcile``.

region-a is the primary with WAL archiving and a base backup; region-b streams from it (async, or
sync on request). ``reconcile`` puts that canonical shape back after a drill (failback, re-seeded
standby): it is what postgres faults' ``revert`` runs on sandbox targets, so it is idempotent and
reports only what it had to change.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from drillbook.backends.postgres.sandbox.control import SupervisorClient
from drillbook.backends.postgres.sandbox.nodes import (
    NODE_CONF,
    SandboxError,
    node_port,
    pg_run,
    reload_conf,
    run_as_of,
    server_role,
    start_node,
    stop_node,
    wait_ready,
    write_node_conf,
)
from drillbook.backends.postgres.sandbox.state import (
    NODE_APP,
    REGION_A,
    REGION_B,
    dsn_for_port,
    load_state,
    read_router,
    update_state,
    write_router,
)
from drillbook.clock import get_clock

__all__ = [
    "promote",
    "reconcile",
    "seed_standby",
    "set_primary_conf",
    "take_base_backup",
    "wait_streaming",
]


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
    stamp = get_clock().wall().isoformat()

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
    run_as_of(state).chown_tree(data_dir)

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
    run_as_of(state).chown_tree(Path(state["nodes"][name]["data_dir"]) / NODE_CONF)
    reload_conf(node_port(state, name))


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


def wait_streaming(primary_port: int, standby: str, timeout_s: float = 30.0) -> bool:
    deadline = get_clock().monotonic() + timeout_s
    while get_clock().monotonic() < deadline:
        if _streaming_to(primary_port, standby):
            return True
        get_clock().sleep(0.1)
    return False


def reconcile(root: Path) -> list[str]:
    """Put back the canonical topology: region-a primary and serving, region-b streaming from it,
    the app up. Idempotent; returns what it had to do (empty when nothing was wrong)."""
    done: list[str] = []
    state = load_state(root)
    port_a, port_b = node_port(state, REGION_A), node_port(state, REGION_B)
    role_a, role_b = server_role(port_a), server_role(port_b)
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
        if not wait_streaming(port_b, REGION_A):
            raise SandboxError("region-a did not start streaming from region-b")
        stop_node(root, REGION_B)  # a clean shutdown sends every WAL record to the standby first
        promote(root, REGION_A)
        done.append("failed back to region-a")
        role_b = "down"
    if read_router(root) != REGION_A:
        write_router(root, REGION_A)
        done.append("router -> region-a")
    if role_b != "standby" or not wait_streaming(port_a, REGION_B, timeout_s=3.0):
        seed_standby(root, REGION_B, REGION_A)
        if not wait_streaming(port_a, REGION_B):
            raise SandboxError("region-b did not start streaming from region-a")
        done.append("re-seeded region-b")
    if "failed back to region-a" in done:
        take_base_backup(root)
        done.append("new base backup")
    if load_state(root)["nodes"][NODE_APP].get("pid") is None:
        start_node(root, NODE_APP)
        done.append("started app")
    return done

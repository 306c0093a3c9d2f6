"""``state.json``: what the sandbox is made of, shared between processes.

The sandbox outlives the command that started it, and faults, recovery steps and the reaper act on
it from other processes. So everything they need (ports, folders, pids, roles, the supervisor's
control port) lives in one small JSON file under the sandbox root, replaced atomically under a lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

__all__ = [
    "NODE_APP",
    "POSTGRES_NODES",
    "REGION_A",
    "REGION_B",
    "dsn_for_port",
    "load_state",
    "locked",
    "read_router",
    "save_state",
    "state_path",
    "update_state",
    "write_router",
]

REGION_A = "region-a"
REGION_B = "region-b"
NODE_APP = "app"
POSTGRES_NODES = (REGION_A, REGION_B)


def state_path(root: Path) -> Path:
    return root / "state.json"


@contextlib.contextmanager
def locked(root: Path) -> Iterator[None]:
    """An exclusive lock over the sandbox's files (flock; released if the holder dies)."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as handle:
        json.dump(data, handle, indent=2, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def load_state(root: Path) -> dict[str, Any]:
    """The sandbox's state; FileNotFoundError when there is no sandbox at ``root``."""
    with open(state_path(root)) as handle:
        data: dict[str, Any] = json.load(handle)
    return data


def save_state(root: Path, data: dict[str, Any]) -> None:
    with locked(root):
        _write_json(state_path(root), data)


def update_state(root: Path, change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """Read-modify-write ``state.json`` under the lock; returns the new state."""
    with locked(root):
        data = load_state(root)
        change(data)
        _write_json(state_path(root), data)
        return data


def read_router(root: Path) -> str:
    """The region that serves: the router is a file so any process can read or switch it."""
    with open(root / "router.json") as handle:
        serving: str = json.load(handle)["serving"]
    return serving


def write_router(root: Path, region: str) -> None:
    _write_json(root / "router.json", {"serving": region})


def dsn_for_port(port: int, dbname: str = "postgres", timeout_s: int = 2) -> str:
    """The sandbox's servers trust local TCP connections as ``postgres`` (no secret to leak)."""
    return f"host=127.0.0.1 port={port} user=postgres dbname={dbname} connect_timeout={timeout_s}"

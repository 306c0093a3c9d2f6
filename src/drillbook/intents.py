"""The intent ledger: what was injected, where, and how to take it back.

Written *before* every inject and fsynced, so that a harness killed at any instant leaves a record
``drillbook rollback`` can act on. Append-only JSON lines (one process may be appending while
another reads); an intent is pending until a ``reverted`` line for it exists. Appends take an
``flock`` so concurrent runs on one machine do not interleave bytes.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import threading
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from drillbook.redact import redact

__all__ = ["Intent", "IntentLedger"]


@dataclass(frozen=True)
class Intent:
    """Everything a new process needs to rebuild a fault and revert it (no secrets: targets by name)."""

    id: str
    run_id: str
    drill: str
    fault_type: str
    params: Mapping[str, Any]
    targets: tuple[str, ...]
    config_path: str | None
    workdir: str
    environment: str
    created_at: float  # epoch seconds
    expires_at: float  # epoch seconds: the fault's TTL
    plan: str = ""
    pid: int = field(default_factory=os.getpid)
    host: str = field(default_factory=socket.gethostname)
    state: Mapping[str, Any] = field(default_factory=dict)
    status: str = "intended"  # intended -> injected -> reverted | revert_failed
    detail: str = ""

    @staticmethod
    def new_id() -> str:
        # secrets.token_hex is os.urandom(n).hex(); its module (random, hmac, base64) is ~2 ms
        # of every run's start.
        return "int-" + os.urandom(6).hex()


class IntentLedger:
    """``.drillbook/intents.jsonl``: ops ``intent``, ``injected``, ``reverted``, ``revert_failed``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _append(self, record: Mapping[str, Any], *, wait_for_disk: bool = True) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = (
            json.dumps(redact(dict(record)), default=str, separators=(",", ":")) + "\n"
        ).encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.write(fd, line)
            if wait_for_disk:
                os.fsync(fd)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
        if not wait_for_disk:
            _sync_soon(self.path)

    def record(self, intent: Intent) -> None:
        """The intent, on disk before this returns: nothing may be injected before it is."""
        data = asdict(intent)
        data["targets"] = list(intent.targets)
        self._append({"op": "intent", **data})

    def injected(
        self, intent_id: str, state: Mapping[str, Any], *, wait_for_disk: bool = True
    ) -> None:
        """``wait_for_disk=False``: see :func:`_sync_soon` (the engine's choice: this line is
        written between the inject and the moment it is seen, inside the measured drill)."""
        self._append(
            {"op": "injected", "id": intent_id, "state": dict(state)}, wait_for_disk=wait_for_disk
        )

    def reverted(
        self, intent_id: str, detail: str = "", by: str = "drill", *, wait_for_disk: bool = True
    ) -> None:
        self._append(
            {"op": "reverted", "id": intent_id, "detail": detail, "by": by},
            wait_for_disk=wait_for_disk,
        )

    def revert_failed(self, intent_id: str, detail: str) -> None:
        self._append({"op": "revert_failed", "id": intent_id, "detail": detail})

    def _records(self) -> Iterator[dict[str, Any]]:
        if not self.path.exists():
            return
        with open(self.path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                line = line.strip()
                if not line:
                    continue
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a torn last line from a crash mid-write
                if isinstance(rec, dict) and "id" in rec and "op" in rec:
                    yield rec

    def all(self) -> dict[str, Intent]:
        intents: dict[str, Intent] = {}
        for rec in self._records():
            op = rec.pop("op")
            iid = rec["id"]
            if op == "intent":
                rec["targets"] = tuple(rec.get("targets", ()))
                known = set(Intent.__dataclass_fields__)
                intents[iid] = Intent(**{k: v for k, v in rec.items() if k in known})
            elif iid in intents:
                old = intents[iid]
                if op == "injected":
                    intents[iid] = _replace(old, state=rec.get("state", {}), status="injected")
                elif op == "reverted":
                    intents[iid] = _replace(old, status="reverted", detail=rec.get("detail", ""))
                elif op == "revert_failed":
                    intents[iid] = _replace(
                        old, status="revert_failed", detail=rec.get("detail", "")
                    )
        return intents

    def pending(self) -> list[Intent]:
        """Intents not (yet) reverted, oldest first."""
        return [i for i in self.all().values() if i.status != "reverted"]

    def get(self, intent_id: str) -> Intent | None:
        return self.all().get(intent_id)


def _sync_soon(path: Path) -> None:
    """fsync ``path`` on a thread of its own, for a line already written.

    Why this is safe for ``injected`` and ``reverted`` lines, never for ``intent``: the line is
    in the file when the append returns, so another process (rollback, the watchdog) reads it at
    once and a harness killed with SIGKILL cannot lose it; only an operating-system crash before
    the fsync lands could. Then the ledger still holds the intent, fsynced before anything was
    injected, with the state resolve() knew, and rollback reverts from that (an intent never
    marked injected or reverted is pending; reverting twice is harmless). Waiting for the disk
    there cost the drill 0.5 to 5 ms each time, measured here. Not a daemon thread: the
    interpreter waits for it at exit."""

    def sync() -> None:
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            return
        try:
            os.fsync(fd)
        except OSError:
            pass
        finally:
            os.close(fd)

    threading.Thread(target=sync, name="drillbook-ledger-sync").start()


def _replace(intent: Intent, **changes: Any) -> Intent:
    data = asdict(intent)
    data.update(changes)
    data["targets"] = tuple(data["targets"])
    return Intent(**data)

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

    def _append(self, record: Mapping[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = (
            json.dumps(redact(dict(record)), default=str, separators=(",", ":")) + "\n"
        ).encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.write(fd, line)
            os.fsync(fd)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def record(self, intent: Intent) -> None:
        data = asdict(intent)
        data["targets"] = list(intent.targets)
        self._append({"op": "intent", **data})

    def injected(self, intent_id: str, state: Mapping[str, Any]) -> None:
        self._append({"op": "injected", "id": intent_id, "state": dict(state)})

    def reverted(self, intent_id: str, detail: str = "", by: str = "drill") -> None:
        self._append({"op": "reverted", "id": intent_id, "detail": detail, "by": by})

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


def _replace(intent: Intent, **changes: Any) -> Intent:
    data = asdict(intent)
    data.update(changes)
    data["targets"] = tuple(data["targets"])
    return Intent(**data)

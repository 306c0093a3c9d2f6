"""The intent ledger: what was injected, where, and how to take it back.

Written *before* every inject and fsynced, so that a harness killed at any instant leaves a record
``drillbook rollback`` can act on. JSON lines (one process may be appending while another reads);
an intent is pending until a ``reverted`` line for it exists.

Three rules keep it trustworthy:

- Every line is fsynced before the append returns: the ledger is what the reaper acts on, and a
  line lost to a power cut is a fault nobody knows to revert.
- Every append starts on a fresh line. A harness killed mid-write (or a full disk) leaves a torn
  last line; the next record is written after a newline, so readers skip the torn fragment only,
  never the record after it. Ledgers written before this rule may hold a fragment glued to the
  next record on one line: readers recover the whole records from such a line.
- The live ledger holds only what may be pending. Once an intent is reverted its lines move to
  ``<name>.archive.jsonl`` beside it (appended, fsynced, never rewritten: the evidence trail),
  so rollback and the watchdog read a file the size of what is in flight, not of history.

Writers (appends, compaction) serialise on an ``flock`` of ``<name>.lock``: the ledger file is
replaced by compaction, so its own inode cannot carry the lock. Readers take no lock: the
replacement is an atomic rename, and both the old file and the new one hold every pending intent.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from drillbook.liveness import Origin, here
from drillbook.redact import redact

__all__ = ["Intent", "IntentLedger", "parse_line"]

#: How every record line starts (``op`` is written first): where a glued record can begin.
_RECORD_START = '{"op"'


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
    host: str = field(default_factory=lambda: here().host)
    pidns: str = field(default_factory=lambda: here().pidns)
    boot_id: str = field(default_factory=lambda: here().boot_id)
    state: Mapping[str, Any] = field(default_factory=dict)
    status: str = "intended"  # intended -> injected -> reverted | revert_failed
    detail: str = ""

    @staticmethod
    def new_id() -> str:
        return "int-" + os.urandom(6).hex()

    @property
    def origin(self) -> Origin:
        """Where :attr:`pid` means something (see :mod:`drillbook.liveness`)."""
        return Origin(self.host, self.pidns, self.boot_id)


def parse_line(line: str) -> list[dict[str, Any]]:
    """The whole records on one ledger line; a torn fragment yields nothing.

    A line that does not parse may be a torn fragment followed (same line) by whole records, as a
    ledger written before appends started on a fresh line holds them: those are recovered."""
    line = line.strip()
    if not line:
        return []
    try:
        rec = json.loads(line)
    except json.JSONDecodeError:
        pass
    else:
        return [rec] if _is_record(rec) else []
    found: list[dict[str, Any]] = []
    decoder = json.JSONDecoder()
    pos = line.find(_RECORD_START, 1)
    while pos != -1:
        try:
            rec, end = decoder.raw_decode(line, pos)
        except json.JSONDecodeError:
            pos = line.find(_RECORD_START, pos + 1)
            continue
        if _is_record(rec):
            found.append(rec)
        pos = line.find(_RECORD_START, end)
    return found


def _is_record(rec: Any) -> bool:
    return isinstance(rec, dict) and "id" in rec and "op" in rec


class IntentLedger:
    """``.drillbook/intents.jsonl``: ops ``intent``, ``injected``, ``reverted``, ``revert_failed``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.archive_path = path.with_name(f"{path.stem}.archive{path.suffix or '.jsonl'}")
        self._lock_path = path.with_name(path.name + ".lock")

    @contextmanager
    def _writing(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the flock

    def _append(self, record: Mapping[str, Any]) -> None:
        line = (
            json.dumps(redact(dict(record)), default=str, separators=(",", ":")) + "\n"
        ).encode()
        with self._writing():
            _append_durably(self.path, line)

    def record(self, intent: Intent) -> None:
        """The intent, on disk before this returns: nothing may be injected before it is."""
        data = asdict(intent)
        data["targets"] = list(intent.targets)
        self._append({"op": "intent", **data})

    def injected(self, intent_id: str, state: Mapping[str, Any]) -> None:
        self._append({"op": "injected", "id": intent_id, "state": dict(state)})

    def reverted(self, intent_id: str, detail: str = "", by: str = "drill") -> None:
        """Mark it reverted, then move every reverted intent to the archive."""
        self._append({"op": "reverted", "id": intent_id, "detail": detail, "by": by})
        self.compact()

    def revert_failed(self, intent_id: str, detail: str, *, attempt: int | None = None) -> None:
        rec: dict[str, Any] = {"op": "revert_failed", "id": intent_id, "detail": detail}
        if attempt is not None:
            rec["attempt"] = attempt
        self._append(rec)

    def compact(self) -> int:
        """Move the lines of reverted intents (and torn fragments) to the archive; returns how
        many lines moved. A crash between the archive's append and the ledger's replacement
        leaves those lines in both: readers of either see the same statuses."""
        with self._writing():
            try:
                raw = self.path.read_bytes()
            except FileNotFoundError:
                return 0
            lines = raw.splitlines(keepends=True)
            parsed = [parse_line(line.decode("utf-8", errors="replace")) for line in lines]
            status: dict[str, str] = {}
            for records in parsed:
                for rec in records:
                    op, iid = rec["op"], str(rec["id"])
                    if op == "intent":
                        status[iid] = "intended"
                    elif iid in status:
                        status[iid] = op
            done = {iid for iid, st in status.items() if st == "reverted"}
            keep: list[bytes] = []
            move: list[bytes] = []
            for line, records in zip(lines, parsed, strict=True):
                if not line.strip():
                    continue
                whole = line if line.endswith(b"\n") else line + b"\n"
                if records and all(str(r["id"]) not in done for r in records):
                    keep.append(whole)
                else:
                    move.append(whole)  # reverted, or a fragment no reader can use
            if not move:
                return 0
            _append_durably(self.archive_path, b"".join(move))
            tmp = self.path.with_name(self.path.name + ".tmp")
            with open(tmp, "wb") as fh:
                fh.write(b"".join(keep))
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
            _fsync_dir(self.path.parent)
            return len(move)

    def _records(self, path: Path | None = None) -> Iterator[dict[str, Any]]:
        try:
            fh = open(path or self.path, encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return
        with fh:
            for line in fh:
                yield from parse_line(line)

    def all(self) -> dict[str, Intent]:
        """Every intent in the live ledger (reverted ones are in the archive once compacted)."""
        return self._fold(self._records())

    def archived(self) -> dict[str, Intent]:
        """Every intent moved to the archive (reverted ones): the evidence trail."""
        return self._fold(self._records(self.archive_path))

    def lookup(self, intent_id: str) -> Intent | None:
        """One intent wherever it is now: the live ledger first, then the archive."""
        return self.get(intent_id) or self.archived().get(intent_id)

    @staticmethod
    def _fold(records: Iterator[dict[str, Any]]) -> dict[str, Intent]:
        intents: dict[str, Intent] = {}
        known = set(Intent.__dataclass_fields__)
        for rec in records:
            op = rec.pop("op")
            iid = rec["id"]
            if op == "intent":
                rec["targets"] = tuple(rec.get("targets", ()))
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


def _append_durably(path: Path, data: bytes) -> None:
    """Append ``data`` on a fresh line (after a torn last line, a newline first) and fsync."""
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            data = b"\n" + data  # the last line is torn: leave it on a line of its own
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _replace(intent: Intent, **changes: Any) -> Intent:
    data = asdict(intent)
    data.update(changes)
    data["targets"] = tuple(data["targets"])
    return Intent(**data)

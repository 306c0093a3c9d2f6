"""The events.jsonl hash chain: each line's ``prev`` is the SHA-256 of the previous line's bytes.

Why a chain and not only a file hash: the manifest proves the file did not change after bundling;
the chain proves the engine's own append order, so a dropped or reordered event is named by line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from drillbook.evidence.hashing import ZERO_HASH, sha256_bytes

__all__ = ["ChainReport", "check_chain", "check_chain_bytes"]


@dataclass
class ChainReport:
    """What the chain walk found: line count, the hash of the last line, and every break."""

    lines: int = 0
    head: str = ZERO_HASH
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def check_chain_bytes(data: bytes, *, name: str = "events.jsonl") -> ChainReport:
    """Walk the chain in ``data``; report each line whose ``prev`` or ``seq`` does not follow."""
    report = ChainReport()
    if data and not data.endswith(b"\n"):
        report.problems.append(f"{name}: last line has no trailing newline (truncated?)")
    raw_lines = data.split(b"\n")
    if raw_lines and raw_lines[-1] == b"":
        raw_lines.pop()
    prev = ZERO_HASH
    for index, raw in enumerate(raw_lines):
        lineno = index + 1
        try:
            event = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            report.problems.append(f"{name}:{lineno}: not valid JSON ({exc.__class__.__name__})")
            prev = sha256_bytes(raw)
            continue
        if not isinstance(event, dict):
            report.problems.append(f"{name}:{lineno}: expected a JSON object")
            prev = sha256_bytes(raw)
            continue
        got_prev = event.get("prev")
        if got_prev != prev:
            report.problems.append(
                f"{name}:{lineno}: prev expected {prev} (sha256 of line {lineno - 1}), "
                f"actual {got_prev}"
            )
        seq = event.get("seq")
        if seq != index:
            report.problems.append(f"{name}:{lineno}: seq expected {index}, actual {seq}")
        prev = sha256_bytes(raw)
    report.lines = len(raw_lines)
    report.head = prev
    return report


def check_chain(path: Path) -> ChainReport:
    """Read ``path`` and walk its chain."""
    return check_chain_bytes(path.read_bytes(), name=path.name)

"""The bundle index under the reports dir: what links a scenario's bundles into a chain.

One JSON line per bundle. The newest line naming a scenario gives the manifest hash the next
bundle of that scenario records as ``previous``, so a quarter's bundles form a verifiable chain.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

__all__ = ["INDEX_NAME", "append_entry", "index_path", "previous_links", "read_index"]

INDEX_NAME = "index.jsonl"


def index_path(reports_dir: Path) -> Path:
    """``<reports_dir>/evidence/index.jsonl``."""
    return reports_dir / "evidence" / INDEX_NAME


def read_index(reports_dir: Path) -> list[dict[str, Any]]:
    """All index entries, oldest first; unreadable lines are skipped (bundles are the truth)."""
    path = index_path(reports_dir)
    if not path.exists():
        return []
    entries: list[dict[str, Any]] = []
    for line in path.read_text("utf-8").splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(entry, dict):
            entries.append(entry)
    return entries


def previous_links(
    entries: Iterable[Mapping[str, Any]], scenarios: Iterable[str], run_id: str
) -> dict[str, dict[str, Any] | None]:
    """For each scenario, the newest earlier bundle of another run: its run id and manifest hash."""
    wanted = list(scenarios)
    links: dict[str, dict[str, Any] | None] = dict.fromkeys(wanted)
    for entry in entries:
        if entry.get("run_id") == run_id:
            continue
        for scenario in entry.get("scenarios", []) or []:
            if scenario in links:
                links[scenario] = {
                    "run_id": entry.get("run_id"),
                    "manifest_sha256": entry.get("manifest_sha256"),
                    "bundle": entry.get("bundle"),
                }
    return links


def append_entry(reports_dir: Path, entry: Mapping[str, Any]) -> None:
    """Append one line and fsync, so a crash cannot leave a half-written link."""
    path = index_path(reports_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(dict(entry), sort_keys=True) + "\n")
        fh.flush()
        os.fsync(fh.fileno())

"""Gather evidence records for control coverage: bundles (the index), run folders, history.

Why all three: a bundled run is evidence an auditor can verify; a run that was never bundled (its
folder still in the reports dir, or only recorded in the SQLite history after the folder was
pruned) still shows the control was exercised, and is marked "not bundled" so the gap is visible.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from drillbook.evidence.controls import EvidenceRecord
from drillbook.evidence.index import read_index

if TYPE_CHECKING:
    from drillbook.history import HistoryLocation

__all__ = ["collect_records", "parse_time"]


def parse_time(value: Any) -> datetime | None:
    """Parse the journal's ``...Z`` timestamps; None for anything else."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def _records(
    run_id: str, at: datetime, drills: Iterable[Mapping[str, Any]], bundle: str | None
) -> list[EvidenceRecord]:
    out: list[EvidenceRecord] = []
    for drill in drills:
        for control in drill.get("controls", []) or []:
            out.append(
                EvidenceRecord(
                    control=str(control),
                    at=at,
                    run_id=run_id,
                    scenario=str(drill.get("scenario") or drill.get("id")),
                    verdict=str(drill.get("verdict")),
                    bundle=bundle,
                )
            )
    return out


def _from_history(history: HistoryLocation, seen: set[str]) -> list[EvidenceRecord]:
    try:
        from drillbook.history import load_run_journal, recorded_run_ids
    except ImportError:  # pragma: no cover - before the core history module existed
        return []
    records: list[EvidenceRecord] = []
    for run_id in sorted(recorded_run_ids(history) - seen):
        journal = load_run_journal(history, run_id)
        at = parse_time((journal or {}).get("started_at"))
        if journal is None or at is None:
            continue
        drills = [d for d in journal.get("drills", []) or [] if isinstance(d, Mapping)]
        records.extend(_records(run_id, at, drills, None))
    return records


def collect_records(
    reports_dir: Path, history: HistoryLocation | None = None
) -> list[EvidenceRecord]:
    """Records from the bundle index, unbundled ``*/journal.json``, and the history (a SQLite
    file or a shared PostgreSQL one: runners that share a history prove coverage together).

    ``history`` defaults to ``<reports_dir>/history.sqlite``; a missing database is no error.
    """
    records: list[EvidenceRecord] = []
    bundled: set[str] = set()
    folders: set[str] = set()
    for entry in read_index(reports_dir):
        at = parse_time(entry.get("started_at")) or parse_time(entry.get("created_at"))
        run_id = str(entry.get("run_id"))
        if at is None or run_id in bundled:
            continue
        bundle = entry.get("bundle")
        if bundle and not Path(str(bundle)).exists():
            continue  # deleted bundle: no longer evidence
        bundled.add(run_id)
        drills = [d for d in entry.get("drills", []) or [] if isinstance(d, Mapping)]
        records.extend(_records(run_id, at, drills, str(bundle) if bundle else None))
    if reports_dir.is_dir():
        for journal_path in sorted(reports_dir.glob("*/journal.json")):
            if journal_path.parent.is_symlink():
                continue
            try:
                journal = json.loads(journal_path.read_text("utf-8"))
            except (OSError, json.JSONDecodeError, UnicodeDecodeError):
                continue
            if not isinstance(journal, dict):
                continue
            run_id = str(journal.get("run_id") or journal_path.parent.name)
            at = parse_time(journal.get("started_at"))
            if run_id in bundled or run_id in folders or at is None:
                continue
            folders.add(run_id)
            drills = [d for d in journal.get("drills", []) or [] if isinstance(d, Mapping)]
            records.extend(_records(run_id, at, drills, None))
    db = history if history is not None else reports_dir / "history.sqlite"
    if not isinstance(db, Path) or db.is_file():
        records.extend(_from_history(db, bundled | folders))
    return records

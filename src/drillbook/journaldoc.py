"""Reading run journals: load and check ``journal.json``, find a run, and read drill fields.

Reports, history and the quarterly report all read journals written by other processes (the
plugin, a CI job, another machine), so every accessor here tolerates a missing or null field
instead of trusting the file, and a journal that is not usable at all is a ``ConfigError`` naming
the file and field, never a traceback.

A module of its own, outside both: history reads journals and the report package reads history,
so the reader they share belongs to neither (``drillbook.report.journal`` re-exports it).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from drillbook.errors import ConfigError

__all__ = [
    "VERDICTS",
    "drill_target_key",
    "find_run_dir",
    "inject_offset",
    "load_journal",
    "mapping",
    "merge_probe_events",
    "num",
    "parse_time",
    "quarter_of",
    "seq",
    "validate_journal",
]

VERDICTS = ("passed", "failed", "aborted", "error")


def load_journal(path: Path) -> dict[str, Any]:
    """Read and check one ``journal.json`` (or a run folder holding one)."""
    if path.is_dir():
        path = path / "journal.json"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("expected a journal.json file", source=str(path)) from None
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", source=str(path)) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"expected JSON ({exc.msg})", source=str(path), line=exc.lineno) from None
    validate_journal(data, source=str(path))
    assert isinstance(data, dict)
    return data


def validate_journal(data: object, *, source: str = "journal") -> None:
    """Check the few keys every reader relies on; the rest is read defensively."""
    if not isinstance(data, Mapping):
        raise ConfigError("expected a JSON object", source=source)
    version = data.get("schema_version")
    if version != 1:
        raise ConfigError(f"expected 1, got {version!r}", source=source, field="schema_version")
    run_id = data.get("run_id")
    if not isinstance(run_id, str) or not run_id or "/" in run_id or run_id.startswith("."):
        raise ConfigError("expected a run id string", source=source, field="run_id")
    drills = data.get("drills")
    if not isinstance(drills, list):
        raise ConfigError("expected a list of drills", source=source, field="drills")
    for i, drill in enumerate(drills):
        if not isinstance(drill, Mapping) or not isinstance(drill.get("id"), str):
            raise ConfigError("expected an object with an id", source=source, field=f"drills[{i}]")


def find_run_dir(reports_dir: Path, ref: str) -> Path:
    """Resolve ``latest``, a run id under ``reports_dir``, a run folder or a journal.json path."""
    if ref == "latest":
        link = reports_dir / "latest"
        if link.exists():
            return link.resolve()
        runs = sorted(
            (p for p in reports_dir.glob("*/journal.json") if p.parent.name != "latest"),
            key=lambda p: p.stat().st_mtime,
        )
        if not runs:
            raise ConfigError(
                "expected a recorded run (no journal.json found)", source=str(reports_dir)
            )
        return runs[-1].parent.resolve()
    candidate = Path(ref)
    if candidate.is_file() and candidate.name.endswith(".json"):
        return candidate.parent.resolve()
    if candidate.is_dir() and (candidate / "journal.json").is_file():
        return candidate.resolve()
    by_id = reports_dir / ref
    if (by_id / "journal.json").is_file():
        return by_id.resolve()
    raise ConfigError("expected a run id, a run folder, a journal.json or 'latest'", source=ref)


def num(value: object) -> float | None:
    """A float, or None for null/missing/non-numbers (journals from elsewhere may be sparse)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def mapping(value: object) -> Mapping[str, Any]:
    """An object field, or an empty one."""
    return value if isinstance(value, Mapping) else {}


def seq(value: object) -> Sequence[Any]:
    """A list field, or an empty one."""
    return value if isinstance(value, list) else []


def parse_time(value: object) -> datetime | None:
    """Parse the journal's UTC ISO 8601 (``...Z``) times."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def quarter_of(when: datetime) -> str:
    """``2026Q4``: the unit quarterly DR reviews count in."""
    return f"{when.year}Q{(when.month - 1) // 3 + 1}"


def drill_target_key(drill: Mapping[str, Any]) -> str:
    """The targets a drill hit, as one stable key (trends are per scenario *and* target)."""
    names = sorted(
        str(t.get("name"))
        for t in seq(drill.get("targets"))
        if isinstance(t, Mapping) and t.get("name")
    )
    return ",".join(names) or "-"


def inject_offset(drill: Mapping[str, Any]) -> float:
    """Seconds from the drill's start to t_inject.

    Phases, timeline entries and steps are offsets from the drill's start, while measures are
    offsets from t_inject; this is the one place that relates the two clocks' origins.
    """
    for event in seq(drill.get("timeline")):
        if isinstance(event, Mapping) and event.get("kind") == "inject":
            value = num(event.get("offset_s"))
            if value is not None:
                return value
    for phase in seq(drill.get("phases")):
        if isinstance(phase, Mapping) and phase.get("phase") == "inject":
            value = num(phase.get("end_s"))
            if value is not None:
                return value
    return 0.0


_PROBE_KEYS = (
    "t",
    "offset_s",
    "kind",
    "probe",
    "ok",
    "latency_s",
    "end_offset_s",
    "detail",
    "phase",
)


def merge_probe_events(run_dir: Path, journal: Mapping[str, Any]) -> dict[str, Any]:
    """The journal with each drill's probe samples, taken from ``events.jsonl`` where missing.

    The engine may keep the (many) probe samples only in the hash-chained event log and not in
    the drill's timeline; the report wants them as marks. The journal itself is not changed.
    """
    out = copy.deepcopy(dict(journal))
    events_path = run_dir / "events.jsonl"
    drills = [d for d in seq(out.get("drills")) if isinstance(d, dict)]
    if not drills or not events_path.is_file():
        return out
    want = {
        str(d.get("id")): d
        for d in drills
        if sum(
            1 for e in seq(d.get("timeline")) if isinstance(e, Mapping) and e.get("kind") == "probe"
        )
        < (num(mapping(d.get("measures")).get("probe_samples")) or 0)
    }
    if not want:
        return out
    found: dict[str, list[dict[str, Any]]] = {}
    try:
        with events_path.open(encoding="utf-8") as fh:
            for line in fh:
                try:
                    event = json.loads(line)
                except ValueError:
                    continue  # a torn last line after a crash
                if (
                    isinstance(event, dict)
                    and event.get("kind") == "probe"
                    and event.get("drill") in want
                ):
                    found.setdefault(event["drill"], []).append(
                        {k: event[k] for k in _PROBE_KEYS if k in event}
                    )
    except OSError:
        return out
    for drill_id, samples in found.items():
        drill = want[drill_id]
        others = [
            e
            for e in seq(drill.get("timeline"))
            if not (isinstance(e, Mapping) and e.get("kind") == "probe")
        ]
        merged = others + samples
        merged.sort(key=lambda e: num(e.get("offset_s")) or 0.0 if isinstance(e, Mapping) else 0.0)
        drill["timeline"] = merged
    return out

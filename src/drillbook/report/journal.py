"""The run-journal reader, for the report package: it lives in :mod:`drillbook.journaldoc`,
beside history and the reports rather than inside either, so neither package imports the other
back."""

from __future__ import annotations

from drillbook.journaldoc import (
    VERDICTS,
    drill_target_key,
    find_run_dir,
    inject_offset,
    load_journal,
    mapping,
    merge_probe_events,
    num,
    parse_time,
    quarter_of,
    seq,
    validate_journal,
)

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

"""Run reports: ``report.html``, ``summary.md`` and ``drills.csv`` from a run's journal.

The plugin calls :func:`write_run_reports` after writing ``journal.json``; ``drillbook report``
calls it again to re-render. :func:`junit_properties` gives each drill's measures for
``--junitxml``, and :class:`~drillbook.report.progress.Progress` shows a wait in progress.

Submodules are imported on first use: every ``drillbook`` command imports this package (for its
subcommands), and only the ones that render should pay for Jinja2 and tabulate.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from drillbook.report.junit import junit_properties
    from drillbook.report.progress import Progress

__all__ = ["Progress", "junit_properties", "write_run_reports"]

_LAZY = {"Progress": "drillbook.report.progress", "junit_properties": "drillbook.report.junit"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def write_run_reports(
    run_dir: Path,
    journal: Mapping[str, Any],
    *,
    step_summary: bool = True,
    environ: Mapping[str, str] | None = None,
) -> list[Path]:
    """Write the run's reports into ``run_dir`` and return their paths.

    ``summary.md`` is also appended to ``$GITHUB_STEP_SUMMARY`` when that is set (and
    ``step_summary`` is true: re-rendering an old run must not add it to today's CI page).
    Probe samples the journal's timelines lack are taken from the run's ``events.jsonl``.
    """
    from drillbook.report.csvout import write_drills_csv
    from drillbook.report.html import write_run_html
    from drillbook.report.journal import merge_probe_events
    from drillbook.report.markdown import append_step_summary, write_summary_md

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    journal = merge_probe_events(run_dir, journal)
    html = write_run_html(run_dir, journal)
    md = write_summary_md(run_dir, journal)
    csv_path = write_drills_csv(run_dir, journal)
    if step_summary:
        append_step_summary(
            md.read_text(encoding="utf-8"), environ if environ is not None else os.environ
        )
    return [html, md, csv_path]

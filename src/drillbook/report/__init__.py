"""Run reports: ``report.html``, ``summary.md`` and ``drills.csv`` from a run's journal.

The plugin calls :func:`write_run_reports` after writing ``journal.json``; ``drillbook report``
calls it again to re-render. :func:`junit_properties` gives each drill's measures for
``--junitxml``, and :class:`~drillbook.report.progress.Progress` shows a wait in progress.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from drillbook.report.csvout import write_drills_csv
from drillbook.report.html import write_run_html
from drillbook.report.journal import merge_probe_events
from drillbook.report.junit import junit_properties
from drillbook.report.markdown import append_step_summary, write_summary_md
from drillbook.report.progress import Progress

__all__ = ["Progress", "junit_properties", "write_run_reports"]


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
    """
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

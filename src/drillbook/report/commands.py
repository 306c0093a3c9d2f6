"""CLI subcommands ``report``, ``trend`` and ``history import`` (registered into cli.py's parser).

Every handler returns the documented exit code: 0 ok, 1 a regression when asked to fail on one,
2 bad input (one line ``source:line: field: message``, no traceback), 4 a harness error such as an
unreadable history database.
"""

from __future__ import annotations

import argparse
import functools
import sqlite3
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from drillbook.errors import ConfigError
from drillbook.history_pg import HistoryStoreError

if TYPE_CHECKING:
    from drillbook.config import Config

__all__ = ["register"]

Handler = Callable[[argparse.Namespace], int]


def _guarded(fn: Handler) -> Handler:
    """Turn expected failures into the contract's exit codes and one line on stderr."""

    @functools.wraps(fn)
    def run(args: argparse.Namespace) -> int:
        try:
            return fn(args)
        except ConfigError as exc:
            print(f"drillbook: {exc}", file=sys.stderr)
            return 2
        except (sqlite3.Error, OSError, HistoryStoreError) as exc:
            print(f"drillbook: harness error: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 4

    return run


def _reports_dir(args: argparse.Namespace) -> Path:
    """The reports folder as the run wrote it: --reports-dir > $DRILLBOOK_REPORTS_DIR > config."""
    return _config(args).reports_dir


def _history_path(args: argparse.Namespace) -> Path | str:
    """See :func:`drillbook.history.resolve_location`."""
    from drillbook.history import resolve_location

    return resolve_location(getattr(args, "history", None), lambda: _config(args).history_location)


def _config(args: argparse.Namespace) -> Config:
    from drillbook.config import Overrides, load_config

    cached = getattr(args, "_drillbook_config", None)
    if cached is None:
        config_path = getattr(args, "config", None)
        reports_dir = getattr(args, "reports_dir", None)
        cached = load_config(
            Overrides(
                config_path=Path(config_path) if config_path else None,
                reports_dir=Path(reports_dir) if reports_dir else None,
            )
        )
        args._drillbook_config = cached
    return cached


def _current_quarter() -> str:
    from drillbook.clock import get_clock
    from drillbook.report.journal import quarter_of

    return quarter_of(get_clock().wall())


def _since(value: str | None) -> str | None:
    """``--since`` as an ISO date prefix: ``2026-07-01`` or a quarter like ``2026Q3``."""
    if not value:
        return None
    from drillbook.history import quarter_bounds

    text = value.strip()
    if "Q" in text.upper():
        return quarter_bounds(text)[0]
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError:
        raise ConfigError(
            "expected a date like 2026-07-01 or a quarter like 2026Q3",
            source="--since",
            field=value,
        ) from None


@_guarded
def cmd_report(args: argparse.Namespace) -> int:
    from drillbook.history import load_run_journal, sync_reports_dir
    from drillbook.report import write_run_reports
    from drillbook.report.journal import find_run_dir, load_journal

    reports_dir = _reports_dir(args)
    if args.quarter:
        from drillbook.report.quarter import write_quarter_report

        quarter = args.quarter
        if quarter.lower() in ("current", "this", "now"):
            quarter = _current_quarter()
        db = _history_path(args)
        sync_reports_dir(db, reports_dir)
        out = Path(args.out) if args.out else reports_dir
        for path in write_quarter_report(db, quarter, out):
            print(path)
        return 0
    ref = args.run or "latest"
    try:
        run_dir = find_run_dir(reports_dir, ref)
        journal: dict[str, Any] = load_journal(run_dir)
    except ConfigError:
        recorded = load_run_journal(_history_path(args), ref)
        if recorded is None:
            raise
        journal = recorded
        run_dir = reports_dir / ref
    if args.out:
        run_dir = Path(args.out)
    for path in write_run_reports(run_dir, journal, step_summary=args.step_summary):
        print(path)
    return 0


@_guarded
def cmd_trend(args: argparse.Namespace) -> int:
    from drillbook.history import sync_reports_dir, trend
    from drillbook.report.trend import trend_table, write_trend_html

    db = _history_path(args)
    if not args.no_sync:
        sync_reports_dir(db, _reports_dir(args))
    if isinstance(db, Path) and not db.exists():
        raise ConfigError(
            "expected a history database (run drills or `drillbook history import`)", source=str(db)
        )
    series = trend(db, scenario=args.scenario, since=_since(args.since))
    print(trend_table(series, args.quarters))
    from drillbook.runbook.trend import step_trend_table

    steps = step_trend_table(_reports_dir(args))
    if steps:  # runbook-driven drills: each step's duration across drills
        print("\nRunbook steps (duration per drill, oldest first):\n" + steps, end="")
    note = " · ".join(
        x
        for x in (
            f"scenario {args.scenario}" if args.scenario else "",
            f"since {args.since}" if args.since else "",
        )
        if x
    )
    out = Path(args.out) if args.out else _reports_dir(args) / "trend.html"
    print(f"\nwrote {write_trend_html(out, series, title_note=note)}")
    if args.fail_on_regression and any(s.regression for s in series):
        return 1
    return 0


@_guarded
def cmd_history_import(args: argparse.Namespace) -> int:
    from drillbook.history import describe_location, import_files

    db = _history_path(args)
    result = import_files(db, [Path(f) for f in args.files])
    print(
        f"imported {len(result.imported)} run(s), {len(result.already)} already recorded "
        f"into {describe_location(db)}"
    )
    return 0


def _history_usage(args: argparse.Namespace) -> int:
    print("usage: drillbook history import FILES...", file=sys.stderr)
    return 2


def _add_history_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--history",
        metavar="PATH|DSN",
        help="history: a SQLite file or a postgresql:// DSN (default: $DRILLBOOK_HISTORY, "
        "history in drillbook.yaml, or <reports-dir>/history.sqlite)",
    )


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``report``, ``trend`` and ``history`` to drillbook's parser."""
    p = subparsers.add_parser(
        "report",
        help="re-render a run's reports, or write the quarterly DR drill report",
        description="Re-render report.html, summary.md and drills.csv for a run "
        "(run id, run folder, journal.json or 'latest'), or with --quarter write the "
        "quarterly DR drill report (HTML and Markdown).",
    )
    p.add_argument("run", nargs="?", help="run id, folder, journal.json or 'latest' (default)")
    p.add_argument(
        "--quarter", metavar="YYYYQn", help="write the quarterly report, e.g. 2026Q4 or 'current'"
    )
    p.add_argument("--out", metavar="DIR", help="write here instead of the run / reports folder")
    p.add_argument(
        "--step-summary", action="store_true", help="also append summary.md to $GITHUB_STEP_SUMMARY"
    )
    _add_history_option(p)
    p.set_defaults(handler=cmd_report)

    p = subparsers.add_parser(
        "trend",
        help="MTTR/MTTD per scenario and target by quarter, with regression flags",
        description="Print count, pass rate, MTTD and MTTR (mean, p50, p90) and RTA against RTO "
        "per scenario, target and quarter, and write trend.html.",
    )
    p.add_argument("--scenario", help="only this scenario id")
    p.add_argument(
        "--since",
        metavar="DATE",
        help="only drills from this date (2026-07-01) or quarter (2026Q3) on",
    )
    p.add_argument(
        "--out", metavar="FILE", help="trend.html path (default <reports-dir>/trend.html)"
    )
    p.add_argument(
        "--quarters",
        type=int,
        default=4,
        metavar="N",
        help="terminal table: show the last N quarters per series (0: all; trend.html has all)",
    )
    p.add_argument(
        "--no-sync",
        action="store_true",
        help="do not record unrecorded runs found in the reports folder first",
    )
    p.add_argument(
        "--fail-on-regression",
        action="store_true",
        help="exit 1 when any series is flagged as a regression",
    )
    _add_history_option(p)
    p.set_defaults(handler=cmd_trend)

    p = subparsers.add_parser("history", help="manage the run history (SQLite or PostgreSQL)")
    p.set_defaults(handler=_history_usage)
    sub = p.add_subparsers(dest="history_command", metavar="COMMAND")
    imp = sub.add_parser(
        "import",
        help="import journal.json files recorded elsewhere",
        description="Import journal.json files or run folders (CI artifacts, "
        "another machine); idempotent per run id.",
    )
    imp.add_argument("files", nargs="+", metavar="FILE")
    _add_history_option(imp)
    imp.set_defaults(handler=cmd_history_import)

"""CLI subcommands ``runbook import`` and ``runbook trend`` (registered into cli.py's parser).

Exit codes as everywhere: 0 ok, 2 bad input (one line, nothing written).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from drillbook.errors import ConfigError, ScenarioError

__all__ = ["register"]


def _config(args: argparse.Namespace) -> object:
    from drillbook.config import Overrides, load_config

    return load_config(
        Overrides(
            config_path=Path(args.config) if args.config else None,
            reports_dir=Path(args.reports_dir) if args.reports_dir else None,
        ),
        workdir=Path.cwd(),
    )


def cmd_import(args: argparse.Namespace) -> int:
    from drillbook.backends.base import get_registry
    from drillbook.config import Config
    from drillbook.runbook.importer import import_runbook

    if args.fault and not args.target:
        print("drillbook runbook import: --fault needs --target", file=sys.stderr)
        return 2
    cfg = _config(args)
    assert isinstance(cfg, Config)
    registry = get_registry()
    if args.fault and args.fault not in registry.faults:
        known = ", ".join(sorted(registry.faults))
        print(
            f"drillbook: --fault {args.fault!r}: unknown fault; expected one of: {known}",
            file=sys.stderr,
        )
        return 2
    try:
        result = import_runbook(
            Path(args.runbook),
            config=cfg,
            registry=registry,
            fault=args.fault,
            target=args.target,
            out=Path(args.output) if args.output else None,
            scenario_id=args.id,
            force=args.force,
        )
    except (ConfigError, ScenarioError) as exc:
        print(f"drillbook: {exc}", file=sys.stderr)
        return 2
    recovery = result.data["recovery"]
    manual = sum(1 for r in recovery if r["kind"] == "manual")
    print(
        f"wrote {result.path}: scenario {result.scenario_id} ({result.shape} runbook): "
        f"{manual} manual step(s), {len(recovery) - manual} scripted, "
        f"{len(result.data.get('verify', []))} verification probe(s), "
        f"{len(result.data['runbook_import']['rollback'])} rollback step(s) kept for the report"
    )
    for line in result.log:
        print(f"  {line}")
    return 0


def cmd_trend(args: argparse.Namespace) -> int:
    from drillbook.config import Config
    from drillbook.runbook.trend import step_trend_table

    cfg = _config(args)
    assert isinstance(cfg, Config)
    table = step_trend_table(cfg.reports_dir, runbook=args.runbook, last=args.last)
    print(table or f"no drill in {cfg.reports_dir} recorded runbook steps")
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``runbook import`` and ``runbook trend``."""
    p = subparsers.add_parser(
        "runbook",
        help="import a Markdown runbook as a scenario; per-step durations across drills",
        description="drillbook runbook import RUNBOOK.md writes a scenario whose recovery is the "
        "runbook's procedure (numbered steps or sub-headings of Resolution / Step-by-Step "
        "Procedure). A shell block runs in the drill only when marked safe: ```sh drill-safe, "
        "or an HTML comment <!-- drill: run --> on the line before it.",
    )
    sub = p.add_subparsers(dest="runbook_command", metavar="ACTION")
    imp = sub.add_parser("import", help="write a scenario from a runbook")
    imp.add_argument("runbook", metavar="RUNBOOK.md")
    imp.add_argument("--fault", metavar="TYPE", help="inject this fault first (e.g. process.kill)")
    imp.add_argument("--target", metavar="NAME", help="the target (from drillbook.yaml)")
    imp.add_argument("-o", "--output", metavar="PATH", help="default scenarios/<id>.yaml")
    imp.add_argument("--id", help="scenario id (default: from the file name)")
    imp.add_argument("--force", action="store_true", help="replace an existing scenario file")
    imp.set_defaults(handler=cmd_import)
    tr = sub.add_parser("trend", help="each runbook step's duration across drills")
    tr.add_argument("runbook", nargs="?", help="only this runbook (its path as scenarios link it)")
    tr.add_argument("--last", type=int, default=6, metavar="N", help="drills to show (default 6)")
    tr.set_defaults(handler=cmd_trend)

    def usage(args: argparse.Namespace) -> int:
        p.print_help()
        return 2

    p.set_defaults(handler=usage)

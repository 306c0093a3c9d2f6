"""The ``drillbook`` command.

``drillbook run scenarios/a.yaml [b.yaml ...]`` runs those declarative scenarios straight through
the engine, without pytest (:mod:`drillbook.runner`); ``drillbook run`` without scenario files
wraps pytest (``drills/`` by default), which Python drills need. Both record the run the same way
(journal, reports, history, evidence) and return the same exit codes.

Exit codes are the same for every subcommand (CI scripts rely on them): 0 ok, 1 failed, 2 bad
input, 3 aborted, 4 harness error, 5 no drill ran; the table with their meaning is in
:mod:`drillbook.exitcodes`.

Core subcommands live here (run, list, validate, rollback); features add theirs from a
``commands`` module (sandbox, report/trend/history, evidence) so this file stays one concern.
Those modules are imported only when the command line asks for something other than a core
subcommand: a drill's start-up should not pay for the evidence signer's imports.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from drillbook.errors import ConfigError, DrillbookError
from drillbook.exitcodes import (
    EXIT_ABORTED,
    EXIT_CONFIG,
    EXIT_ERROR,
    EXIT_FAILED,
    EXIT_NO_DRILLS,
    EXIT_OK,
    code_for_verdicts,
)
from drillbook.version import __version__

__all__ = [
    "EXIT_ABORTED",
    "EXIT_CONFIG",
    "EXIT_ERROR",
    "EXIT_FAILED",
    "EXIT_NO_DRILLS",
    "EXIT_OK",
    "main",
]

CORE_COMMANDS = frozenset({"run", "list", "validate", "rollback"})
SCENARIO_SUFFIXES = (".yaml", ".yml")
FEATURE_COMMANDS = (
    "drillbook.backends.postgres.sandbox.commands",
    "drillbook.report.commands",
    "drillbook.evidence.commands",
    "drillbook.runbook.commands",
    "drillbook.backends.postgres.commands",
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse exits 2 as well; keep it one line
        self.exit(EXIT_CONFIG, f"{self.prog}: {message}\n")


def _config(args: argparse.Namespace) -> Any:
    from drillbook.config import Overrides, load_config

    return load_config(
        Overrides(
            config_path=Path(args.config) if args.config else None,
            reports_dir=Path(args.reports_dir) if args.reports_dir else None,
        )
    )


def _cmd_list(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from drillbook.backends.base import get_registry
    from drillbook.durations import format_duration
    from drillbook.scenario import load_scenarios

    cfg = _config(args)
    registry = get_registry()
    scenarios = load_scenarios(cfg.scenarios_dir, registry=registry, config=cfg)
    rows = []
    for s in scenarios:
        status = []
        for b in s.backends:
            info = registry.backends.get(b)
            reason = info.available(cfg.backend_settings(b)) if info else "not registered"
            status.append(f"{b}: {'ready' if reason is None else reason[:60]}")
        rows.append(
            [
                s.id,
                s.objectives.severity.value,
                format_duration(s.objectives.rto_s),
                format_duration(s.objectives.rpo_s),
                s.fault.type if s.fault else "-",
                "; ".join(status) or "-",
            ]
        )
    print(
        tabulate(
            rows, headers=["scenario", "sev", "RTO", "RPO", "fault", "backends"], tablefmt="simple"
        )
    )
    if args.verbose:
        print()
        for kind, table in (
            ("faults", registry.faults),
            ("probes", registry.probes),
            ("recovery steps", registry.recoveries),
            ("ledgers", registry.ledgers),
        ):
            print(f"{kind}: " + ", ".join(sorted(table)))
        for name, why in registry.broken.items():
            print(f"backend {name} failed to load: {why}")
    return EXIT_OK


def _cmd_validate(args: argparse.Namespace) -> int:
    from drillbook.scenario import scenario_files

    cfg = _config(args)
    paths = [Path(p) for p in args.paths] or scenario_files(cfg.scenarios_dir)
    ok, invalid = _validate_paths(paths, cfg)
    if not args.quiet:
        print(f"{len(ok)} valid, {invalid} invalid ({cfg.source})")
    return EXIT_CONFIG if invalid else EXIT_OK


def _validate_paths(paths: Sequence[Path], cfg: Any) -> tuple[list[Any], int]:
    """Load and validate scenario files, printing one line per problem to stderr.

    Returns the valid scenarios and how many files were missing or invalid."""
    ok, lines = _check_paths(paths, cfg)
    for line in lines:
        print(line, file=sys.stderr)
    return ok, len(lines)


def _check_paths(paths: Sequence[Path], cfg: Any) -> tuple[list[Any], list[str]]:
    """The valid scenarios, and one line per missing or invalid file."""
    from drillbook.backends.base import get_registry
    from drillbook.scenario import validate_files

    lines = [f"{p}: no such file" for p in paths if not p.is_file()]
    ok, errors = validate_files(
        [p for p in paths if p.is_file()], registry=get_registry(), config=cfg
    )
    return list(ok), lines + [str(err) for err in errors]


def _cmd_rollback(args: argparse.Namespace) -> int:
    from drillbook.rollback import rollback

    cfg = _config(args)
    outcomes = rollback(cfg.intent_ledger, config=cfg, include_live=args.force, only=args.intent)
    return EXIT_OK if all(o.ok for o in outcomes) else EXIT_ERROR


def exit_code_for(journal: dict[str, Any] | None, pytest_code: int) -> int:
    """Map a pytest exit status plus the journal's verdicts to drillbook's exit codes."""
    if pytest_code == 4:  # pytest usage error: our ConfigError surfaces as one
        return EXIT_CONFIG
    if pytest_code == 5:  # no test ran: a run that drilled nothing is not a pass
        return EXIT_NO_DRILLS
    if journal is None:
        return EXIT_OK if pytest_code == 0 else EXIT_ERROR
    code = code_for_verdicts(d.get("verdict") for d in journal.get("drills", []))
    if pytest_code == 2:
        return EXIT_ABORTED
    if code == EXIT_OK and pytest_code == 1:
        return EXIT_FAILED
    return code


def _cmd_run(args: argparse.Namespace) -> int:
    if args.parallel < 1 or (args.parallel > 1 and args.gameday):
        print(
            "drillbook run: --parallel needs N >= 1, and --gameday runs one drill at a time",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    if args.gameday_live is not None and not args.gameday:
        print("drillbook run: --gameday-live needs --gameday", file=sys.stderr)
        return EXIT_CONFIG
    if not args.gameday:
        return _cmd_run_plain(args)
    if args.gameday_live is not None and not all(
        p.endswith(SCENARIO_SUFFIXES) for p in args.paths or ["drills/"]
    ):
        print(
            "drillbook run: --gameday-live needs scenario files (.yaml): on the pytest path the "
            "GameDay runs inside pytest",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    from drillbook.runbook.gameday import GameDay

    args.operator = GameDay()
    live = None
    if args.gameday_live is not None:
        from drillbook.runbook.live import LiveServer

        try:
            live = LiveServer(args.operator.snapshot, args.gameday_live)
        except OSError as exc:
            print(f"drillbook run: --gameday-live {args.gameday_live}: {exc}", file=sys.stderr)
            return EXIT_CONFIG
        print(f"[drillbook] GameDay followed read-only at {live.url}", file=sys.stderr)
    try:
        return _cmd_run_plain(args)
    finally:
        if live is not None:
            live.stop()


def _cmd_run_plain(args: argparse.Namespace) -> int:
    scenario_paths = [p for p in args.paths if p.endswith(SCENARIO_SUFFIXES)]
    if scenario_paths:
        if len(scenario_paths) != len(args.paths) or args.k or args.pytest_args:
            print(
                "drillbook run: give scenario files (.yaml) or pytest paths, not both; -k and "
                "pytest arguments apply to the pytest path only",
                file=sys.stderr,
            )
            return EXIT_CONFIG
        return _run_direct(args, [Path(p) for p in scenario_paths])
    if args.parallel > 1:
        print("drillbook run: --parallel applies to scenario files (.yaml) only", file=sys.stderr)
        return EXIT_CONFIG
    return _run_pytest(args)


def _answers(raw: Sequence[str]) -> dict[str, str]:
    answers: dict[str, str] = {}
    for item in raw:
        name, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--answer: expected STEP=ANSWER, got {item!r}")
        answers[name.strip()] = value.strip()
    return answers


def _as_expected(record: Mapping[str, Any], scenarios: list[Any]) -> str | None:
    """The verdict as the exit code should count it: a scenario that declares ``expect: failed``
    (it proves a blind spot) counts as passed when it fails as meant, and as failed when it
    does not, exactly as the pytest plugin judges it."""
    verdict = record.get("verdict")
    for s in scenarios:
        if s.id == record.get("scenario") and s.expect is not None:
            return "passed" if verdict == s.expect.value else "failed"
    return verdict


def _run_direct(args: argparse.Namespace, paths: list[Path]) -> int:
    """Scenario files through the engine, no pytest (see :mod:`drillbook.runner`).

    The config is read and every scenario validated before the engine is imported: bad input
    is answered (exit 2, one line per problem) before anything could be touched."""
    cfg = _direct_config(args)
    scenarios, lines = _check_paths(paths, cfg)
    for line in lines:
        print(line, file=sys.stderr)
    if lines:
        return EXIT_CONFIG

    from drillbook.watchdog import spare_for

    # Input is good (bad input touches nothing): the first inject's watchdog starts now, so its
    # interpreter starts while this one imports the engine, not while the drill waits to inject.
    spare = spare_for(cfg) if any(s.fault is not None for s in scenarios) else None
    from drillbook.runner import run_scenarios
    from drillbook.session import RunSession

    session = RunSession(lambda: cfg, config=cfg, spare_watchdog=spare)
    outcome = run_scenarios(session, scenarios, parallel=getattr(args, "parallel", 1))
    code = code_for_verdicts(
        _as_expected(r, scenarios) for r in outcome.records if not r.get("dry_run")
    )
    if outcome.interrupted:
        return EXIT_ABORTED
    if code == EXIT_OK and not outcome.evidence_ok:
        return EXIT_FAILED
    return code


def _direct_config(args: argparse.Namespace) -> Any:
    from drillbook.config import Overrides, load_config

    return load_config(
        Overrides(
            config_path=Path(args.config) if args.config else None,
            reports_dir=Path(args.reports_dir) if args.reports_dir else None,
            dry_run=True if args.dry_run else None,
            allow_production=bool(args.allow_production),
            evidence=bool(args.evidence),
            manual_answers=_answers(args.answer or []),
            operator=getattr(args, "operator", None),  # --gameday's console
        ),
        workdir=Path.cwd(),
    )


def _run_pytest(args: argparse.Namespace) -> int:
    from drillbook.backends.base import get_registry
    from drillbook.scenario import scenario_files, validate_files

    cfg = _config(args)
    # Validate before pytest starts: a bad scenario is exit 2 here, not a collection error there.
    _, errors = validate_files(
        scenario_files(cfg.scenarios_dir), registry=get_registry(), config=cfg
    )
    for err in errors:
        print(str(err), file=sys.stderr)
    if errors:
        return EXIT_CONFIG
    cmd = [sys.executable, "-m", "pytest", *(args.paths or ["drills/"])]
    if args.k:
        cmd += ["-k", args.k]
    if args.dry_run:
        cmd.append("--drill-dry-run")
    if args.allow_production:
        cmd.append("--drill-allow-production")
    if args.evidence:
        cmd.append("--drill-evidence")
    if args.config:
        cmd += ["--drill-config", args.config]
    if args.reports_dir:
        cmd += ["--drill-reports", args.reports_dir]
    for answer in args.answer or []:
        cmd += ["--drill-answer", answer]
    if args.gameday:
        cmd.append("--drill-gameday")
    cmd += args.pytest_args
    before = (
        os.path.realpath(cfg.reports_dir / "latest")
        if (cfg.reports_dir / "latest").exists()
        else None
    )
    code = subprocess.call(cmd)
    latest = cfg.reports_dir / "latest"
    journal = None
    if latest.exists() and os.path.realpath(latest) != before:
        try:
            journal = json.loads((latest / "journal.json").read_text())
        except (OSError, ValueError):
            journal = None
    return exit_code_for(journal, code)


def build_parser(features: bool = True) -> argparse.ArgumentParser:
    """The argument parser; ``features=False`` leaves out the feature modules' subcommands."""
    parser = _Parser(prog="drillbook", description="Disaster-recovery drills that run.")
    parser.add_argument("--version", action="version", version=f"drillbook {__version__}")
    parser.add_argument("--config", metavar="PATH", help="drillbook.yaml (default: nearest)")
    parser.add_argument("--reports-dir", metavar="DIR", help="reports folder (default: reports)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser(
        "run",
        help="run drills: scenario files directly, or pytest drills",
        description="drillbook run scenarios/a.yaml [b.yaml ...] runs those scenarios directly "
        "(no pytest); drillbook run [PATH ...] [-k EXPR] [-- PYTEST ARGS] runs pytest drills "
        "(default: drills/); what follows -- is passed to pytest. "
        "Both write the journal, reports and history and exit 0 passed, 1 failed, 2 bad input, "
        "3 aborted, 4 harness error, 5 no drill ran (nothing matched).",
    )
    p.add_argument(
        "paths",
        nargs="*",
        help="scenario files (*.yaml: run without pytest) or pytest paths (default: drills/)",
    )
    p.add_argument("-k", metavar="EXPR", help="select drills, as pytest -k")
    p.add_argument("--dry-run", action="store_true", help="print the plan; touch nothing")
    p.add_argument("--allow-production", action="store_true")
    p.add_argument("--evidence", action="store_true", help="write a signed evidence bundle")
    p.add_argument("--answer", action="append", metavar="STEP=ANSWER", help="answer a manual step")
    p.add_argument(
        "--parallel",
        type=int,
        default=1,
        metavar="N",
        help="scenario files only: run up to N drills at once; two on a common target still run "
        "one after the other",
    )
    p.add_argument(
        "--gameday",
        action="store_true",
        help="walk the people in the room through each manual step: instruction, command, a "
        "clock against the RTO, keys d(one) f(ailed) s(kipped) and a note",
    )
    p.add_argument(
        "--gameday-live",
        type=int,
        metavar="PORT",
        help="also serve the GameDay read-only on 127.0.0.1:PORT (0: any free port)",
    )
    p.set_defaults(handler=_cmd_run)

    p = sub.add_parser("list", help="scenarios with objectives and backend readiness")
    p.add_argument("-v", "--verbose", action="store_true", help="also list every fault/probe/step")
    p.set_defaults(handler=_cmd_list)

    p = sub.add_parser("validate", help="validate scenarios (exit 2 with file:line: field: ...)")
    p.add_argument("paths", nargs="*", help="scenario files (default: every file in scenarios/)")
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(handler=_cmd_validate)

    p = sub.add_parser("rollback", help="revert what a killed run left injected")
    p.add_argument("--force", action="store_true", help="also revert intents of runs still alive")
    p.add_argument("--intent", metavar="ID", help="only this intent")
    p.set_defaults(handler=_cmd_rollback)

    for module_name in FEATURE_COMMANDS if features else ():
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        module.register(sub)
    return parser


def _subcommand(argv: Sequence[str]) -> str | None:
    """The subcommand word, skipping the global options (and their values) before it."""
    skip = False
    for word in argv:
        if skip:
            skip = False
        elif word in ("--config", "--reports-dir"):
            skip = True
        elif word == "--":
            return None
        elif not word.startswith("-"):
            return word
    return None


def _needs_features(argv: Sequence[str]) -> bool:
    """Whether the command line may name a feature's subcommand (or asks for the full help)."""
    sub = _subcommand(argv)
    if sub is not None:
        return sub not in CORE_COMMANDS
    return "--version" not in argv


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    # `drillbook run ... -- ARGS`: everything after the first -- goes to pytest untouched, so
    # run's own options may come after the paths (drillbook run x.yaml --dry-run).
    to_pytest: list[str] = []
    if _subcommand(words) == "run" and "--" in words:
        cut = words.index("--")
        words, to_pytest = words[:cut], words[cut + 1 :]
    parser = build_parser(features=_needs_features(words))
    args = parser.parse_args(words)
    if args.command == "run":
        args.pytest_args = to_pytest
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return EXIT_CONFIG
    try:
        code: int = handler(args)
        return code
    except ConfigError as exc:
        print(f"drillbook: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except DrillbookError as exc:
        print(f"drillbook: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return EXIT_ABORTED


if __name__ == "__main__":
    raise SystemExit(main())

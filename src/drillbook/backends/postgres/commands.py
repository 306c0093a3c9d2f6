"""``drillbook postgres cleanup TARGET``: remove what restores leave behind on a real server.

A restore of a configured server keeps the old data folder aside (``keep_old``, default on):
``<data_dir>.drillbook-old-<UTC stamp>``, as large as the database. This lists them and, with
``--yes``, deletes them; it also settles a server a killed run left holding recovery settings, and
with ``--ledger`` deletes the RPO ledger's rows (``--ledger-table``, default drillbook_ledger).
"""

from __future__ import annotations

import argparse
import re
import shutil
from pathlib import Path

__all__ = ["register"]


def _cleanup(args: argparse.Namespace) -> int:
    from drillbook.backends.base import Context
    from drillbook.backends.postgres.restore import OLD_MARK, settle_config
    from drillbook.backends.postgres.target import pg_target
    from drillbook.config import Overrides, load_config
    from drillbook.errors import DrillbookError

    config = load_config(
        Overrides(config_path=Path(args.config) if getattr(args, "config", None) else None)
    )
    try:
        spec = config.target(args.target)
        ctx = Context(
            params={}, targets=(spec,), workdir=config.workdir, state_dir=config.state_dir
        )
        target = pg_target(ctx)
        if target.is_sandbox:
            print(f"{args.target} is a sandbox target: `drillbook sandbox down` removes it all")
            return 0
        data_dir = target.data_dir()
        old = sorted(data_dir.parent.glob(f"{data_dir.name}{OLD_MARK}*"))
        for path in old:
            print(f"{'removing' if args.yes else 'would remove'} {path}")
            if args.yes:
                shutil.rmtree(path)
        if not old:
            print(f"no old data folders next to {data_dir}")
        if args.yes:
            print(f"{args.target}: {settle_config(config.state_dir, target)}")
        if args.ledger:
            import psycopg

            if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", args.ledger_table):
                print(f"--ledger-table must be a plain identifier, got {args.ledger_table!r}")
                return 2

            with psycopg.connect(target.dsn(), autocommit=True) as conn:
                found = conn.execute("SELECT to_regclass(%s)", (args.ledger_table,)).fetchone()
                if found and found[0]:
                    if args.yes:
                        conn.execute(f"DROP TABLE {args.ledger_table}")
                    print(f"{'dropped' if args.yes else 'would drop'} {args.ledger_table}")
        if not args.yes:
            print("nothing removed: pass --yes")
    except (DrillbookError, OSError) as exc:
        print(f"drillbook postgres cleanup: {exc}")
        return 4
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("postgres", help="PostgreSQL housekeeping on real servers")
    actions = parser.add_subparsers(dest="postgres_action", required=True)
    sub = actions.add_parser(
        "cleanup", help="remove old data folders kept by restores (and the ledger table)"
    )
    sub.add_argument("target", help="a postgres target of drillbook.yaml")
    sub.add_argument("--yes", action="store_true", help="really remove (default: list only)")
    sub.add_argument("--ledger", action="store_true", help="also drop the RPO ledger table")
    sub.add_argument("--ledger-table", default="drillbook_ledger", help="its name")
    sub.set_defaults(handler=_cleanup)

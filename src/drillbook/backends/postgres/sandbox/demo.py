"""The demo data the accidental-deletion drills delete and restore, with a dump to restore from."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from drillbook.backends.postgres.sandbox.nodes import node_port, pg_run
from drillbook.backends.postgres.sandbox.state import (
    REGION_A,
    dsn_for_port,
    load_state,
    update_state,
)
from drillbook.clock import get_clock

__all__ = [
    "DEMO_ROWS",
    "seed_demo_data",
]

#: Rows in the demo table the accidental-deletion drills delete and restore.
DEMO_ROWS = 1000


def seed_demo_data(root: Path) -> None:
    """A small table with known contents, and a logical dump of it (for ``restore_dump``)."""
    import psycopg

    state = load_state(root)
    port = node_port(state, REGION_A)
    with psycopg.connect(dsn_for_port(port), autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS accounts (id int PRIMARY KEY, owner text NOT NULL,"
            " balance numeric(12,2) NOT NULL)"
        )
        conn.execute(
            "INSERT INTO accounts SELECT i, 'owner-' || i, i * 1.5"
            " FROM generate_series(1, %s) AS i ON CONFLICT DO NOTHING",
            (DEMO_ROWS,),
        )
    dump = root / "backups" / "postgres.dump"
    pg_run(state, ["pg_dump", "-d", dsn_for_port(port), "-Fc", "-f", str(dump)])

    def change(data: dict[str, Any]) -> None:
        data["dump"] = {"path": str(dump), "taken_at": get_clock().wall().isoformat()}

    update_state(root, change)

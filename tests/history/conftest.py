"""Fixtures for the history tests: the sandbox's real PostgreSQL, one fresh database per test."""

from __future__ import annotations

import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from drillbook.plugin import needs_backend

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent / "report"))


def _reason() -> str | None:
    from drillbook.backends.postgres import _available

    return _available({})


@pytest.fixture(scope="session")
def pg_port() -> Iterator[int]:
    """The sandbox's primary (region-a): a real PostgreSQL server, trusting local TCP."""
    needs_backend("postgres", _reason())
    from drillbook.backends.postgres.sandbox import down, up
    from drillbook.backends.postgres.sandbox.nodes import node_port

    root = Path(tempfile.mkdtemp(prefix="drillbook-historytest-"))
    state = up(root)
    try:
        yield node_port(state, "region-a")
    finally:
        down(root)


@pytest.fixture
def pg_dsn(pg_port: int) -> Iterator[str]:
    """A ``postgresql://`` DSN naming a database of this test's own, dropped afterwards."""
    import psycopg

    from drillbook.backends.postgres.sandbox.state import dsn_for_port

    name = f"history_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(dsn_for_port(pg_port), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield f"postgresql://postgres@127.0.0.1:{pg_port}/{name}"
    with psycopg.connect(dsn_for_port(pg_port), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

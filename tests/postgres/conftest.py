"""Fixtures for the real-PostgreSQL tests: one sandbox per session, put back after each test."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from drillbook.backends.base import Context
from drillbook.model import TargetSpec
from drillbook.plugin import needs_backend


def _reason() -> str | None:
    from drillbook.backends.postgres import _available

    return _available({})


def new_root() -> Path:
    """A fresh sandbox folder outside pytest's 0700 tmp tree (the server runs as another user)."""
    return Path(tempfile.mkdtemp(prefix="drillbook-pgtest-"))


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Path]:
    needs_backend("postgres", _reason())
    from drillbook.backends.postgres.sandbox import down, up

    root = new_root()
    up(root)
    try:
        yield root
    finally:
        down(root)


@pytest.fixture
def pg(sandbox: Path) -> Iterator[Path]:
    """The session sandbox, reconciled to its canonical shape after the test."""
    yield sandbox
    from drillbook.backends.postgres.sandbox import reconcile

    reconcile(sandbox)


@pytest.fixture
def fresh_root() -> Iterator[Path]:
    """A sandbox root of the test's own (needs the backend); torn down if the test left it up."""
    needs_backend("postgres", _reason())
    from drillbook.backends.postgres.sandbox import down

    root = new_root()
    yield root
    down(root)


CtxFactory = Callable[..., Context]


@pytest.fixture
def ctx_for(pg: Path, tmp_path: Path) -> CtxFactory:
    """``ctx_for("region-a", table="accounts")``: a Context on one sandbox node."""

    def make(node: str, **params: Any) -> Context:
        target = TargetSpec(f"pg-{node}", "postgres", {"sandbox": node, "root": str(pg)})
        return Context(
            params=params, targets=(target,), workdir=tmp_path, state_dir=tmp_path / ".drillbook"
        )

    return make

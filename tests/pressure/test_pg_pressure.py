"""postgres.exhaust_connections and postgres.slow_query on the real sandbox PostgreSQL: the effect
counted in pg_stat_activity / pg_locks by the test's own queries, revert leaves no session of the
holder and no holder process; crash cells (rollback, TTL watchdog)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.pressure.kit import (
    crash_after_inject,
    make_project,
    pending,
    ps_group,
    rollback,
    wait_for,
)

from drillbook.backends.base import Context, get_registry
from drillbook.model import TargetSpec
from drillbook.plugin import needs_backend


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Path]:
    from drillbook.backends.postgres import _available

    needs_backend("postgres", _available({}))
    from drillbook.backends.postgres.sandbox import down, up

    root = Path(tempfile.mkdtemp(prefix="drillbook-pgpressure-"))
    up(root)
    try:
        yield root
    finally:
        down(root)


def _ctx(root: Path, tmp: Path, **params: Any) -> Context:
    target = TargetSpec("pg-primary", "postgres", {"sandbox": "region-a", "root": str(root)})
    return Context(params=params, targets=(target,), workdir=tmp, state_dir=tmp / ".drillbook")


def _sql(root: Path, query: str, params: tuple[Any, ...] = ()) -> Any:
    import psycopg

    from drillbook.backends.postgres.sandbox.state import dsn_for_port, load_state

    port = int(load_state(root)["nodes"]["region-a"]["port"])
    with psycopg.connect(dsn_for_port(port), autocommit=True) as conn:
        row = conn.execute(query, params).fetchone()
    return row[0] if row else None


def _tagged(root: Path, tag: str) -> int:
    return int(
        _sql(root, "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (tag,))
    )


def _build(kind: str, name: str, ctx: Context) -> Any:
    reg = get_registry()
    return {"fault": reg.faults, "probe": reg.probes, "recovery": reg.recoveries}[kind][
        name
    ].factory(ctx)


def test_exhaustion_holds_up_to_the_reserve_and_revert_ends_every_session(
    sandbox: Path, tmp_path: Path
) -> None:
    max_conn = int(_sql(sandbox, "SHOW max_connections"))
    fault = _build("fault", "postgres.exhaust_connections", _ctx(sandbox, tmp_path, reserve=5))
    fault.inject()
    tag = fault.state()["tag"]
    try:
        wait_for(fault.verify_injected, 60, "the sessions to be held")
        clients = int(
            _sql(
                sandbox,
                "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'",
            )
        )
        assert _tagged(sandbox, tag) == fault.state()["count"]
        assert (
            max_conn - 5 - 2 <= clients <= max_conn - 5 + 1
        )  # the reserve is left (others may come and go)
        probe = _build("probe", "postgres.connections", _ctx(sandbox, tmp_path, max_percent=80))
        result = probe.check()
        assert not result.ok and result.value >= max_conn - 7
    finally:
        fault.revert()
    assert _tagged(sandbox, tag) == 0
    assert ps_group(fault.state()["pid"]) == []
    assert fault.verify_reverted()


def test_terminate_sessions_step_ends_the_holder(sandbox: Path, tmp_path: Path) -> None:
    fault = _build("fault", "postgres.exhaust_connections", _ctx(sandbox, tmp_path, reserve=10))
    fault.inject()
    tag = fault.state()["tag"]
    try:
        wait_for(fault.verify_injected, 60, "the sessions to be held")
        step = _build(
            "recovery",
            "postgres.terminate_sessions",
            _ctx(sandbox, tmp_path, idle_for=0, application_name="drillbook-hold-%"),
        )
        assert "terminated" in step.run()
        wait_for(lambda: _tagged(sandbox, tag) == 0, 20, "the sessions to end")
        wait_for(lambda: not ps_group(fault.state()["pid"]), 20, "the holder to notice and exit")
    finally:
        fault.revert()


def test_lock_table_makes_queries_wait_until_revert(sandbox: Path, tmp_path: Path) -> None:
    import psycopg

    fault = _build("fault", "postgres.slow_query", _ctx(sandbox, tmp_path, lock_table="accounts"))
    fault.inject()
    try:
        wait_for(fault.verify_injected, 30, "the lock")
        with pytest.raises(psycopg.errors.QueryCanceled):
            _sql(sandbox, "SET statement_timeout = '500ms'; SELECT count(*) FROM accounts")
    finally:
        fault.revert()
    assert _sql(sandbox, "SELECT count(*) FROM accounts") == 1000
    assert _tagged(sandbox, fault.state()["tag"]) == 0


def test_sleepers_are_active_pg_sleep_backends(sandbox: Path, tmp_path: Path) -> None:
    fault = _build("fault", "postgres.slow_query", _ctx(sandbox, tmp_path, sleepers=3))
    fault.inject()
    tag = fault.state()["tag"]
    try:
        wait_for(
            lambda: (
                _sql(
                    sandbox,
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s"
                    " AND state = 'active' AND query LIKE 'SELECT pg_sleep%%'",
                    (tag,),
                )
                == 3
            ),
            30,
            "three pg_sleep statements",
        )
    finally:
        fault.revert()
    assert _tagged(sandbox, tag) == 0


_SCENARIO = """\
    id: crash
    objectives: {{rto: 5m}}
    probe_interval: 250ms
    stable_for: 250ms
    timeout: 5m
    fault: {{type: postgres.exhaust_connections, target: pg, reserve: 10, duration: 10m, ttl: {ttl}}}
    probes:
      - {{name: alive, type: command, target: host, command: ["true"]}}
    recovery:
      - {{kind: scripted, name: wait, type: command, target: host, command: ["sleep", "120"]}}
    """


@pytest.mark.parametrize("by", ["rollback", "ttl-watchdog"])
def test_pg_crash_cell(sandbox: Path, tmp_path: Path, by: str) -> None:
    targets = f"  pg: {{backend: postgres, sandbox: region-a, root: {sandbox}}}\n"
    root = make_project(
        tmp_path / "p", _SCENARIO.format(ttl="10m" if by == "rollback" else "4s"), targets
    )
    state = crash_after_inject(
        root, lambda s: bool(s.get("tag")) and _tagged(sandbox, s["tag"]) > 0
    )
    assert _tagged(sandbox, state["tag"]) > 0
    if by == "rollback":
        result = rollback(root)
        assert result.returncode == 0, result.stdout + result.stderr
    else:
        wait_for(lambda: not pending(root), 90, "the TTL watchdog to revert")
    assert _tagged(sandbox, state["tag"]) == 0
    assert ps_group(int(state["pid"])) == []


def test_terminate_blocking_sessions_frees_a_waiting_query(sandbox: Path, tmp_path: Path) -> None:
    import threading

    fault = _build("fault", "postgres.slow_query", _ctx(sandbox, tmp_path, lock_table="accounts"))
    fault.inject()
    answer: list[Any] = []
    try:
        wait_for(fault.verify_injected, 30, "the lock")
        waiter = threading.Thread(
            target=lambda: answer.append(_sql(sandbox, "SELECT count(*) FROM accounts"))
        )
        waiter.start()
        wait_for(
            lambda: (
                int(
                    _sql(
                        sandbox,
                        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'",
                    )
                )
                > 0
            ),
            20,
            "a query waiting on the lock",
        )
        step = _build(
            "recovery", "postgres.terminate_sessions", _ctx(sandbox, tmp_path, blocking=True)
        )
        assert step.run().startswith("terminated 1 ")
        waiter.join(timeout=30)
        assert answer == [1000]
    finally:
        fault.revert()
    assert _tagged(sandbox, fault.state()["tag"]) == 0

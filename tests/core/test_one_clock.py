"""Time goes through :mod:`drillbook.clock`: one place to read it, one to fake it.

A module that read ``time`` or ``datetime.now`` itself would keep its own idea of "now" that a
fake clock cannot move, and its waits and stamps would disagree with the drill's. The few
modules left out are named here with the reason, and the reason is checked too."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "drillbook"

#: Programs run as their own process that import nothing from drillbook, by design (they must
#: start without it, or are the system under drill rather than the harness).
STANDALONE = {
    "pressure/hogworker.py",  # run by path, standard library only
    "backends/local/demo_service.py",  # the service a drill kills, not the harness
    "backends/local/supervisor.py",  # the service's restart policy, outlives the harness
    "backends/postgres/connhold.py",  # holds connections for postgres.connection_exhaustion
    "degrade/tcpproxy.py",  # the fault proxies, in their own process
    "degrade/httpproxy.py",
}
#: asyncio code: its waits are the event loop's (``asyncio.sleep`` reads ``time.monotonic``),
#: which a fake clock cannot drive, so its durations stay on the loop's own clock.
ON_THE_LOOP = {"degrade/slo.py"}
CLOCK = {"clock.py"}

_TIME_CALLS = {"monotonic", "perf_counter", "sleep", "time", "monotonic_ns", "perf_counter_ns"}


def _own_time(tree: ast.AST) -> list[int]:
    """Lines that read or wait on time without the clock module."""
    lines = []
    for node in ast.walk(tree):
        names = {alias.name for alias in node.names} if isinstance(node, ast.ImportFrom) else set()
        if isinstance(node, ast.ImportFrom) and node.module == "time" and names & _TIME_CALLS:
            lines.append(node.lineno)
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        func = node.func
        own = isinstance(func.value, ast.Name) and func.value.id == "time"
        if own and func.attr in _TIME_CALLS:
            lines.append(node.lineno)
        if func.attr in {"now", "utcnow", "today"} and "datetime" in ast.unparse(func.value):
            lines.append(node.lineno)
    return lines


def _modules() -> dict[str, ast.AST]:
    return {
        str(path.relative_to(SRC)): ast.parse(path.read_text(), str(path))
        for path in sorted(SRC.rglob("*.py"))
    }


def test_time_is_read_through_the_clock_module() -> None:
    offenders = {
        name: lines
        for name, tree in _modules().items()
        if name not in STANDALONE | ON_THE_LOOP | CLOCK and (lines := _own_time(tree))
    }
    assert not offenders, f"read time through drillbook.clock: {offenders}"


def test_the_modules_left_out_are_standalone_as_claimed() -> None:
    modules = _modules()
    for name in sorted(STANDALONE):
        imported = set()
        for node in ast.walk(modules[name]):
            if isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module)
            elif isinstance(node, ast.Import):
                imported |= {alias.name for alias in node.names}
        drillbook = {m for m in imported if m.split(".")[0] == "drillbook"}
        # The HTTP proxy reuses the TCP proxy's reset: both are the same standalone program.
        assert drillbook <= {"drillbook.degrade.tcpproxy"}, f"{name} imports {drillbook}"


def test_the_check_sees_a_module_that_reads_time_itself() -> None:
    tree = ast.parse(
        "import time\nfrom datetime import datetime, UTC\n"
        "def f():\n    time.sleep(1)\n    return datetime.now(UTC)\n"
    )
    assert sorted(_own_time(tree)) == [4, 5]

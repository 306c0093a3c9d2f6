"""One drill per target across runners that share a PostgreSQL history but not a state folder:
the advisory lock refuses the second, naming the holder, and PostgreSQL frees it when the holder's
process dies. The end-to-end test runs a real ``drillbook run`` against a target another runner
holds, then after that runner is SIGKILLed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from drillbook.locks import Holder, TargetBusy
from drillbook.locks_pg import PgArbiter, lock_key

SRC = Path(__file__).parent.parent.parent / "src"

HOLD = (
    "import sys, time\n"
    "from drillbook.locks import Holder\n"
    "from drillbook.locks_pg import PgArbiter\n"
    "lock = PgArbiter(sys.argv[1]).acquire(sys.argv[2], Holder.me('run-k', 'other-runner',"
    " time.time(), 600))\n"
    "print('held', flush=True)\n"
    "time.sleep(600)\n"
)


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRILLBOOK_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")]))
    return env


@pytest.fixture
def other_runner(pg_dsn: str) -> Iterator[subprocess.Popen[str]]:
    """Another runner's process holding target ``svc`` (its own process, its own session)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, pg_dsn, "svc"], stdout=subprocess.PIPE, text=True, env=_env()
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "held\n"
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait()


def _me(run_id: str) -> Holder:
    return Holder.me(run_id, "drill-b", time.time(), 600)


def test_the_key_is_stable_and_distinct() -> None:
    assert lock_key("svc") == lock_key("svc") != lock_key("svc2")
    assert -(2**63) <= lock_key("db/primary") < 2**63


def test_a_held_target_is_refused_naming_the_holder_and_freed_when_it_is_killed(
    pg_dsn: str, other_runner: subprocess.Popen[str]
) -> None:
    arbiter = PgArbiter(pg_dsn)
    with pytest.raises(TargetBusy) as refused:
        arbiter.acquire("svc", _me("run-b"))
    text = str(refused.value)
    assert f"run run-k (other-runner; pid {other_runner.pid} on {os.uname().nodename}" in text
    assert "since " in text
    free = arbiter.acquire("other-target", _me("run-b"))  # another target is free
    free.release()
    other_runner.send_signal(signal.SIGKILL)
    other_runner.wait()
    # PostgreSQL ends the dead runner's session (its socket closed) and with it the lock; the
    # backend may take a moment to notice, so look a bounded number of times.
    lock = None
    for _ in range(100):
        try:
            lock = arbiter.acquire("svc", _me("run-b"))
            break
        except TargetBusy:
            time.sleep(0.1)
    assert lock is not None, "the lock outlived its holder's process"
    assert lock.taken_over is not None and lock.taken_over.pid == other_runner.pid
    with pytest.raises(TargetBusy, match="run run-b"):
        arbiter.acquire("svc", _me("run-c"))
    lock.release()
    again = arbiter.acquire("svc", _me("run-c"))
    assert again.taken_over is None  # released cleanly: no record left behind
    again.release()


def test_a_lock_whose_session_ended_is_reported_lost(pg_dsn: str) -> None:
    """The server ends the session holding the advisory lock (an admin, a failover, a network
    cut): the lock is free for another runner, and the holder's lock says so (within its ping
    interval), so the drill aborts and reverts."""
    import psycopg

    lock = PgArbiter(pg_dsn).acquire("svc-lost", _me("run-l"))
    try:
        assert lock.lost() is None
        with psycopg.connect(pg_dsn, autocommit=True) as admin:
            ended = admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory'"
                " AND objid = (%s::bigint & 4294967295)::oid AND granted",
                (lock_key("svc-lost"),),
            ).fetchall()
        assert ended == [(True,)]
        deadline = time.monotonic() + 30
        while lock.lost() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        why = lock.lost()
        assert why is not None and "session ended" in why
    finally:
        lock.release()


def test_an_unreachable_lock_server_refuses_the_drill(tmp_path: Path) -> None:
    from drillbook.errors import SafetyError

    arbiter = PgArbiter("postgresql://postgres:${X}@127.0.0.1:1/none")
    with pytest.raises(SafetyError, match="refusing to drill without it"):
        arbiter.acquire("svc", _me("run-b"))


CONFIG = """\
environment: test
history: {dsn}
defaults: {{probe_interval: 50ms, stable_for: 2s, probe_timeout: 1s}}
targets:
  svc:
    backend: local
    command: ["{{python}}", "-m", "drillbook.backends.local.demo_service", "--port", "{{port}}"]
    port: auto
    restart: always
    restart_delay: 300ms
"""
SCENARIO = """\
id: svc_restart
objectives: {rto: 30s, severity: P2}
fault: {type: process.kill, target: svc, signal: KILL}
probes:
  - {name: health, type: http, target: svc}
recovery:
  - {kind: automatic}
"""


def test_a_real_run_with_its_own_state_folder_waits_its_turn(
    pg_dsn: str, other_runner: subprocess.Popen[str], tmp_path: Path
) -> None:
    from drillbook.history import drill_rows

    (tmp_path / "drillbook.yaml").write_text(CONFIG.format(dsn=pg_dsn))
    (tmp_path / "scenarios").mkdir()
    (tmp_path / "scenarios" / "svc_restart.yaml").write_text(SCENARIO)
    cmd = [sys.executable, "-m", "drillbook.cli", "run", "scenarios/svc_restart.yaml"]

    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            cmd, cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=300
        )

    refused = run()
    out = refused.stdout + refused.stderr
    assert refused.returncode == 4, out
    assert (
        f"target 'svc' is being drilled by run run-k (other-runner; pid {other_runner.pid}" in out
    )
    other_runner.send_signal(signal.SIGKILL)
    other_runner.wait()
    _wait_no_advisory_locks(pg_dsn)  # the server saw the socket close and ended the session
    ran = run()
    out = ran.stdout + ran.stderr
    assert ran.returncode == 0, out
    assert f"took over target 'svc' from run run-k (other-runner; pid {other_runner.pid}" in out
    assert sorted(r.verdict for r in drill_rows(pg_dsn)) == ["error", "passed"]


def _wait_no_advisory_locks(dsn: str) -> None:
    import psycopg

    sql = (
        "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database"
        " WHERE l.locktype = 'advisory' AND d.datname = current_database()"
    )
    with psycopg.connect(dsn, autocommit=True) as conn:
        for _ in range(100):
            row = conn.execute(sql).fetchone()
            if row is not None and row[0] == 0:
                return
            time.sleep(0.1)
    raise AssertionError("an advisory lock outlived its holder's process")

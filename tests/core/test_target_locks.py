"""One drill per target: the lock is visible to every process using the state folder, names its
holder when it refuses, and is taken over (saying so) only from a holder that is provably gone.
The end-to-end test runs two real ``drillbook run`` of one scenario at once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict, replace
from pathlib import Path

import pytest

from drillbook.locks import FileArbiter, Holder, TargetBusy


def _holder(run_id: str = "run-a", **kw: object) -> Holder:
    return replace(Holder.me(run_id, "drill-a", time.time(), 600), **kw)  # type: ignore[arg-type]


def test_a_held_target_refuses_a_second_drill_naming_the_holder(tmp_path: Path) -> None:
    arbiter = FileArbiter(tmp_path / "locks")
    first = arbiter.acquire("svc", _holder("run-a"))
    with pytest.raises(TargetBusy) as refused:
        arbiter.acquire("svc", _holder("run-b"))
    text = str(refused.value)
    assert "target 'svc' is being drilled by run run-a" in text
    assert f"pid {os.getpid()} on {os.uname().nodename}" in text and "since " in text
    arbiter.acquire("other", _holder("run-b")).release()  # other targets are free
    first.release()
    again = arbiter.acquire("svc", _holder("run-b"))
    assert again.taken_over is None  # released cleanly: nobody to take over from
    again.release()


def test_a_lock_is_seen_across_processes_and_freed_when_its_holder_dies(tmp_path: Path) -> None:
    code = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from drillbook.locks import FileArbiter, Holder\n"
        "lock = FileArbiter(Path(sys.argv[1])).acquire('svc', Holder.me('run-k', 'd', time.time(), 600))\n"
        "print('held', flush=True)\n"
        "time.sleep(600)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path / "locks")], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "held\n"
        arbiter = FileArbiter(tmp_path / "locks")
        with pytest.raises(TargetBusy, match=f"run run-k .*pid {proc.pid} "):
            arbiter.acquire("svc", _holder("run-b"))
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    lock = arbiter.acquire("svc", _holder("run-b"))  # the kernel freed it with its holder
    assert lock.taken_over is not None and lock.taken_over.run_id == "run-k"
    assert lock.taken_over.pid == proc.pid
    lock.release()


def test_a_holder_on_another_host_is_not_taken_over_before_its_lease_ends(tmp_path: Path) -> None:
    """Its record is there but the flock is free here: a filesystem that does not carry flock
    between hosts. Whether that holder lives cannot be told from here."""
    arbiter = FileArbiter(tmp_path / "locks")
    path = arbiter.path_for("svc")
    path.parent.mkdir()
    remote = _holder("run-r", host="cronjob-pod-7f9", pid=1)
    path.write_text(json.dumps(asdict(remote)))
    with pytest.raises(TargetBusy, match=r"run run-r .*cronjob-pod-7f9.*cannot be proved dead"):
        arbiter.acquire("svc", _holder("run-b"))
    path.write_text(json.dumps(asdict(replace(remote, lease_until=time.time() - 1))))
    lock = arbiter.acquire("svc", _holder("run-b"))
    assert lock.taken_over is not None and lock.taken_over.host == "cronjob-pod-7f9"
    lock.release()


def test_a_target_name_that_is_no_file_name_gets_its_own_lock(tmp_path: Path) -> None:
    arbiter = FileArbiter(tmp_path / "locks")
    a = arbiter.acquire("db/primary", _holder())
    b = arbiter.acquire("db_primary", _holder())  # a different target, a different file
    assert arbiter.path_for("db/primary").parent == tmp_path / "locks"
    a.release()
    b.release()


CONFIG = """\
environment: test
defaults: {probe_interval: 50ms, stable_for: 6s, probe_timeout: 1s}
targets:
  svc:
    backend: local
    command: ["{python}", "-m", "drillbook.backends.local.demo_service", "--port", "{port}"]
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


@pytest.fixture
def service(tmp_path: Path) -> Iterator[object]:
    """The demo service, started here so that neither run owns (and stops) it."""
    from drillbook.backends.local.service import LocalService
    from drillbook.config import Overrides, load_config

    (tmp_path / "drillbook.yaml").write_text(CONFIG)
    (tmp_path / "scenarios").mkdir()
    (tmp_path / "scenarios" / "svc_restart.yaml").write_text(SCENARIO)
    cfg = load_config(Overrides(config_path=tmp_path / "drillbook.yaml"), workdir=tmp_path)
    svc = LocalService(cfg.target("svc"), cfg.state_dir, cfg.workdir)
    svc.start()
    try:
        yield svc
    finally:
        svc.stop()


def _healthy(root: Path) -> bool:
    port = (root / ".drillbook" / "local" / "svc.port").read_text().strip()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as resp:
            return resp.status == 200
    except OSError:
        return False


def test_two_runs_of_one_scenario_at_once_one_drills_the_other_is_refused(
    tmp_path: Path, service: object
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRILLBOOK_")}
    cmd = [sys.executable, "-m", "drillbook.cli", "run", "scenarios/svc_restart.yaml"]
    runs = [
        subprocess.Popen(
            cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        for _ in range(2)
    ]
    outs = [proc.communicate(timeout=300)[0] for proc in runs]
    codes = [proc.returncode for proc in runs]
    assert sorted(codes) == [0, 4], outs
    passed, refused = (outs[0], outs[1]) if codes[0] == 0 else (outs[1], outs[0])
    winner = runs[codes.index(0)]
    journals = [
        json.loads(p.read_text())
        for p in (tmp_path / "reports").glob("*/journal.json")
        if not p.parent.is_symlink()  # reports/latest
    ]
    (ran,) = [j for j in journals if j["drills"] and j["drills"][0]["verdict"] == "passed"]
    assert f"target 'svc' is being drilled by run {ran['run_id']}" in refused, refused
    assert f"pid {winner.pid} on " in refused
    (other,) = [j for j in journals if j is not ran]
    (d,) = other["drills"]
    assert d["verdict"] == "error" and d["reverts"] == []  # refused before anything
    assert "took over" not in passed
    assert _healthy(tmp_path)
    assert (tmp_path / ".drillbook" / "locks" / "svc.lock").read_text() == ""  # released

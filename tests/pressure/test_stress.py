"""stress.cpu / stress.memory / stress.io on this host, with both engines where stress-ng is
installed; the effect is read from ``ps`` and ``/proc`` (the kernel's counters), not from the
fault; revert must leave no process and no file; crash cells for the family."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from tests.pressure.kit import (
    build,
    crash_after_inject,
    make_project,
    pending,
    ps_group,
    rollback,
    wait_for,
)

from drillbook.errors import SafetyError
from drillbook.plugin import needs_backend

ENGINES = ["python", "stress-ng"]


@pytest.fixture(autouse=True)
def _engine_available(request: pytest.FixtureRequest) -> None:
    """The stress-ng cases need stress-ng (scripts/testenv up tools); never a silent skip."""
    callspec = getattr(request.node, "callspec", None)
    if callspec is not None and callspec.params.get("engine") == "stress-ng":
        needs_backend(
            "stress-ng", None if shutil.which("stress-ng") else "stress-ng is not installed"
        )


def _proc_ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:  # gone between ps and this read
        return 0
    return int(fields[11]) + int(fields[12])  # utime + stime


def _group_ticks(pgid: int) -> int:
    """Read the group again on every look: stress-ng forks its worker after its parent starts,
    and a list taken once may hold only the parent, which burns nothing."""
    return sum(_proc_ticks(p) for p, _ in ps_group(pgid))


def _write_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("write_bytes:"):
            return int(line.split()[1])
    return 0


@pytest.mark.parametrize("engine", ENGINES)
def test_memory_hog_is_resident_and_revert_leaves_nothing(tmp_path: Path, engine: str) -> None:
    size = 96 * 1024 * 1024
    fault = build(
        "fault", "stress.memory", {"size": "96MiB", "engine": engine, "duration": 60}, tmp_path
    )
    fault.inject()
    try:
        pgid = fault.state()["pid"]
        wait_for(fault.verify_injected, 30, "the hog to be resident")
        rss_kib = sum(rss for _, rss in ps_group(pgid))  # ps, not drillbook's /proc reader
        assert rss_kib * 1024 >= 0.9 * size
        assert rss_kib * 1024 < 3 * size  # the hog holds what was asked, not more
    finally:
        fault.revert()
    assert ps_group(pgid) == []
    assert fault.verify_reverted()
    fault.revert()  # idempotent


@pytest.mark.parametrize("engine", ENGINES)
def test_cpu_burn_uses_cpu_and_reverts(tmp_path: Path, engine: str) -> None:
    fault = build("fault", "stress.cpu", {"workers": 1, "engine": engine, "duration": 60}, tmp_path)
    fault.inject()
    try:
        pgid = fault.state()["pid"]
        wait_for(fault.verify_injected, 15, "the workers")
        before = _group_ticks(pgid)
        wait_for(lambda: _group_ticks(pgid) >= before + 20, 20, "CPU time to grow")
    finally:
        fault.revert()
    assert ps_group(pgid) == []


@pytest.mark.parametrize("engine", ENGINES)
def test_io_load_writes_and_revert_removes_its_folder(tmp_path: Path, engine: str) -> None:
    fault = build(
        "fault",
        "stress.io",
        {"size": "8MiB", "engine": engine, "duration": 60, "path": "io"},
        tmp_path,
    )
    fault.inject()
    folder = Path(fault.state()["dir"])
    try:
        pgid = fault.state()["pid"]
        wait_for(fault.verify_injected, 15, "the io hog")
        wait_for(
            lambda: sum(_write_bytes(p) for p, _ in ps_group(pgid)) > 4 * 1024 * 1024,
            30,
            "the kernel to count written bytes",
        )
    finally:
        fault.revert()
    assert ps_group(pgid) == []
    assert not folder.exists()


def test_memory_over_the_cap_is_refused_and_starts_nothing(tmp_path: Path) -> None:
    fault = build("fault", "stress.memory", {"size": "3GiB"}, tmp_path)
    with pytest.raises(SafetyError, match="max_hog_bytes"):
        fault.inject()
    assert "pid" not in fault.state()


def test_cpu_workers_over_the_core_count_are_refused(tmp_path: Path) -> None:
    fault = build("fault", "stress.cpu", {"workers": 256}, tmp_path)
    with pytest.raises(SafetyError, match="cores"):
        fault.inject()


_SCENARIO = """\
    id: crash
    objectives: {{rto: 5m}}
    probe_interval: 200ms
    stable_for: 200ms
    timeout: 5m
    fault: {{type: stress.memory, target: host, size: 64MiB, duration: 10m, ttl: {ttl}}}
    probes:
      - {{name: alive, type: command, target: host, command: ["true"]}}
    recovery:
      - {{kind: scripted, name: wait, type: command, target: host, command: ["sleep", "120"]}}
    """


def _resident(state: dict[str, object]) -> bool:
    pid = state.get("pid")
    return isinstance(pid, int) and sum(r for _, r in ps_group(pid)) * 1024 > 50 * 1024 * 1024


def test_crash_then_rollback_ends_the_hog(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p", _SCENARIO.format(ttl="10m"))
    state = crash_after_inject(root, _resident)
    pgid = int(state["pid"])
    assert ps_group(pgid), "the hog should outlive the SIGKILLed harness"
    result = rollback(root)
    assert result.returncode == 0, result.stdout + result.stderr
    assert ps_group(pgid) == []
    assert not pending(root)


def test_crash_then_ttl_watchdog_ends_the_hog(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p", _SCENARIO.format(ttl="4s"))
    state = crash_after_inject(root, _resident)
    pgid = int(state["pid"])
    assert ps_group(pgid), "the hog should outlive the SIGKILLed harness"
    wait_for(lambda: not ps_group(pgid) and not pending(root), 90, "the TTL watchdog to revert")


def test_auto_engine_falls_back_to_the_python_worker_without_stress_ng(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("drillbook.pressure.stress.shutil.which", lambda name: None)
    fault = build("fault", "stress.memory", {"size": "16MiB", "duration": 30}, tmp_path)
    fault.inject()
    try:
        assert fault.state()["engine"] == "python"
        wait_for(fault.verify_injected, 30, "the Python worker's memory")
        assert sum(r for _, r in ps_group(fault.state()["pid"])) * 1024 >= 14 * 1024 * 1024
    finally:
        fault.revert()
    assert ps_group(fault.state()["pid"]) == []

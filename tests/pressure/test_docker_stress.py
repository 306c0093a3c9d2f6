"""docker.stress on the real dockerd: the container's own cgroup counters (memory.usage_in_bytes,
cpuacct.usage, read from the host's cgroup filesystem) show the pressure; revert leaves no hog
process in the container; an over-limit hog ends in an OOM kill the test observes; crash cells.

Run under ``flock /tmp/drillbook-docker.lock``: containers here are named per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.pressure.kit import crash_after_inject, make_project, pending, rollback, wait_for

from drillbook.backends.base import Context, get_registry
from drillbook.errors import SafetyError
from drillbook.model import TargetSpec
from drillbook.plugin import needs_backend

_CG = Path("/sys/fs/cgroup")


@pytest.fixture(scope="module")
def client() -> Any:
    from drillbook.backends.docker.engine import availability, client_for
    from drillbook.backends.docker.images import ensure_image

    needs_backend("docker", availability({}))
    c = client_for({})
    ensure_image(c, "drillbook/busybox:latest")
    return c


@pytest.fixture
def box(client: Any) -> Iterator[Any]:
    name = f"dbt-stress-{uuid.uuid4().hex[:8]}"
    c = client.containers.run(
        "drillbook/busybox:latest",
        ["sleep", "3600"],
        name=name,
        detach=True,
        mem_limit="192m",
        memswap_limit="192m",
        labels={"drillbook.chaos": "allowed", "drillbook.test": "stress"},
    )
    c.reload()
    try:
        yield c
    finally:
        c.remove(force=True)


def _cgroup_file(c: Any, controller: str, name: str) -> Path:
    for path in (
        _CG / controller / "docker" / c.id / name,
        _CG / "system.slice" / f"docker-{c.id}.scope" / name,
    ):
        if path.exists():
            return path
    needs_backend(
        "docker",
        f"the container's {controller} cgroup is not visible on this host (rootless or remote engine)",
    )
    raise AssertionError("unreachable: needs_backend skips or fails")


def _fault(c: Any, tmp: Path, **params: Any) -> Any:
    ctx = Context(
        params=params,
        targets=(TargetSpec("box", "docker", {"container": c.name}),),
        workdir=tmp,
        state_dir=tmp / ".drillbook",
    )
    return get_registry().faults["docker.stress"].factory(ctx)


def _hog_count(c: Any, token: str) -> int:
    rows = c.top(ps_args="-eo pid,args").get("Processes") or []
    return sum(1 for r in rows if token in r[-1])


def test_memory_hog_is_charged_to_the_container_cgroup(box: Any, tmp_path: Path) -> None:
    usage = _cgroup_file(box, "memory", "memory.usage_in_bytes")
    before = int(usage.read_text())
    fault = _fault(box, tmp_path, kind="memory", size="96MiB", duration=120)
    fault.preflight()
    fault.inject()
    token = fault.state()["containers"][0]["marker"]
    try:
        wait_for(fault.verify_injected, 60, "the hog to be resident")
        # charged to the container, not the host: at least 80 of the 96 MiB within the wait
        wait_for(lambda: int(usage.read_text()) - before >= 80 * 1024 * 1024, 30, "the charge")
    finally:
        fault.revert()
    assert _hog_count(box, token) == 0
    wait_for(lambda: int(usage.read_text()) - before < 32 * 1024 * 1024, 30, "the memory back")
    assert fault.verify_reverted()


def test_cpu_hog_burns_the_container_cpu(box: Any, tmp_path: Path) -> None:
    acct = _cgroup_file(box, "cpuacct", "cpuacct.usage")
    fault = _fault(box, tmp_path, kind="cpu", workers=1, duration=120)
    fault.inject()
    token = fault.state()["containers"][0]["marker"]
    try:
        wait_for(fault.verify_injected, 30, "the workers")
        start = int(acct.read_text())
        wait_for(
            lambda: int(acct.read_text()) - start > 300_000_000, 30, "0.3 s of CPU in the cgroup"
        )
    finally:
        fault.revert()
    assert _hog_count(box, token) == 0


def test_io_hog_writes_and_revert_removes_its_file(box: Any, tmp_path: Path) -> None:
    fault = _fault(box, tmp_path, kind="io", size="8MiB", duration=120)
    fault.inject()
    rec = fault.state()["containers"][0]
    try:
        wait_for(
            lambda: box.exec_run(["test", "-e", rec["file"]]).exit_code == 0, 30, "the io file"
        )
    finally:
        fault.revert()
    assert _hog_count(box, rec["marker"]) == 0
    assert box.exec_run(["test", "-e", rec["file"]]).exit_code != 0


def test_a_hog_at_the_limit_is_refused_without_allow_oom(box: Any, tmp_path: Path) -> None:
    fault = _fault(box, tmp_path, kind="memory", memory_percent=100)
    with pytest.raises(SafetyError, match="allow_oom"):
        fault.inject()


def test_over_the_limit_ends_in_an_oom_kill(box: Any, tmp_path: Path) -> None:
    oom = _cgroup_file(box, "memory", "memory.oom_control")

    def kills() -> int:
        for line in oom.read_text().splitlines():
            if line.startswith("oom_kill "):
                return int(line.split()[1])
        needs_backend("docker", "this kernel's memory.oom_control has no oom_kill counter")
        raise AssertionError("unreachable")

    before = kills()
    fault = _fault(box, tmp_path, kind="memory", size="256MiB", allow_oom=True, duration=120)
    fault.inject()
    token = fault.state()["containers"][0]["marker"]
    try:
        wait_for(lambda: kills() > before, 60, "the kernel's OOM kill in the container's cgroup")
        wait_for(lambda: _hog_count(box, token) == 0 or kills() > before, 30)
    finally:
        fault.revert()
    assert _hog_count(box, token) == 0


_SCENARIO = """\
    id: crash
    objectives: {{rto: 5m}}
    probe_interval: 250ms
    stable_for: 250ms
    timeout: 5m
    fault: {{type: docker.stress, target: box, kind: memory, size: 48MiB, duration: 10m, ttl: {ttl}}}
    probes:
      - {{name: alive, type: command, target: host, command: ["true"]}}
    recovery:
      - {{kind: scripted, name: wait, type: command, target: host, command: ["sleep", "120"]}}
    """


@pytest.mark.parametrize("by", ["rollback", "ttl-watchdog"])
def test_docker_crash_cell(box: Any, tmp_path: Path, by: str) -> None:
    targets = f"  box: {{backend: docker, container: {box.name}}}\n"
    root = make_project(
        tmp_path / "p", _SCENARIO.format(ttl="10m" if by == "rollback" else "4s"), targets
    )
    state = crash_after_inject(
        root,
        lambda s: bool(s.get("containers")) and _hog_count(box, s["containers"][0]["marker"]) > 0,
    )
    token = state["containers"][0]["marker"]
    assert _hog_count(box, token) > 0
    if by == "rollback":
        result = rollback(root)
        assert result.returncode == 0, result.stdout + result.stderr
    else:
        wait_for(lambda: not pending(root), 90, "the TTL watchdog to revert")
    assert _hog_count(box, token) == 0

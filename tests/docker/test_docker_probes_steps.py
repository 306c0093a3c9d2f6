"""Docker probes and recovery steps against a real engine: they see and fix what faults did."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from docker_kit import Made, http_status

from drillbook.backends.base import Context, get_registry
from drillbook.errors import RecoveryError
from drillbook.model import ProbeResult


def probe(kind: str, ctx: Context) -> ProbeResult:
    return get_registry().probe(kind).factory(ctx).safe_check()


def step(kind: str, ctx: Context) -> str:
    return get_registry().recovery(kind).factory(ctx).run()


def wait(pred: Callable[[], bool], timeout: float = 20.0) -> bool:
    import time

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.1)
    return pred()


def test_running_probe_follows_the_container(made: Made, ctx_for: Callable[..., Context]) -> None:
    c, _ = made.container()
    ctx = ctx_for(c.name)
    assert probe("docker.running", ctx).ok
    c.pause()
    paused = probe("docker.running", ctx)
    assert not paused.ok and "paused" in paused.detail
    c.unpause()
    c.stop(timeout=1)
    assert not probe("docker.running", ctx).ok
    gone = probe("docker.running", ctx_for("dbt-no-such-container"))
    assert not gone.ok and "no container" in gone.detail


def test_healthy_probe_reads_the_engines_healthcheck(
    made: Made, ctx_for: Callable[..., Context]
) -> None:
    plain, _ = made.container()
    assert "no HEALTHCHECK" in probe("docker.healthy", ctx_for(plain.name)).detail
    check = {"test": ["CMD", "test", "-f", "/www/health"], "interval": 200_000_000, "retries": 1}
    c, _ = made.container(healthcheck=check)
    ctx = ctx_for(c.name)
    assert wait(lambda: probe("docker.healthy", ctx).ok)
    c.exec_run(["rm", "/www/health"])
    assert wait(lambda: "unhealthy" in probe("docker.healthy", ctx).detail)
    assert not probe("docker.healthy", ctx).ok


def test_restart_loop_probe_flags_a_crash_loop_and_clears_after_rollback(
    made: Made, ctx_for: Callable[..., Context]
) -> None:
    c, port = made.container(restart="always")
    ctx = ctx_for(c.name, {"max_restarts": 2, "window": "60s"})
    first = probe("docker.restart_loop", ctx)
    assert first.ok and first.value == 0
    fault = (
        get_registry()
        .fault("docker.bad_image")
        .factory(ctx_for(c.name, {"image": "drillbook/busybox:crashloop"}))
    )
    fault.inject()
    try:
        assert wait(lambda: not probe("docker.restart_loop", ctx).ok, timeout=30)
        looping = probe("docker.restart_loop", ctx)
        assert looping.value > 2 and "deaths" in looping.detail
        detail = step("docker.rollback_image", ctx_for(c.name))
        assert "drillbook/busybox:crashloop -> drillbook/busybox:latest" in detail
        # A re-created container starts with a clean record: the probe passes again at once.
        assert probe("docker.restart_loop", ctx).ok
        assert wait(lambda: http_status(port) == 200)
    finally:
        fault.revert()
    assert fault.verify_reverted()


def test_disk_usage_probe_and_exec_clean_up_step(
    made: Made, ctx_for: Callable[..., Context]
) -> None:
    c, _ = made.container(tmpfs={"/data": "size=2m"})
    ctx = ctx_for(c.name, {"path": "/data", "max_percent": 80})
    assert probe("docker.disk_usage", ctx).ok
    c.exec_run(["sh", "-c", "dd if=/dev/zero of=/data/junk.bin bs=65536 count=40"])
    full = probe("docker.disk_usage", ctx)
    assert not full.ok and full.value > 80
    purge = ["find", "/data", "-type", "f", "-size", "+512k", "-exec", "rm", "-f", "{}", ";"]
    cleanup = ctx_for(c.name, {"command": purge})
    assert "ran" in step("docker.exec", cleanup)
    assert probe("docker.disk_usage", ctx).ok
    with pytest.raises(RecoveryError, match="exited"):
        step("docker.exec", ctx_for(c.name, {"command": "exit 3"}))


def test_start_restart_and_connect_steps(
    made: Made, ctx_for: Callable[..., Context], docker_client: Any
) -> None:
    net = made.network()
    c, port = made.container(network=net, aliases=["edge"])
    c.stop(timeout=1)
    assert "started" in step("docker.start", ctx_for(c.name))
    assert wait(lambda: http_status(port) == 200)
    assert step("docker.start", ctx_for(c.name)) == "already running"
    before = docker_client.api.inspect_container(c.id)["State"]["StartedAt"]
    step("docker.restart", ctx_for(c.name, {"grace": "1s"}))
    assert docker_client.api.inspect_container(c.id)["State"]["StartedAt"] != before
    docker_client.networks.get(net).disconnect(c.id)
    assert wait(lambda: http_status(port) is None)
    detail = step("docker.connect", ctx_for(c.name, {"network": net, "aliases": ["edge"]}))
    assert "connected" in detail
    nets = docker_client.api.inspect_container(c.id)["NetworkSettings"]["Networks"]
    assert "edge" in nets[net]["Aliases"]
    assert wait(lambda: http_status(port) == 200)


def test_compose_up_recreates_a_service_found_by_its_labels(
    made: Made, ctx_for: Callable[..., Context], docker_client: Any
) -> None:
    project = f"dbt{made.tag}"
    labels = {"com.docker.compose.project": project, "com.docker.compose.service": "web"}
    c, port = made.container(labels=labels)
    c.stop(timeout=1)
    target = {"compose": {"project": project, "service": "web"}}
    detail = step("compose.up", ctx_for("web", target=target))
    assert f"re-created {c.name}" in detail
    new = docker_client.api.inspect_container(c.name)
    assert new["Id"] != c.id and new["State"]["Running"]
    assert new["Config"]["Labels"]["com.docker.compose.service"] == "web"
    assert wait(lambda: http_status(port) == 200)


def test_label_selector_resolves_every_match(made: Made, ctx_for: Callable[..., Context]) -> None:
    a, _ = made.container(labels={"app": f"sel{made.tag}"})
    b, _ = made.container(labels={"app": f"sel{made.tag}"})
    made.container(labels={"app": "other"})
    fault = (
        get_registry()
        .fault("docker.pause")
        .factory(ctx_for("sel", target={"labels": f"app=sel{made.tag}"}))
    )
    sel = fault.resolve()
    assert sorted(sel.chosen) == sorted([a.name, b.name]) and sel.candidates == 2


def test_count_narrows_a_label_selector_and_reports_all_candidates(
    made: Made, ctx_for: Callable[..., Context], docker_client: Any
) -> None:
    group = {"app": f"pick{made.tag}"}
    members = [made.container(labels=group)[0] for _ in range(3)]
    ctx = ctx_for("grp", {"count": 1}, target={"labels": f"app=pick{made.tag}"})
    fault = get_registry().fault("docker.pause").factory(ctx)
    sel = fault.resolve()
    assert len(sel.chosen) == 1 and sel.candidates == 3 and sel.seed is not None
    fault.preflight()
    fault.inject()
    try:
        paused = [
            c.name for c in members if docker_client.api.inspect_container(c.id)["State"]["Paused"]
        ]
        assert paused == list(sel.chosen)  # the one resolved is the one injected
    finally:
        fault.revert()
    assert not any(docker_client.api.inspect_container(c.id)["State"]["Paused"] for c in members)

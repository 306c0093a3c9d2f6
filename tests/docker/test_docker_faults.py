"""Each docker fault injects, verifies, and reverts on a real container of a real engine.

Reverts run from a *fresh* fault rebuilt from the JSON of ``state()`` (as ``drillbook rollback``
does after a crash), so every test also checks that state alone is enough.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from docker_kit import Made, http_status

from drillbook.backends.base import Context, Fault, get_registry
from drillbook.errors import FaultError, SafetyError


def wait(pred: Callable[[], bool], timeout: float = 20.0) -> bool:
    import time

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.1)
    return pred()


def build(kind: str, ctx: Context) -> Fault:
    return get_registry().fault(kind).factory(ctx)


def inject(kind: str, ctx: Context) -> tuple[Fault, Fault]:
    """Inject ``kind``; return (the fault, a fresh fault restored from its state's JSON)."""
    fault = build(kind, ctx)
    fault.resolve()
    fault.preflight()
    fault.inject()
    assert wait(fault.verify_injected), f"{kind} did not take effect"
    reborn = build(kind, ctx)
    reborn.load_state(json.loads(json.dumps(fault.state())))
    return fault, reborn


def revert_twice(fault: Fault) -> None:
    fault.revert()
    fault.revert()  # idempotent
    assert fault.verify_reverted()


def state(client: Any, cid: str) -> dict[str, Any]:
    data: dict[str, Any] = client.api.inspect_container(cid)["State"]
    return data


def test_target_without_opt_in_label_is_refused_and_untouched(
    made: Made, ctx_for: Callable[..., Context], docker_client: Any
) -> None:
    c, port = made.container(opt_in=False)
    before = state(docker_client, c.id)
    for kind in ("docker.kill", "docker.stop", "docker.remove", "docker.disconnect"):
        fault = build(kind, ctx_for(c.name))
        with pytest.raises(SafetyError, match=r"opt-in label drillbook\.chaos=allowed"):
            fault.preflight()
    after = state(docker_client, c.id)
    assert after["Running"] and after["StartedAt"] == before["StartedAt"]
    assert after["Pid"] == before["Pid"]
    assert http_status(port) == 200


def test_opt_in_can_be_waived_by_config(made: Made, ctx_for: Callable[..., Context]) -> None:
    c, _ = made.container(opt_in=False)
    fault = build("docker.pause", ctx_for(c.name, settings={"require_opt_in": False}))
    fault.preflight()  # no SafetyError


def test_identity_mismatch_is_refused(
    made: Made, ctx_for: Callable[..., Context], docker_client: Any
) -> None:
    c, _ = made.container()
    info = docker_client.info()
    good = build(
        "docker.kill",
        ctx_for(c.name, settings={"engine_id": info["ID"], "engine_name": info["Name"]}),
    )
    good.preflight()
    for bad in ({"engine_id": "NOT:THE:ENGINE"}, {"engine_name": "some-other-host"}):
        with pytest.raises(SafetyError, match="refusing to inject"):
            build("docker.kill", ctx_for(c.name, settings=bad)).preflight()
    assert state(docker_client, c.id)["Running"]


def test_empty_selection_is_an_error(ctx_for: Callable[..., Context], docker_client: Any) -> None:
    fault = build("docker.kill", ctx_for("x", target={"labels": {"drillbook.test": "no-such"}}))
    with pytest.raises(FaultError, match="no container matches"):
        fault.resolve()


def test_kill_via_engine_stays_down_until_revert(
    made: Made, ctx_for: Callable[..., Context], docker_client: Any
) -> None:
    c, port = made.container(restart="always")
    _fault, reborn = inject("docker.kill", ctx_for(c.name, {"signal": "KILL"}))
    st = state(docker_client, c.id)
    assert not st["Running"] and st["ExitCode"] == 137
    assert http_status(port) is None
    revert_twice(reborn)
    assert wait(lambda: http_status(port) == 200)


def test_kill_via_process_is_restarted_by_the_restart_policy(
    made: Made, ctx_for: Callable[..., Context], docker_client: Any
) -> None:
    c, port = made.container(restart="always")
    pid = state(docker_client, c.id)["Pid"]
    _fault, reborn = inject("docker.kill", ctx_for(c.name, {"via": "process"}))
    assert wait(
        lambda: state(docker_client, c.id)["Running"] and state(docker_client, c.id)["Pid"] != pid
    )
    assert docker_client.api.inspect_container(c.id)["RestartCount"] >= 1
    assert wait(lambda: http_status(port) == 200)
    revert_twice(reborn)


def test_stop_and_revert(made: Made, ctx_for: Callable[..., Context], docker_client: Any) -> None:
    c, port = made.container()
    _fault, reborn = inject("docker.stop", ctx_for(c.name, {"grace": "1s"}))
    assert not state(docker_client, c.id)["Running"]
    revert_twice(reborn)
    assert wait(lambda: http_status(port) == 200)


def test_pause_and_revert(made: Made, ctx_for: Callable[..., Context], docker_client: Any) -> None:
    c, port = made.container()
    _fault, reborn = inject("docker.pause", ctx_for(c.name))
    assert state(docker_client, c.id)["Paused"]
    revert_twice(reborn)
    assert not state(docker_client, c.id)["Paused"]
    assert http_status(port) == 200


def test_restart_and_revert(
    made: Made, ctx_for: Callable[..., Context], docker_client: Any
) -> None:
    c, port = made.container()
    started = state(docker_client, c.id)["StartedAt"]
    _fault, reborn = inject("docker.restart", ctx_for(c.name, {"grace": "1s"}))
    assert state(docker_client, c.id)["StartedAt"] != started
    revert_twice(reborn)
    assert wait(lambda: http_status(port) == 200)


def test_remove_is_reverted_by_recreating_from_inspect(
    made: Made, ctx_for: Callable[..., Context], docker_client: Any
) -> None:
    net = made.network()
    c, port = made.container(network=net, aliases=["web", "www"], environment={"A": "1"})
    _fault, reborn = inject("docker.remove", ctx_for(c.name))
    assert http_status(port) is None
    revert_twice(reborn)
    new = docker_client.api.inspect_container(c.name)
    assert new["Id"] != c.id
    assert "A=1" in new["Config"]["Env"]
    assert {"web", "www"} <= set(new["NetworkSettings"]["Networks"][net]["Aliases"])
    assert new["HostConfig"]["PortBindings"]["8080/tcp"][0]["HostIp"] == "127.0.0.1"
    assert wait(lambda: http_status(port) == 200)


def test_disconnect_partitions_and_revert_restores_aliases(
    made: Made, ctx_for: Callable[..., Context], docker_client: Any
) -> None:
    net = made.network()
    c, port = made.container(network=net, aliases=["api"])
    assert wait(lambda: http_status(port) == 200)
    _fault, reborn = inject("docker.disconnect", ctx_for(c.name, {"network": net}))
    assert net not in docker_client.api.inspect_container(c.id)["NetworkSettings"]["Networks"]
    assert http_status(port) is None  # published port unreachable: a real partition
    revert_twice(reborn)
    nets = docker_client.api.inspect_container(c.id)["NetworkSettings"]["Networks"]
    assert "api" in nets[net]["Aliases"]
    assert wait(lambda: http_status(port) == 200)


def test_fill_disk_fills_a_tmpfs_and_revert_frees_it(
    made: Made, ctx_for: Callable[..., Context], docker_client: Any
) -> None:
    from drillbook.backends.docker.faults_storage import disk_usage

    c, _ = made.container(tmpfs={"/data": "size=4m"})
    before, _, _ = disk_usage(docker_client, c.id, "/data")
    assert before < 10
    _fault, reborn = inject("docker.fill_disk", ctx_for(c.name, {"path": "/data", "percent": 90}))
    during, _, _ = disk_usage(docker_client, c.id, "/data")
    assert during >= 89
    revert_twice(reborn)
    after, _, _ = disk_usage(docker_client, c.id, "/data")
    assert after < 10


def test_fill_disk_of_a_named_volume(
    made: Made, ctx_for: Callable[..., Context], docker_client: Any
) -> None:
    from drillbook.backends.docker.faults_storage import _helper

    vol = docker_client.volumes.create(
        f"dbt-{made.tag}",
        driver_opts={"type": "tmpfs", "device": "tmpfs", "o": "size=2m"},
        labels={"drillbook.test": made.tag},
    )
    try:
        c, _ = made.container(volumes={vol.name: {"bind": "/data", "mode": "rw"}})
        _fault, reborn = inject(
            "docker.fill_disk", ctx_for(c.name, {"volume": vol.name, "percent": 95})
        )
        code, out = _helper(docker_client, vol.name, "ls /fill", {})
        assert code == 0 and "drillbook-fill-" in out
        revert_twice(reborn)
        code, out = _helper(docker_client, vol.name, "ls /fill", {})
        assert "drillbook-fill-" not in out
    finally:
        made.cleanup()
        vol.remove(force=True)


def test_fill_disk_refuses_beyond_the_byte_cap(
    made: Made, ctx_for: Callable[..., Context], docker_client: Any
) -> None:
    c, _ = made.container(tmpfs={"/data": "size=4m"})
    fault = build(
        "docker.fill_disk", ctx_for(c.name, {"percent": 90}, settings={"max_fill_bytes": 1024})
    )
    with pytest.raises(SafetyError, match="max_fill_bytes"):
        fault.inject()
    _code, out = c.exec_run(["sh", "-c", "ls /data"])
    assert "drillbook-fill" not in out.decode()


def test_bad_image_rolls_out_and_revert_restores_the_previous_image(
    made: Made, ctx_for: Callable[..., Context], docker_client: Any
) -> None:
    c, port = made.container(restart="always")
    good_id = docker_client.api.inspect_container(c.id)["Image"]
    assert wait(lambda: http_status(port) == 200)
    _fault, reborn = inject(
        "docker.bad_image", ctx_for(c.name, {"image": "drillbook/busybox:broken"})
    )
    now = docker_client.api.inspect_container(c.name)
    assert now["Image"] != good_id
    assert now["Config"]["Labels"]["drillbook.previous-image"] == "drillbook/busybox:latest"
    assert wait(lambda: http_status(port) == 404)  # the bad release serves no /health
    revert_twice(reborn)
    back = docker_client.api.inspect_container(c.name)
    assert back["Image"] == good_id
    assert "drillbook.previous-image" not in back["Config"]["Labels"]
    assert wait(lambda: http_status(port) == 200)


def test_bad_image_with_a_missing_tag_touches_nothing(
    made: Made, ctx_for: Callable[..., Context], docker_client: Any
) -> None:
    c, port = made.container()
    fault = build("docker.bad_image", ctx_for(c.name, {"image": "example.invalid/nope:1"}))
    with pytest.raises(FaultError, match="not on the engine"):
        fault.preflight()
    assert docker_client.api.inspect_container(c.name)["Id"] == c.id
    assert http_status(port) == 200


def test_remove_keeps_the_environment_out_of_state_and_restores_it(
    made: Made, ctx_for: Callable[..., Context], docker_client: Any
) -> None:
    c, port = made.container(environment={"DB_PASSWORD": "hunter2-not-in-state"})
    fault, reborn = inject("docker.remove", ctx_for(c.name))
    saved = json.dumps(fault.state())
    assert "hunter2-not-in-state" not in saved
    sealed = Path(fault.state()["containers"][0]["inspect"]["DrillbookSealed"])
    assert sealed.is_file() and sealed.stat().st_mode & 0o077 == 0
    revert_twice(reborn)
    env = docker_client.api.inspect_container(c.name)["Config"]["Env"]
    assert "DB_PASSWORD=hunter2-not-in-state" in env
    assert not sealed.exists()  # no copy of the secret outlives the revert
    assert wait(lambda: http_status(port) == 200)

"""The sandbox's containers (prepare/teardown) on a real engine, and how the engine is found."""

from __future__ import annotations

import subprocess
import sys
import uuid
from typing import Any

import pytest
from docker_kit import free_port, http_status

from drillbook.backends.base import Context
from drillbook.backends.docker.engine import availability, describe_endpoint
from drillbook.backends.docker.sandbox import prepare
from drillbook.errors import SafetyError
from drillbook.model import TargetSpec


def sandbox_ctx(target: TargetSpec, environment: str = "sandbox") -> Context:
    return Context(params={}, targets=(target,), environment=environment, settings={})


def test_prepare_runs_the_sandbox_container_on_localhost_and_removes_it(
    docker_client: Any, busybox: str
) -> None:
    tag = uuid.uuid4().hex[:8]
    name, net, port = f"dbt-sb-{tag}", f"dbt-sbnet-{tag}", free_port()
    target = TargetSpec(
        "web",
        "docker",
        {
            "container": name,
            "sandbox": {
                "image": busybox,
                "ports": {"8080/tcp": port},
                "restart": "always",
                "network": net,
                "aliases": ["web"],
                "compose": {"project": f"p{tag}", "service": "web"},
            },
        },
    )
    with prepare(sandbox_ctx(target)):
        data = docker_client.api.inspect_container(name)
        assert data["State"]["Running"]
        bindings = data["HostConfig"]["PortBindings"]["8080/tcp"]
        assert bindings == [{"HostIp": "127.0.0.1", "HostPort": str(port)}]
        labels = data["Config"]["Labels"]
        assert labels["drillbook.sandbox"] == "1" and labels["drillbook.chaos"] == "allowed"
        assert labels["com.docker.compose.project"] == f"p{tag}"
        assert "web" in data["NetworkSettings"]["Networks"][net]["Aliases"]
        assert data["HostConfig"]["RestartPolicy"]["Name"] == "always"
        assert data["HostConfig"]["Init"] is True
        import time

        end = time.monotonic() + 10
        while http_status(port) != 200 and time.monotonic() < end:
            time.sleep(0.1)
        assert http_status(port) == 200
    assert not docker_client.containers.list(all=True, filters={"name": name})
    assert not docker_client.networks.list(names=[net])


def test_prepare_refuses_a_same_named_container_it_did_not_create(
    docker_client: Any, busybox: str
) -> None:
    name = f"dbt-foreign-{uuid.uuid4().hex[:8]}"
    foreign = docker_client.containers.run(busybox, name=name, detach=True)
    try:
        target = TargetSpec("web", "docker", {"container": name, "sandbox": {"image": busybox}})
        with pytest.raises(SafetyError, match="did not create"), prepare(sandbox_ctx(target)):
            pass
        foreign.reload()
        assert foreign.status == "running"
    finally:
        foreign.remove(force=True)


def test_prepare_publishes_on_localhost_only(docker_client: Any, busybox: str) -> None:
    name = f"dbt-open-{uuid.uuid4().hex[:8]}"
    spec = {"image": busybox, "ports": {"8080/tcp": ["0.0.0.0", free_port()]}}
    target = TargetSpec("web", "docker", {"container": name, "sandbox": spec})
    with pytest.raises(SafetyError, match=r"127\.0\.0\.1 only"), prepare(sandbox_ctx(target)):
        pass
    assert not docker_client.containers.list(all=True, filters={"name": name})


def test_prepare_leaves_non_sandbox_environments_alone(docker_client: Any, busybox: str) -> None:
    name = f"dbt-staging-{uuid.uuid4().hex[:8]}"
    target = TargetSpec("web", "docker", {"container": name, "sandbox": {"image": busybox}})
    with prepare(sandbox_ctx(target, environment="staging")):
        assert not docker_client.containers.list(all=True, filters={"name": name})


def test_unreachable_engine_gives_a_one_line_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/drillbook-test.sock")
    reason = availability({})
    assert reason is not None and "\n" not in reason
    assert "unix:///nonexistent/drillbook-test.sock" in reason
    assert "scripts/testenv up docker" in reason


def test_configured_base_url_and_context_win_over_docker_host(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/a.sock")
    settings = {"base_url": "tcp://127.0.0.1:1", "ping_timeout": 1}
    assert describe_endpoint(settings) == "tcp://127.0.0.1:1"
    reason = availability(settings)
    assert reason is not None and "tcp://127.0.0.1:1" in reason
    missing = availability({"context": "drillbook-no-such-context"})
    assert missing is not None and "does not exist" in missing


def test_tls_settings_are_honoured(tmp_path: Any) -> None:
    from drillbook.backends.docker.engine import _tls_config

    for name in ("ca.pem", "cert.pem", "key.pem"):
        (tmp_path / name).write_text("x")
    tls = _tls_config(
        {
            "ca_cert": str(tmp_path / "ca.pem"),
            "client_cert": str(tmp_path / "cert.pem"),
            "client_key": str(tmp_path / "key.pem"),
        }
    )
    assert tls.cert == (str(tmp_path / "cert.pem"), str(tmp_path / "key.pem"))
    assert tls.ca_cert == str(tmp_path / "ca.pem") and tls.verify


def test_registering_the_backend_does_not_import_the_sdk() -> None:
    code = (
        "import sys\n"
        "from drillbook.backends.base import Registry\n"
        "import drillbook.backends.docker as d\n"
        "r = Registry(); d.register(r)\n"
        "assert 'docker.faults' not in r.faults and 'docker.kill' in r.faults\n"
        "print('docker' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "False"


def test_prepare_replaces_a_dead_sessions_leftover_but_not_a_live_sessions_container(
    docker_client: Any, busybox: str
) -> None:
    import os
    import socket

    name = f"dbt-owned-{uuid.uuid4().hex[:8]}"
    host = socket.gethostname()
    target = TargetSpec("web", "docker", {"container": name, "sandbox": {"image": busybox}})
    live = {"drillbook.sandbox": "1", "drillbook.owner": f"{host}:{os.getppid()}"}
    other = docker_client.containers.run(busybox, name=name, detach=True, labels=live)
    try:
        with (
            pytest.raises(SafetyError, match="running drillbook session"),
            prepare(sandbox_ctx(target)),
        ):
            pass
        assert docker_client.api.inspect_container(name)["Id"] == other.id
    finally:
        other.remove(force=True)
    dead_pid = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    dead = {"drillbook.sandbox": "1", "drillbook.owner": f"{host}:{dead_pid}"}
    leftover = docker_client.containers.run(busybox, name=name, detach=True, labels=dead)
    with prepare(sandbox_ctx(target)):
        now = docker_client.api.inspect_container(name)
        assert now["Id"] != leftover.id
        assert now["Config"]["Labels"]["drillbook.owner"] == f"{host}:{os.getpid()}"
    assert not docker_client.containers.list(all=True, filters={"name": name})

"""Docker Compose as teams run it: Debian's real ``docker-compose`` on the test engine.

Each test brings a Compose project up with ``docker-compose -p NAME up -d``, runs a drill with
``drillbook run`` as a user would, and checks what the engine and the run's events show: the
runbook's own commands recover the service, and revert finds a container Compose re-created as
the same target (new ID, same name and labels) instead of calling it gone.
"""

from __future__ import annotations

import io
import json
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from compose_kit import HEALTHCHECK, ComposeProject, one, write_config
from docker_kit import free_port, http_status, make_ctx

from drillbook.backends.base import get_registry


@pytest.fixture
def project(docker_client: Any, busybox: str, tmp_path: Path) -> Iterator[ComposeProject]:
    p = ComposeProject(docker_client, tmp_path, f"shop{uuid.uuid4().hex[:6]}")
    yield p
    p.down()


@pytest.fixture
def shop(docker_client: Any, busybox: str, tmp_path: Path) -> Iterator[ComposeProject]:
    """The project the issue names: ``shop``, leftovers of an earlier run removed first."""
    p = ComposeProject(docker_client, tmp_path, "shop")
    p.down()
    yield p
    p.down()


def web_service(port: str, *, image: str = "drillbook/busybox:latest", extra: str = "") -> str:
    return textwrap.dedent(
        f"""\
        version: "3.7"
        services:
          web:
            image: {image}
            init: true
            ports: ["{port}"]
            labels: [drillbook.chaos=allowed]
            healthcheck: {HEALTHCHECK}
        """
    ) + textwrap.indent(extra, "    ")


def wait_http(port: int, status: int = 200, tries: int = 100) -> bool:
    import time

    for _ in range(tries):
        if http_status(port) == status:
            return True
        time.sleep(0.1)
    return False


def test_kill_then_compose_up_passes_and_revert_reports_the_recreated_container_as_same_target(
    shop: ComposeProject,
) -> None:
    port = free_port()
    shop.write(web_service(f"127.0.0.1:{port}:8080"))
    shop.run("up", "-d")
    (before,) = shop.containers()
    assert before.name == "shop_web_1"
    assert wait_http(port)
    write_config(shop.folder, {"compose": {"project": "shop", "service": "web"}})
    (shop.folder / "scenarios" / "web_down.yaml").write_text(
        textwrap.dedent(
            f"""\
            id: web_down
            objectives: {{rto: 1m, severity: P2}}
            probe_interval: 100ms
            stable_for: 1s
            timeout: 2m
            fault: {{type: docker.kill, target: web, ttl: 5m}}
            probes:
              - {{name: health, type: http, target: web, url: "http://127.0.0.1:{port}/health", timeout: 500ms}}
              - {{name: healthy, type: docker.healthy, target: web}}
            recovery:
              - {{kind: scripted, name: docker-compose up -d web, type: compose.up, target: web}}
            verify:
              - {{name: running, type: docker.running, target: web}}
            """
        )
    )
    code, events, out = shop.drill("web_down")
    assert code == 0, out
    assert one(events, "verdict")["verdict"] == "passed"
    step = one(events, "step", type="compose.up")
    # The real CLI ran, not the recreate-from-inspect fallback.
    assert step["ok"] and step["detail"].startswith(
        "ran docker-compose -p shop -f docker-compose.yml up -d --no-deps --force-recreate"
    ), step
    (after,) = shop.containers()
    assert after.name == "shop_web_1" and after.id != before.id
    revert = one(events, "revert")
    assert revert["ok"] and revert["verified"], revert
    assert revert["detail"] == (
        f"reverted and verified: shop_web_1 (re-created {before.id[:12]} -> {after.id[:12]}): "
        "running, healthy"
    )
    assert http_status(port) == 200


def test_stop_then_the_runbooks_docker_compose_restart_as_a_command_step(
    project: ComposeProject,
) -> None:
    port = free_port()
    project.write(web_service(f"127.0.0.1:{port}:8080"))
    project.run("up", "-d")
    (before,) = project.containers()
    assert wait_http(port)
    write_config(project.folder, {"compose": {"project": project.name, "service": "web"}})
    (project.folder / "scenarios" / "web_stopped.yaml").write_text(
        textwrap.dedent(
            f"""\
            id: web_stopped
            objectives: {{rto: 1m, severity: P2}}
            probe_interval: 100ms
            stable_for: 1s
            timeout: 2m
            fault: {{type: docker.stop, target: web, grace: 1s, ttl: 5m}}
            probes:
              - {{name: health, type: http, target: web, url: "http://127.0.0.1:{port}/health", timeout: 500ms}}
            recovery:
              - {{kind: scripted, name: restart the service, type: command, command: "docker-compose -p {project.name} restart -t 1 web"}}
            """
        )
    )
    code, events, out = project.drill("web_stopped")
    assert code == 0, out
    assert one(events, "step", type="command")["ok"]
    (after,) = project.containers()
    assert after.id == before.id  # restart keeps the container
    revert = one(events, "revert")
    assert revert["ok"] and "(same container): running" in revert["detail"], revert


def build_release(client: Any, tag: str, health: bool) -> str:
    """A "release" built FROM the imported busybox (nothing can be pulled): image ID."""
    steps = "RUN echo ok > /www/health" if health else "RUN rm -f /www/health"
    dockerfile = f"FROM drillbook/busybox:latest\n{steps}\nLABEL drillbook.release={tag}\n"
    image, _ = client.images.build(
        fileobj=io.BytesIO(dockerfile.encode()), tag=tag, rm=True, forcerm=True
    )
    return str(image.id)


@pytest.fixture
def releases(docker_client: Any, project: ComposeProject) -> Iterator[dict[str, str]]:
    repo = f"dbt-{project.name}"
    made = {
        "good": build_release(docker_client, f"{repo}:v1", health=True),
        "bad": build_release(docker_client, f"{repo}:v2", health=False),
        "repo": repo,
    }
    docker_client.api.tag(made["good"], repo, "current", force=True)
    yield made
    project.down()
    for tag in ("v1", "v2", "current"):
        try:
            docker_client.images.remove(f"{repo}:{tag}", force=True)
        except Exception:
            pass


def test_bad_release_rolled_back_by_retagging_the_previous_image_and_up(
    project: ComposeProject, releases: dict[str, str], docker_client: Any
) -> None:
    repo = releases["repo"]
    port = free_port()
    project.write(web_service(f"127.0.0.1:{port}:8080", image=f"{repo}:current"))
    project.run("up", "-d")
    (before,) = project.containers()
    assert wait_http(port)
    write_config(project.folder, {"compose": {"project": project.name, "service": "web"}})
    (project.folder / "scenarios" / "bad_release.yaml").write_text(
        textwrap.dedent(
            f"""\
            id: bad_release
            objectives: {{rto: 1m, severity: P1}}
            probe_interval: 100ms
            stable_for: 1s
            timeout: 2m
            fault: {{type: docker.bad_image, target: web, image: "{repo}:v2", retag: "{repo}:current", grace: 1s, ttl: 5m}}
            probes:
              - {{name: health, type: http, target: web, url: "http://127.0.0.1:{port}/health", timeout: 500ms}}
            recovery:
              - {{kind: scripted, name: retag the previous release, type: command, command: "docker tag {repo}:v1 {repo}:current"}}
              - {{kind: scripted, name: roll the service, type: command, command: "docker-compose -p {project.name} up -d web"}}
            """
        )
    )
    code, events, out = project.drill("bad_release")
    assert code == 0, out
    assert "as " + f"{repo}:current" in one(events, "inject")["plan"]
    # The runbook's fix is what recovered it: Compose re-created the service from the retagged
    # image (drillbook's revert had nothing left to re-create).
    (after,) = project.containers()
    assert after.attrs["Image"] == releases["good"]
    assert docker_client.api.inspect_image(f"{repo}:current")["Id"] == releases["good"]
    assert after.labels.get("com.docker.compose.config-hash")  # Compose's own container again
    revert = one(events, "revert")
    assert revert["ok"] and "re-created" in revert["detail"], revert
    assert after.id[:12] in revert["detail"] and before.id[:12] in revert["detail"]
    assert http_status(port) == 200


def test_up_alone_keeps_a_retagged_bad_release_and_revert_moves_the_tag_back(
    project: ComposeProject, releases: dict[str, str], docker_client: Any
) -> None:
    """Why the runbook retags first: ``up -d`` re-creates from the tag, which points at the bad
    release; drillbook's revert then moves the tag back and restores the previous image."""
    repo = releases["repo"]
    port = free_port()
    project.write(web_service(f"127.0.0.1:{port}:8080", image=f"{repo}:current"))
    project.run("up", "-d")
    assert wait_http(port)
    ctx = make_ctx(
        "web",
        {"image": f"{repo}:v2", "retag": f"{repo}:current", "grace": "1s"},
        target={"compose": {"project": project.name, "service": "web"}},
    )
    fault = get_registry().fault("docker.bad_image").factory(ctx)
    fault.resolve()
    fault.preflight()
    fault.inject()
    assert fault.verify_injected()
    # Revert runs from a fresh fault rebuilt from the JSON of state(), as `drillbook rollback`.
    reborn = get_registry().fault("docker.bad_image").factory(ctx)
    reborn.load_state(json.loads(json.dumps(fault.state())))
    assert docker_client.api.inspect_image(f"{repo}:current")["Id"] == releases["bad"]
    project.run("up", "-d", "web")
    (c,) = project.containers()
    assert c.attrs["Image"] == releases["bad"]
    assert wait_http(port, status=404)
    reborn.revert()
    assert reborn.verify_reverted()
    assert docker_client.api.inspect_image(f"{repo}:current")["Id"] == releases["good"]
    (c,) = project.containers()
    assert c.attrs["Image"] == releases["good"]
    assert wait_http(port)


def test_a_scaled_service_loses_one_replica_and_compose_up_keeps_all_three(
    project: ComposeProject,
) -> None:
    project.write(web_service("127.0.0.1::8080"))
    project.run("up", "-d", "--scale", "web=3")
    replicas = project.containers()
    assert [c.name for c in replicas] == [f"{project.name}_web_{i}" for i in (1, 2, 3)]
    ids = {c.id for c in replicas}
    write_config(
        project.folder,
        {"compose": {"project": project.name, "service": "web"}},
        safety="max_targets: 3, max_percent: 50",
    )
    scenario = textwrap.dedent(
        """\
        id: {id}
        objectives: {{rto: 1m, severity: P2}}
        probe_interval: 100ms
        stable_for: 1s
        timeout: 2m
        fault: {{type: docker.kill, target: web, {pick}ttl: 5m}}
        probes:
          - {{name: all replicas, type: docker.running, target: web}}
        recovery:
          - {{kind: scripted, name: docker-compose up -d web, type: compose.up, target: web}}
        """
    )
    scenarios = project.folder / "scenarios"
    # All three replicas are 100 % of the service: over the 50 % cap, refused before any kill.
    (scenarios / "all_replicas.yaml").write_text(scenario.format(id="all_replicas", pick=""))
    code, events, out = project.drill("all_replicas")
    assert code != 0
    assert "max_percent" in out, out
    assert not [e for e in events if e.get("kind") == "inject"]
    assert {c.id for c in project.containers()} == ids
    assert all(c.status == "running" for c in project.containers())

    (scenarios / "one_replica.yaml").write_text(scenario.format(id="one_replica", pick="pick: 1, "))
    code, events, out = project.drill("one_replica")
    assert code == 0, out
    (killed,) = one(events, "plan")["resolved"]
    assert killed in {c.name for c in replicas}
    step = one(events, "step", type="compose.up")
    assert "--scale web=3 web" in step["detail"], step
    after = project.containers()
    assert [c.name for c in after] == [c.name for c in replicas]
    assert all(c.status == "running" for c in after)
    revert = one(events, "revert")
    assert revert["ok"] and revert["detail"].startswith(
        f"reverted and verified: {killed} (re-created"
    )


@pytest.mark.parametrize(
    ("kind", "params"),
    [
        ("docker.kill", {}),
        ("docker.stop", {"grace": "1s"}),
        ("docker.pause", {}),
        ("docker.restart", {"grace": "1s"}),
        ("docker.remove", {}),
        ("docker.disconnect", {"network": "{project}_default"}),
        ("docker.fill_disk", {"path": "/data", "percent": 90}),
        ("docker.bad_image", {"image": "drillbook/busybox:broken", "grace": "1s"}),
    ],
)
def test_every_fault_reverts_onto_the_container_compose_recreated(
    project: ComposeProject, kind: str, params: dict[str, Any]
) -> None:
    """An operator's ``docker-compose up -d --force-recreate`` mid-drill gives the target a new
    ID; each fault's revert and verify_reverted, run from state() alone, find it by what names it."""
    project.write(web_service("127.0.0.1::8080", extra="tmpfs: [/data:size=8m]\n"))
    project.run("up", "-d")
    (before,) = project.containers()
    params = {
        k: v.format(project=project.name) if isinstance(v, str) else v for k, v in params.items()
    }
    ctx = make_ctx("web", params, target={"compose": {"project": project.name, "service": "web"}})
    registry = get_registry()
    fault = registry.fault(kind).factory(ctx)
    fault.resolve()
    fault.preflight()
    fault.inject()
    assert fault.verify_injected()
    state = json.loads(json.dumps(fault.state()))
    project.run("up", "-d", "--force-recreate", "-t", "1", "web")
    (after,) = project.containers()
    assert after.id != before.id and after.name == before.name
    reborn = registry.fault(kind).factory(ctx)
    reborn.load_state(state)
    reborn.revert()
    assert reborn.verify_reverted()
    assert f"{after.name} (re-created {before.id[:12]} -> {after.id[:12]}): running" in (
        reborn.revert_report()
    )
    after.reload()
    assert after.status == "running"

"""Docker Compose as teams run it: Debian's real ``docker-compose`` on the test engine.

Each test brings a Compose project up with ``docker-compose -p NAME up -d``, runs a drill with
``drillbook run`` as a user would, and checks what the engine and the run's events show: the
runbook's own commands recover the service, and revert finds a container Compose re-created as
the same target (new ID, same name and labels) instead of calling it gone.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from compose_kit import HEALTHCHECK, ComposeProject, one
from docker_kit import http_status, make_ctx

from drillbook.backends.base import get_registry


@pytest.fixture
def project(docker_client: Any, busybox: str, tmp_path: Path) -> Iterator[ComposeProject]:
    p = ComposeProject(docker_client, tmp_path, f"shop{uuid.uuid4().hex[:6]}")
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


EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "compose-shop"


@pytest.fixture
def example(docker_client: Any, busybox: str, tmp_path: Path) -> Iterator[ComposeProject]:
    """docs/examples/compose-shop, set up as docs/docker.md says: the releases built FROM the
    imported busybox, shop/web:current on v1, ``docker-compose -p shop up -d --scale api=3``."""
    folder = tmp_path / "compose-shop"
    shutil.copytree(EXAMPLE, folder)
    p = ComposeProject(docker_client, folder, "shop")
    p.down()
    ids = {}
    for tag in ("v1", "v2"):
        image, _ = docker_client.images.build(
            path=str(folder), dockerfile=f"Dockerfile.{tag}", tag=f"shop/web:{tag}", rm=True
        )
        ids[tag] = str(image.id)
    docker_client.api.tag(ids["v1"], "shop/web", "current", force=True)
    p.run("up", "-d", "--scale", "api=3")
    # A drill refuses a target whose HEALTHCHECK still says "starting" (unhealthy before
    # injection): wait, bounded, for the engine to call every container healthy first.
    assert p.wait_healthy(), [(c.name, c.attrs["State"].get("Health")) for c in p.containers("web")]
    p.releases = ids
    yield p
    p.down()
    for tag in ("v1", "v2", "current"):
        with contextlib.suppress(Exception):
            docker_client.images.remove(f"shop/web:{tag}", force=True)


def test_kill_then_compose_up_passes_and_revert_reports_the_recreated_container_as_same_target(
    example: ComposeProject,
) -> None:
    """The issue's drill, from the docs' example: Compose re-creates web (new ID, same name)
    and revert calls it the same, healthy target instead of "no longer exists"."""
    (before,) = example.containers("web")
    assert before.name == "shop_web_1"
    assert wait_http(18555)
    code, events, out = example.drill("web_down")
    assert code == 0, out
    assert one(events, "verdict")["verdict"] == "passed"
    step = one(events, "step", type="compose.up")
    # The real CLI ran, not the recreate-from-inspect fallback.
    assert step["ok"] and step["detail"] == (
        "ran docker-compose -p shop -f docker-compose.yml up -d --no-deps --force-recreate "
        "--scale web=1 web"
    ), step
    (after,) = example.containers("web")
    assert after.name == "shop_web_1" and after.id != before.id
    revert = one(events, "revert")
    assert revert["ok"] and revert["verified"], revert
    assert revert["detail"] == (
        f"reverted and verified: shop_web_1 (re-created {before.id[:12]} -> {after.id[:12]}): "
        "running, healthy"
    )
    assert http_status(18555) == 200


def test_stop_then_the_runbooks_docker_compose_restart(example: ComposeProject) -> None:
    (before,) = example.containers("web")
    assert wait_http(18555)
    code, events, out = example.drill("web_stopped")
    assert code == 0, out
    assert one(events, "step", type="command")["ok"]
    (after,) = example.containers("web")
    assert after.id == before.id  # restart keeps the container
    revert = one(events, "revert")
    assert revert["ok"] and "shop_web_1 (same container): running" in revert["detail"], revert


def test_bad_release_rolled_back_by_retagging_the_previous_image_and_up(
    example: ComposeProject, docker_client: Any
) -> None:
    releases = example.releases
    (before,) = example.containers("web")
    assert wait_http(18555)
    code, events, out = example.drill("bad_release")
    assert code == 0, out
    assert "as shop/web:current" in one(events, "inject")["plan"]
    # The runbook's fix is what recovered it: Compose re-created the service from the retagged
    # image, so drillbook's revert had nothing left to re-create.
    (after,) = example.containers("web")
    assert after.attrs["Image"] == releases["v1"]
    assert docker_client.api.inspect_image("shop/web:current")["Id"] == releases["v1"]
    assert after.labels.get("com.docker.compose.config-hash")  # Compose's own container again
    revert = one(events, "revert")
    assert revert["ok"], revert
    assert (
        f"shop_web_1 (re-created {before.id[:12]} -> {after.id[:12]}): running"
        in (revert["detail"])
    )
    assert http_status(18555) == 200


def test_one_of_three_replicas_killed_and_scaled_back_the_whole_service_is_refused(
    example: ComposeProject,
) -> None:
    replicas = example.containers("api")
    assert [c.name for c in replicas] == ["shop_api_1", "shop_api_2", "shop_api_3"]
    ids = {c.id for c in replicas}
    # Without count the target is all three replicas: 100 % is over safety.max_percent (50).
    scenarios = example.folder / "scenarios"
    whole = (scenarios / "api_replica_lost.yaml").read_text().replace("count: 1, ", "")
    (scenarios / "api_all_replicas.yaml").write_text(
        whole.replace("id: api_replica_lost", "id: api_all_replicas")
    )
    code, events, out = example.drill("api_all_replicas")
    assert code != 0
    assert "max_percent" in out, out
    assert not [e for e in events if e.get("kind") == "inject"]
    assert {c.id for c in example.containers("api")} == ids
    assert all(c.status == "running" for c in example.containers("api"))

    code, events, out = example.drill("api_replica_lost")
    assert code == 0, out
    (killed,) = one(events, "plan")["resolved"]
    assert killed in {c.name for c in replicas}
    after = example.containers("api")
    assert [c.name for c in after] == [c.name for c in replicas]
    assert all(c.status == "running" for c in after)
    revert = one(events, "revert")
    assert revert["ok"] and f"{killed} (same container): running" in revert["detail"], revert


def test_compose_up_keeps_the_replica_count_of_a_scaled_service(example: ComposeProject) -> None:
    """Compose v1's ``up SERVICE`` without ``--scale`` scales back to one replica; the step
    passes the count the service has, so the drill does not remove replicas it never touched."""
    from drillbook.backends.docker.recovery import ComposeUpStep

    ctx = make_ctx("api", target={"compose": {"project": "shop", "service": "api"}})
    detail = ComposeUpStep(ctx).run()
    assert detail.endswith("--scale api=3 api"), detail
    after = example.containers("api")
    assert [c.name for c in after] == ["shop_api_1", "shop_api_2", "shop_api_3"]
    assert all(c.status == "running" for c in after)


def test_up_alone_keeps_a_retagged_bad_release_and_revert_moves_the_tag_back(
    example: ComposeProject, docker_client: Any
) -> None:
    """Why the runbook retags first: ``up -d`` re-creates from the tag, which points at the bad
    release; drillbook's revert then moves the tag back and restores the previous image."""
    releases = example.releases
    assert wait_http(18555)
    ctx = make_ctx(
        "web",
        {"image": "shop/web:v2", "retag": "shop/web:current", "grace": "1s"},
        target={"compose": {"project": "shop", "service": "web"}},
    )
    fault = get_registry().fault("docker.bad_image").factory(ctx)
    fault.resolve()
    fault.preflight()
    fault.inject()
    assert fault.verify_injected()
    # Revert runs from a fresh fault rebuilt from the JSON of state(), as `drillbook rollback`.
    reborn = get_registry().fault("docker.bad_image").factory(ctx)
    reborn.load_state(json.loads(json.dumps(fault.state())))
    assert docker_client.api.inspect_image("shop/web:current")["Id"] == releases["v2"]
    example.run("up", "-d", "web")
    (c,) = example.containers("web")
    assert c.attrs["Image"] == releases["v2"]
    assert wait_http(18555, status=404)
    reborn.revert()
    assert reborn.verify_reverted()
    assert docker_client.api.inspect_image("shop/web:current")["Id"] == releases["v1"]
    (c,) = example.containers("web")
    assert c.attrs["Image"] == releases["v1"]
    assert wait_http(18555)


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

"""Helpers for the docker backend's tests: real containers made on the spot, host-side HTTP.

Every container a test makes carries a per-test label and is removed by that label afterwards,
including containers a fault re-created under the same name.
"""

from __future__ import annotations

import contextlib
import socket
import tempfile
import urllib.error
import urllib.request
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from drillbook.backends.base import Context
from drillbook.model import TargetSpec

OPT_IN = {"drillbook.chaos": "allowed"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def http_status(port: int, path: str = "/health") -> int | None:
    """Status code from the host (busybox wget segfaults inside containers), None if unreachable."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as resp:
            code: int = resp.status
            return code
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


class Made:
    """One test's containers and networks, cleaned up by label."""

    def __init__(self, client: Any, image: str) -> None:
        self.client = client
        self.image = image
        self.tag = uuid.uuid4().hex[:10]
        self.networks: list[Any] = []

    def network(self) -> str:
        net = self.client.networks.create(
            f"dbt-{self.tag}-{len(self.networks)}", labels={"drillbook.test": self.tag}
        )
        self.networks.append(net)
        return str(net.name)

    def container(
        self,
        *,
        opt_in: bool = True,
        restart: str = "no",
        network: str | None = None,
        aliases: list[str] | None = None,
        labels: Mapping[str, str] | None = None,
        image: str | None = None,
        **kwargs: Any,
    ) -> tuple[Any, int]:
        """Run an httpd container published on a free 127.0.0.1 port: (container, port)."""
        port = free_port()
        all_labels = {"drillbook.test": self.tag, **(OPT_IN if opt_in else {}), **(labels or {})}
        name = f"dbt-{self.tag}-{uuid.uuid4().hex[:6]}"
        c = self.client.containers.create(
            image or self.image,
            name=name,
            labels=all_labels,
            ports={"8080/tcp": ("127.0.0.1", port)},
            restart_policy={"Name": restart},
            network=network,
            **kwargs,
        )
        if network and aliases:
            net = self.client.networks.get(network)
            net.disconnect(c.id)
            net.connect(c.id, aliases=aliases)
        c.start()
        c.reload()
        return c, port

    def cleanup(self) -> None:
        for c in self.client.containers.list(
            all=True, filters={"label": f"drillbook.test={self.tag}"}
        ):
            c.remove(force=True)
        for net in self.networks:
            with contextlib.suppress(Exception):
                net.remove()


def make_ctx(
    name: str,
    params: Mapping[str, Any] | None = None,
    *,
    settings: Mapping[str, Any] | None = None,
    target: Mapping[str, Any] | None = None,
) -> Context:
    return Context(
        params=dict(params or {}),
        targets=(TargetSpec(name, "docker", dict(target or {"container": name})),),
        settings=dict(settings or {}),
        # Sealed inspects (docker.remove, docker.bad_image) go here, not into the repository.
        state_dir=STATE_DIR,
    )


STATE_DIR = Path(tempfile.gettempdir()) / "drillbook-docker-tests" / ".drillbook"

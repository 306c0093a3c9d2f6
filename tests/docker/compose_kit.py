"""A real Compose project for the docker tests: Debian's ``docker-compose`` on the test engine.

The project lives in a temporary folder (docker-compose.yml, drillbook.yaml, scenarios/), is
brought up with ``docker-compose -p NAME up -d`` as a team would, and is taken down afterwards
(``down``, then any container still labelled with the project, re-created ones included).
Ports are published on 127.0.0.1 only.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from drillbook.plugin import needs_backend

PROJECT = "com.docker.compose.project"
SERVICE = "com.docker.compose.service"

#: Why a HEALTHCHECK on a file rather than an HTTP request: busybox wget segfaults in containers.
HEALTHCHECK = "{test: [CMD, test, -f, /www/health], interval: 1s, retries: 2}"


def compose_binary() -> str:
    """Debian's docker-compose (1.29.2), or skip/fail through DRILLBOOK_REQUIRE_BACKENDS."""
    found = shutil.which("docker-compose")
    needs_backend(
        "docker",
        None
        if found
        else "docker-compose is not installed (scripts/testenv up docker installs Debian's)",
    )
    assert found is not None
    return found


class ComposeProject:
    """One Compose project in ``folder``; every command is bounded."""

    def __init__(self, client: Any, folder: Path, name: str) -> None:
        self.client = client
        self.folder = folder
        self.name = name
        self.binary = compose_binary()
        #: tag -> image ID of the releases a test built for the project
        self.releases: dict[str, str] = {}

    def write(self, compose_yaml: str) -> None:
        (self.folder / "docker-compose.yml").write_text(compose_yaml)

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [self.binary, "-p", self.name, *args],
            cwd=self.folder,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        assert proc.returncode == 0, f"docker-compose {' '.join(args)}: {proc.stderr[-600:]}"
        return proc

    def containers(self, service: str = "web") -> list[Any]:
        """The service's containers (all states), sorted by name."""
        filters = {"label": [f"{PROJECT}={self.name}", f"{SERVICE}={service}"]}
        found = self.client.containers.list(all=True, filters=filters)
        return sorted(found, key=lambda c: str(c.name))

    def wait_healthy(self, timeout_s: float = 120.0) -> bool:
        """True once every container of the project that has a HEALTHCHECK reports healthy."""
        import time

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            states = [
                c.attrs["State"].get("Health", {}).get("Status")
                for c in self.client.containers.list(filters={"label": f"{PROJECT}={self.name}"})
            ]
            if states and all(s in (None, "healthy") for s in states):
                return True
            time.sleep(0.5)
        return False

    def host_port(self, container: Any) -> int:
        container.reload()
        binding = container.attrs["NetworkSettings"]["Ports"]["8080/tcp"][0]
        assert binding["HostIp"] == "127.0.0.1"
        return int(binding["HostPort"])

    def down(self) -> None:
        subprocess.run(
            [self.binary, "-p", self.name, "down", "-v", "--remove-orphans", "-t", "1"],
            cwd=self.folder,
            capture_output=True,
            timeout=120,
            check=False,
        )
        for c in self.client.containers.list(all=True, filters={"label": f"{PROJECT}={self.name}"}):
            c.remove(force=True)

    def drill(self, scenario: str, *extra: str) -> tuple[int, list[dict[str, Any]], str]:
        """``drillbook run scenarios/SCENARIO.yaml`` in the project folder, as a user runs it:
        (exit status, the run's events, output)."""
        reports = self.folder / "reports"
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "drillbook.cli",
                "--config",
                str(self.folder / "drillbook.yaml"),
                "--reports-dir",
                str(reports),
                "run",
                f"scenarios/{scenario}.yaml",
                *extra,
            ],
            cwd=self.folder,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
            env={**os.environ, "DRILLBOOK_NO_WATCHDOG": "1"},
        )
        runs = sorted(p for p in reports.iterdir() if p.is_dir()) if reports.is_dir() else []
        events: list[dict[str, Any]] = []
        if runs:
            with open(runs[-1] / "events.jsonl", encoding="utf-8") as fh:
                events = [json.loads(line) for line in fh if line.strip()]
        return proc.returncode, events, proc.stdout + proc.stderr


def one(events: list[dict[str, Any]], kind: str, **match: Any) -> dict[str, Any]:
    """The single event of ``kind`` (matching ``match``) in a run's events."""
    found = [
        e for e in events if e.get("kind") == kind and all(e.get(k) == v for k, v in match.items())
    ]
    assert len(found) == 1, f"{kind} {match}: {found or [e.get('kind') for e in events]}"
    return found[0]

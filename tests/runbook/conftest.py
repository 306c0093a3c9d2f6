"""Fixtures for the runbook tests: a work folder with a drillbook.yaml whose targets are real
(the local backend's demo service; the PostgreSQL sandbox where a test asks for it)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
SAMPLES = Path(__file__).resolve().parent / "samples"

CONFIG = """\
environment: test
defaults: {probe_interval: 50ms, stable_for: 300ms, probe_timeout: 1s}
targets:
  demo-service:
    backend: local
    command: ["{python}", "-m", "drillbook.backends.local.demo_service", "--port", "{port}"]
    port: auto
    health: /health
    restart: always
    restart_delay: 300ms
  pg-primary: {backend: postgres, sandbox: region-a}
"""


def drillbook(
    cwd: Path, *args: str, timeout: float = 300, env: dict[str, str] | None = None, **kw: Any
) -> subprocess.CompletedProcess[str]:
    """The real command, in its own session: no controlling terminal, as in CI."""
    env = {**os.environ, **(env or {}), "PYTHONPATH": str(REPO / "src")}
    return subprocess.run(
        [sys.executable, "-m", "drillbook.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        **kw,
    )


def journal(root: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((root / "reports" / "latest" / "journal.json").read_text())
    return data


@pytest.fixture
def work() -> Iterator[Path]:
    """A work folder with the config and the sample runbooks under docs/runbooks/. Outside
    pytest's 0700 tmp tree: the PostgreSQL sandbox's server runs as another user."""
    root = Path(tempfile.mkdtemp(prefix="drillbook-rbtest-"))
    os.chmod(root, 0o755)
    (root / "drillbook.yaml").write_text(CONFIG)
    (root / "scenarios").mkdir()
    shutil.copytree(SAMPLES, root / "docs" / "runbooks")
    try:
        yield root
    finally:
        drillbook(root, "sandbox", "down", timeout=120)
        shutil.rmtree(root, ignore_errors=True)

"""Fixtures for the monitoring backend's tests: the real Prometheus, Alertmanager and
Pushgateway of `scripts/testenv up monitoring`. Tests that make alerts fire hold
/tmp/drillbook-monitoring.lock (run them under flock), because the Alertmanager webhook port is
one per machine."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from monitoring_kit import dead_port

from drillbook.plugin import needs_backend


@pytest.fixture(scope="session")
def monitoring() -> dict[str, str]:
    import os

    from drillbook.backends.monitoring import _available

    needs_backend("monitoring", _available({}))
    keys = (
        "DRILLBOOK_PROMETHEUS_URL",
        "DRILLBOOK_ALERTMANAGER_URL",
        "DRILLBOOK_PUSHGATEWAY_URL",
        "DRILLBOOK_PROMETHEUS_SD_DIR",
        "DRILLBOOK_ALERT_RECEIVER",
    )
    return {k: os.environ.get(k, "") for k in keys}


@pytest.fixture
def dead_target(monitoring: dict[str, str]) -> Iterator[Callable[[], str]]:
    """``make()`` registers a scrape target nobody answers (DrillbookServiceDown fires for it
    within seconds) and returns its ``target`` label; removed at the end of the test."""
    folder = Path(monitoring["DRILLBOOK_PROMETHEUS_SD_DIR"])
    made: list[Path] = []

    def make() -> str:
        name = f"test-{uuid.uuid4().hex[:8]}"
        path = folder / f"{name}.json"
        path.write_text(
            json.dumps([{"targets": [f"127.0.0.1:{dead_port()}"], "labels": {"target": name}}])
        )
        made.append(path)
        return name

    yield make
    for path in made:
        path.unlink(missing_ok=True)

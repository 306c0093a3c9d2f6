"""The sandbox app's ``/metrics`` (Prometheus text format, prometheus-client).

What a team's exporters would tell its Prometheus about the sandbox: HTTP requests by code and
their duration, the standby's replication lag (the postgres_exporter's usual query: 0 while the
standby has replayed all it received, else the age of the last replayed transaction), the free
share of the sandbox's disk, and the process metrics. Read at scrape time, so a scrape of a
sandbox whose standby is down says so (no lag sample) rather than repeating a stale value.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["SandboxMetrics"]

_LAG_SQL = (
    "SELECT CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0"
    " ELSE COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 0) END"
)


class SandboxMetrics:
    def __init__(self, root: Path) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector

        self.root = root
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        self.requests = Counter(
            "drillbook_http_requests",
            "HTTP requests served",
            ["path", "code"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "drillbook_http_request_duration_seconds",
            "HTTP request duration",
            registry=self.registry,
        )
        self.registry.register(_Live(root))

    def observe(self, path: str, code: int, seconds: float) -> None:
        self.requests.labels(path, str(code)).inc()
        self.duration.observe(seconds)

    def render(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class _Live:
    """A custom collector: values read from the sandbox when Prometheus scrapes."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        from drillbook.backends.postgres.sandbox.state import dsn_for_port, load_state

        lag = GaugeMetricFamily(
            "drillbook_pg_replication_lag_seconds",
            "How far the standby's replay trails what it received (0: caught up)",
            labels=["standby"],
        )
        try:
            nodes = load_state(self.root)["nodes"]
        except Exception:
            nodes = {}
        for name, node in nodes.items():
            if not str(name).startswith("region-") or name == "region-a":
                continue
            try:
                import psycopg

                with psycopg.connect(dsn_for_port(int(node["port"]), timeout_s=1)) as conn:
                    if conn.execute("SELECT pg_is_in_recovery()").fetchone() != (True,):
                        continue
                    row = conn.execute(_LAG_SQL).fetchone()
                lag.add_metric([str(name)], float(row[0]) if row else 0.0)
            except Exception:
                continue  # no sample: a down standby is the ServiceDown rule's business
        yield lag
        disk = GaugeMetricFamily(
            "drillbook_disk_free_ratio", "Free share of the sandbox's file system", labels=["path"]
        )
        usage = shutil.disk_usage(self.root)
        disk.add_metric([str(self.root)], usage.free / usage.total if usage.total else 0.0)
        yield disk

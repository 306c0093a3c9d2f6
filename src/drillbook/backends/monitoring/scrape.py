"""Where a target's ``/metrics`` is, so a drill can register it with Prometheus (file_sd).

The sandbox's ports are chosen at run time, so Prometheus cannot be told them in advance: the
alert drill writes ``<file_sd_dir>/drillbook-<target>.json`` (``[{"targets": ["127.0.0.1:PORT"],
"labels": {"target": NAME}}]``) and removes it at the end. A target may name its endpoint itself
(``metrics: http://host:port/metrics`` in drillbook.yaml); drillbook's own sandbox targets are
resolved from their state files. A team whose Prometheus already scrapes its services needs none
of this: it leaves ``alerts.scrape`` out.
"""

from __future__ import annotations

from drillbook.config import Config
from drillbook.errors import ConfigError
from drillbook.wiring import context_for

__all__ = ["metrics_url"]


def metrics_url(config: Config, name: str) -> str:
    target = config.target(name)
    explicit = target.params.get("metrics")
    if explicit:
        return str(explicit)
    if target.backend == "local":
        from drillbook.backends.local.service import LocalService

        return LocalService(target, config.state_dir, config.workdir).url("/metrics")
    if target.backend == "postgres" and target.params.get("sandbox") == "app":
        from drillbook.backends.postgres.sandbox.state import load_state
        from drillbook.backends.postgres.target import sandbox_root

        root = sandbox_root(context_for(config, "postgres", {}, [name]), target)
        port = load_state(root)["nodes"]["app"]["port"]
        return f"http://127.0.0.1:{port}/metrics"
    raise ConfigError(
        f"target {name} has no known /metrics endpoint: give it `metrics: URL` in {config.source}",
        field=f"targets.{name}.metrics",
    )

"""Probes that ask the engine: is it running, is it healthy, is it crash-looping, is it full.

Each returns a not-ok ProbeResult for an unhealthy or missing container and never raises (the
base class turns unexpected errors into not-ok too). The HTTP check on a published port is the
core ``http`` probe: it runs from the host, because busybox ``wget`` segfaults in containers.

Why ``docker.restart_loop`` counts the engine's ``die`` events of the *current* container IDs in a
sliding window instead of ``RestartCount``: the count is cumulative and survives nothing of a
rollback, while events answer "how many crashes in the last T" directly, with no state to seed, and
a rolled-back (re-created) container starts from a clean record.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from drillbook.backends.base import Probe
from drillbook.backends.docker.common import duration_param, is_running
from drillbook.backends.docker.engine import client_for
from drillbook.backends.docker.faults_storage import disk_usage
from drillbook.backends.docker.targets import describe_selector, resolve_target
from drillbook.model import ProbeResult

__all__ = ["DiskUsageProbe", "HealthyProbe", "RestartLoopProbe", "RunningProbe"]


class _DockerProbe(Probe):
    def _containers(self) -> tuple[list[Any], str]:
        client = client_for(self.ctx.settings)
        found: list[Any] = []
        missing: list[str] = []
        for target in self.ctx.targets:
            got = resolve_target(client, target)
            if not got:
                missing.append(f"{target.name} ({describe_selector(target)})")
            found.extend(got)
        return found, ("no container for " + ", ".join(missing)) if missing else ""

    def _each(self, judge: Callable[[Mapping[str, Any]], tuple[bool, str]]) -> ProbeResult:
        start = self.ctx.clock.monotonic()
        found, missing = self._containers()
        if missing:
            return ProbeResult(False, self.ctx.clock.monotonic() - start, missing)
        client = client_for(self.ctx.settings)
        oks: list[bool] = []
        details: list[str] = []
        for c in found:
            ok, detail = judge(client.api.inspect_container(c.id))
            oks.append(ok)
            details.append(f"{c.name}: {detail}")
        return ProbeResult(all(oks), self.ctx.clock.monotonic() - start, "; ".join(details))


def _status(data: Mapping[str, Any]) -> str:
    st = data.get("State", {})
    if st.get("Paused"):
        return "paused"
    if st.get("Restarting"):
        return "restarting"
    return str(st.get("Status", "unknown"))


class RunningProbe(_DockerProbe):
    """ok while every target container runs (not paused, not between restarts)."""

    def check(self) -> ProbeResult:
        return self._each(lambda d: (is_running(d), _status(d)))


class HealthyProbe(_DockerProbe):
    """ok while the engine's HEALTHCHECK status is ``healthy`` for every target container."""

    def check(self) -> ProbeResult:
        def judge(d: Mapping[str, Any]) -> tuple[bool, str]:
            health = d.get("State", {}).get("Health")
            if not health:
                return False, "no HEALTHCHECK configured"
            status = str(health.get("Status"))
            return status == "healthy" and is_running(d), f"{status} ({_status(d)})"

        return self._each(judge)


class RestartLoopProbe(_DockerProbe):
    """not-ok when a container died more than ``max_restarts`` times within ``window``."""

    def check(self) -> ProbeResult:
        limit = int(self.ctx.params.get("max_restarts", 3))
        window = duration_param(self.ctx, "window", 60.0)
        start = self.ctx.clock.monotonic()
        found, missing = self._containers()
        if missing:
            return ProbeResult(False, self.ctx.clock.monotonic() - start, missing)
        client = client_for(self.ctx.settings)
        now = self.ctx.clock.wall().timestamp()
        deaths: dict[str, int] = {}
        for c in found:
            events = client.events(
                since=now - window,
                until=now,
                filters={"container": c.id, "event": "die", "type": "container"},
                decode=True,
            )
            deaths[str(c.name)] = sum(1 for _ in events)
        worst = max(deaths.values(), default=0)
        detail = ", ".join(f"{n}: {k} deaths in {window:g}s" for n, k in deaths.items())
        return ProbeResult(
            worst <= limit, self.ctx.clock.monotonic() - start, f"{detail} (limit {limit})", worst
        )


class DiskUsageProbe(_DockerProbe):
    """not-ok when the filesystem holding ``path`` in the container is over ``max_percent``."""

    def check(self) -> ProbeResult:
        path = str(self.ctx.params.get("path", "/data"))
        limit = float(self.ctx.params.get("max_percent", 90))
        start = self.ctx.clock.monotonic()
        found, missing = self._containers()
        if missing:
            return ProbeResult(False, self.ctx.clock.monotonic() - start, missing)
        client = client_for(self.ctx.settings)
        worst = 0.0
        details = []
        for c in found:
            if c.status != "running":
                return ProbeResult(
                    False, self.ctx.clock.monotonic() - start, f"{c.name}: {c.status}"
                )
            pct, _, _ = disk_usage(client, c.id, path)
            worst = max(worst, pct)
            details.append(f"{c.name}:{path} {pct:.1f}% used")
        return ProbeResult(
            worst <= limit,
            self.ctx.clock.monotonic() - start,
            "; ".join(details) + f" (limit {limit:g}%)",
            worst,
        )

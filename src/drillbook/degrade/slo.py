"""SLO probes: an error rate and a latency percentile over a sliding window.

A binary health check cannot see a 5 % error rate or a slow p95, so these probes make their own
requests at a steady ``rate`` (one new connection each, as a user's client would) in a task on
the probe scheduler's loop, keep each outcome with its time, and judge the last ``window`` of
them at every tick. Each result carries its measured ``value`` (a share, or seconds), which the
journal records and reports draw over the timeline.

Never optimistic: a request that times out counts as an error, and in the latency probe as a
request that took its whole timeout; a window with fewer than ``min_requests`` outcomes fails
("not enough evidence") rather than passing.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import math
import time
from typing import Any
from urllib.parse import urlsplit

from drillbook.backends.base import Context, Probe
from drillbook.durations import format_duration, parse_duration
from drillbook.errors import ConfigError
from drillbook.model import ProbeResult

__all__ = ["ErrorRateProbe", "LatencyProbe", "percentile"]

_KEEP = 100_000  # outcomes kept at most (a window at the highest rate fits many times over)


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (the value at or above ``pct`` % of the sample; never interpolated
    down, so a bound holds only if that many requests really were at least that fast)."""
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100.0 * len(ordered)))
    return ordered[rank - 1]


def _duration(ctx: Context, key: str, default: float) -> float:
    try:
        return parse_duration(ctx.param(key, default), allow_zero=False)
    except ValueError as exc:
        raise ConfigError(str(exc), field=key) from None


class _WindowProbe(Probe):
    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.rate = float(ctx.param("rate", 10.0))
        if not 0 < self.rate <= 200:
            raise ConfigError("rate must be in (0, 200] requests per second", field="rate")
        self.window = _duration(ctx, "window", 5.0)
        self.request_timeout = _duration(ctx, "request_timeout", 2.0)
        self.expect_status = int(ctx.param("expect_status", 200))
        default_min = max(3, math.ceil(self.rate * self.window / 4))
        self.min_requests = int(ctx.param("min_requests", default_min))
        self._fixed_url = ctx.param("url")
        if not self._fixed_url:
            self._target_url()  # fail at build time, not at the first tick
        # (start time, end time, ok, elapsed)
        self._outcomes: collections.deque[tuple[float, float, bool, float]] = collections.deque(
            maxlen=_KEEP
        )
        self._inflight: dict[int, float] = {}  # request number -> start
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.requests = 0

    # -- where ----------------------------------------------------------------------------------
    def _target_url(self) -> str:
        path = self.ctx.param("path")
        if len(self.ctx.targets) != 1:
            raise ConfigError("an SLO probe needs `url:` or one target", field="url")
        target = self.ctx.targets[0]
        if target.backend == "local":
            from drillbook.backends.local.service import LocalService

            return LocalService(target, self.ctx.state_dir, self.ctx.workdir).url(path)
        if target.backend == "postgres" and target.params.get("sandbox") == "app":
            from drillbook.backends.postgres.sandbox.state import NODE_APP, load_state
            from drillbook.backends.postgres.target import sandbox_root

            try:
                port = int(load_state(sandbox_root(self.ctx, target))["nodes"][NODE_APP]["port"])
            except (OSError, KeyError, ValueError):
                port = 0  # not up yet (validate, a dry run): the request fails, the probe says so
            return f"http://127.0.0.1:{port}{path or '/health'}"
        raise ConfigError(
            f"target {target.name}: give `url:` (SLO probes derive it only for local targets "
            "and the sandbox app)",
            field="url",
        )

    def url(self) -> str:
        return str(self._fixed_url) if self._fixed_url else self._target_url()

    # -- the request loop ------------------------------------------------------------------------
    async def _one(self) -> None:
        start = time.monotonic()
        ok = False
        number = self.requests
        self.requests += 1
        self._inflight[number] = start
        try:
            parts = urlsplit(self.url())
            if parts.scheme != "http":
                raise ValueError(f"only http:// URLs, got {parts.scheme}://")
            host, port = parts.hostname or "127.0.0.1", parts.port or 80
            path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            async with asyncio.timeout(self.request_timeout):
                reader, writer = await asyncio.open_connection(host, port)
                try:
                    writer.write(
                        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                        "User-Agent: drillbook-slo-probe\r\nConnection: close\r\n\r\n".encode()
                    )
                    await writer.drain()
                    status_line = await reader.readline()
                    fields = status_line.split()
                    status = int(fields[1]) if len(fields) >= 2 and fields[1].isdigit() else 0
                    while await reader.read(65536):  # the whole answer counts in the latency
                        pass
                    ok = status == self.expect_status
                finally:
                    writer.close()
        except Exception:  # any failure to get the expected answer is an error, by design
            ok = False
        finally:
            self._inflight.pop(number, None)
        end = time.monotonic()
        elapsed = end - start
        if not ok and elapsed < self.request_timeout and self._timed_out(elapsed):
            elapsed = self.request_timeout
        self._outcomes.append((start, end, ok, elapsed))

    def _timed_out(self, elapsed: float) -> bool:
        return elapsed >= self.request_timeout * 0.999

    async def _drive(self) -> None:
        period = 1.0 / self.rate
        t0 = time.monotonic()
        k = 0
        inflight: set[asyncio.Task[None]] = set()
        try:
            while True:
                task = asyncio.create_task(self._one())
                inflight.add(task)
                task.add_done_callback(inflight.discard)
                k += 1
                delay = t0 + k * period - time.monotonic()
                if delay < -period:  # the loop was held up: skip the missed requests, no burst
                    t0, k, delay = time.monotonic(), 0, 0.0
                await asyncio.sleep(max(0.0, delay))
        finally:
            for task in list(inflight):
                task.cancel()

    def _ensure_running(self) -> None:
        loop = asyncio.get_running_loop()
        if self._task is not None and self._loop is loop and not self._task.done():
            return
        self._loop = loop
        self._task = loop.create_task(self._drive())

    async def aopen(self) -> None:
        self._ensure_running()

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def close(self) -> None:
        task, loop = self._task, self._loop
        if task is not None and loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(task.cancel)

    def _window(self) -> list[tuple[float, float, bool, float]]:
        # Judged by when a request began, so a slow answer counts in the window it was asked in.
        since = time.monotonic() - self.window
        return [o for o in list(self._outcomes) if o[0] >= since]

    async def acheck(self) -> ProbeResult:
        self._ensure_running()
        begun = time.monotonic()
        # The first look (steady state) waits for enough evidence, at most one window.
        window = self._window()
        while len(window) < self.min_requests and time.monotonic() - begun < self.window:
            await asyncio.sleep(min(0.05, 1.0 / self.rate))
            window = self._window()
        return self._judge(window, time.monotonic() - begun)

    def check(self) -> ProbeResult:
        async def once() -> ProbeResult:
            try:
                return await self.acheck()
            finally:
                await self.aclose()

        return asyncio.run(once())

    def _judge(self, window: list[tuple[float, float, bool, float]], spent: float) -> ProbeResult:
        raise NotImplementedError

    def _too_few(self, window: list[Any], spent: float, value: float | None) -> ProbeResult:
        return ProbeResult(
            False,
            spent,
            f"{len(window)} requests in the last {format_duration(self.window)}, "
            f"fewer than min_requests {self.min_requests}: not enough evidence",
            value,
        )


class ErrorRateProbe(_WindowProbe):
    """Passes while the failing share of its own requests over ``window`` stays at or under
    ``max_error_rate``; a failure is any status but ``expect_status``, a reset or a timeout."""

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        raw = ctx.param("max_error_rate")
        if raw is None:
            raise ConfigError("the error-rate probe needs `max_error_rate`", field="max_error_rate")
        self.max_error_rate = float(raw)

    def _judge(self, window: list[tuple[float, float, bool, float]], spent: float) -> ProbeResult:
        failed = sum(1 for o in window if not o[2])
        share = failed / len(window) if window else 1.0
        if len(window) < self.min_requests:
            return self._too_few(window, spent, share if window else None)
        ok = share <= self.max_error_rate
        return ProbeResult(
            ok,
            spent,
            f"error rate {share:.1%} ({failed}/{len(window)}) over "
            f"{format_duration(self.window)} {'<=' if ok else '>'} {self.max_error_rate:.1%}",
            round(share, 6),
        )


class LatencyProbe(_WindowProbe):
    """Passes while the ``percentile`` of its own requests' latencies over ``window`` stays at or
    under ``max``; a failed request counts with its time (a timeout: the whole timeout)."""

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.pct = float(ctx.param("percentile", 95))
        if not 0 < self.pct <= 100:
            raise ConfigError("percentile must be in (0, 100]", field="percentile")
        if ctx.param("max") is None:
            raise ConfigError("the latency probe needs `max` (a duration)", field="max")
        self.bound = _duration(ctx, "max", 1.0)

    def _judge(self, window: list[tuple[float, float, bool, float]], spent: float) -> ProbeResult:
        if len(window) < self.min_requests:
            return self._too_few(window, spent, None)
        # Requests still waiting count with their time so far: a lower bound of their latency,
        # so they can only raise the percentile towards the truth, never above it. Without them a
        # dependency slower than the window would look healthy until its answers came back.
        now = time.monotonic()
        since = now - self.window
        waiting = [now - t for t in list(self._inflight.values()) if t >= since]
        value = percentile([o[3] for o in window] + waiting, self.pct)
        ok = value <= self.bound
        return ProbeResult(
            ok,
            spent,
            f"p{self.pct:g} {value * 1000:.0f} ms over {format_duration(self.window)} "
            f"({len(window)} requests) {'<=' if ok else '>'} {self.bound * 1000:.0f} ms",
            round(value, 6),
        )

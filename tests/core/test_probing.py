"""The probe scheduler's lifecycle hooks, kicks, loop choice and large-drill mode, on real threads
and loops."""

from __future__ import annotations

import asyncio
import gc
import importlib.util
import sys
import threading
import time
from pathlib import Path
from typing import ClassVar

import pytest

from drillbook.backends.base import Context, Probe
from drillbook.model import ProbeResult
from drillbook.probing import (
    SCALE_PROBES,
    UVLOOP_PROBES,
    NamedProbe,
    ProbeScheduler,
    loop_kind,
    run_once,
)
from drillbook.timeline import Sample


class CountingProbe(Probe):
    """Counts its lifecycle calls and records what it saw while running."""

    seen_interval: ClassVar[list[float]] = []
    seen_frozen: ClassVar[list[int]] = []

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.opened = self.closed = self.checks = 0

    def check(self) -> ProbeResult:
        return ProbeResult(True, 0.0, "sync")

    async def aopen(self) -> None:
        self.opened += 1

    async def acheck(self) -> ProbeResult:
        self.checks += 1
        CountingProbe.seen_interval.append(sys.getswitchinterval())
        if self.checks == 2:  # gc.get_freeze_count() walks the frozen heap: sample it sparingly
            CountingProbe.seen_frozen.append(gc.get_freeze_count())
        return ProbeResult(True, 0.0, "ok")

    async def aclose(self) -> None:
        self.closed += 1


def _probes(n: int, tmp_path: Path) -> list[NamedProbe]:
    ctx = Context(params={}, workdir=tmp_path, state_dir=tmp_path)
    return [NamedProbe(f"p{i}", CountingProbe(ctx)) for i in range(n)]


def _run(probes: list[NamedProbe], ticks: int) -> list[Sample]:
    samples: list[Sample] = []
    done = threading.Event()

    def on_sample(sample: Sample, result: ProbeResult) -> None:
        samples.append(sample)
        if len(samples) >= ticks * len(probes):
            done.set()

    sched = ProbeScheduler(probes, interval=0.05, timeout=1.0, on_sample=on_sample)
    sched.start()
    assert done.wait(30), f"only {len(samples)} samples"
    sched.stop()
    sched.stop()  # idempotent: the engine's finish stops whatever still runs
    return samples


def test_every_probe_is_opened_before_and_closed_after(tmp_path: Path) -> None:
    probes = _probes(5, tmp_path)
    _run(probes, 3)
    for p in probes:
        assert isinstance(p.probe, CountingProbe)
        assert p.probe.opened == 1 and p.probe.closed == 1 and p.probe.checks >= 3


def test_run_once_closes_what_it_opened(tmp_path: Path) -> None:
    probes = _probes(3, tmp_path)
    results = run_once(probes, 1.0)
    assert [r.ok for _, r in results] == [True] * 3
    assert all(isinstance(p.probe, CountingProbe) and p.probe.closed == 1 for p in probes)


def test_small_drills_leave_process_settings_alone(tmp_path: Path) -> None:
    before = sys.getswitchinterval()
    CountingProbe.seen_interval.clear()
    CountingProbe.seen_frozen.clear()
    _run(_probes(3, tmp_path), 2)
    assert set(CountingProbe.seen_interval) == {before}
    assert sys.getswitchinterval() == before


def test_large_drills_shorten_the_switch_interval_and_freeze_then_restore(
    tmp_path: Path,
) -> None:
    before = sys.getswitchinterval()
    CountingProbe.seen_interval.clear()
    CountingProbe.seen_frozen.clear()
    samples = _run(_probes(SCALE_PROBES, tmp_path), 2)
    assert len(samples) >= 2 * SCALE_PROBES
    assert min(CountingProbe.seen_interval) <= 0.001 < before
    assert max(CountingProbe.seen_frozen) > 0  # gc.freeze() ran while probing
    assert sys.getswitchinterval() == before
    assert gc.get_freeze_count() == 0  # and everything was unfrozen at stop


class GateProbe(Probe):
    """Answers ``self.ok``; while ``hold`` is clear a look stays open (a kick lands mid-look)."""

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.ok = True
        self.hold = threading.Event()
        self.hold.set()
        self.inside = threading.Event()
        self.loop_types: list[str] = []

    def check(self) -> ProbeResult:
        return ProbeResult(self.ok, 0.0, "sync")

    async def acheck(self) -> ProbeResult:
        loop = asyncio.get_running_loop()
        self.loop_types.append(type(loop).__module__)
        self.inside.set()
        await loop.run_in_executor(None, self.hold.wait, 10)
        self.inside.clear()
        return ProbeResult(self.ok, 0.0, "ok" if self.ok else "down")


class Collector:
    def __init__(self) -> None:
        self.samples: list[Sample] = []
        self.cond = threading.Condition()

    def __call__(self, sample: Sample, result: ProbeResult) -> None:
        with self.cond:
            self.samples.append(sample)
            self.cond.notify_all()

    def wait_for(self, n: int, timeout: float) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: len(self.samples) >= n, timeout)


def _gate(tmp_path: Path) -> tuple[GateProbe, list[NamedProbe]]:
    probe = GateProbe(Context(params={}, workdir=tmp_path, state_dir=tmp_path))
    return probe, [NamedProbe("gate", probe)]


# A 60 s interval: without a kick no second look comes within any of these waits.
SLOW = 60.0


def _slow(tmp_path: Path) -> tuple[GateProbe, ProbeScheduler, Collector]:
    """One gate probe on a scheduler ticking every minute, and what it samples."""
    probe, probes = _gate(tmp_path)
    got = Collector()
    return probe, ProbeScheduler(probes, interval=SLOW, timeout=20.0, on_sample=got), got


def test_kick_takes_the_next_look_at_once(tmp_path: Path) -> None:
    probe, sched, got = _slow(tmp_path)
    try:
        sched.start()
        assert got.wait_for(1, 10)  # tick 0 is at once; the next tick is a minute away...
        probe.ok = False
        kicked = sched.clock.monotonic()
        sched.kick()
        assert got.wait_for(2, 10)  # ...but a kick looks now
        first, second = got.samples[:2]
        assert [first.ok, second.ok] == [True, False]
        # The second look began after the kick and before the schedule's next tick could.
        assert kicked <= second.start < first.start + SLOW
        assert sched.skipped == 0
    finally:
        sched.stop()


def test_a_kick_during_a_look_looks_again_after_it(tmp_path: Path) -> None:
    # The look in flight began before the kick, so it cannot answer for after it.
    probe, sched, got = _slow(tmp_path)
    try:
        probe.hold.clear()
        sched.start()
        assert probe.inside.wait(10)
        kicked = time.monotonic()
        sched.kick()
        time.sleep(0.05)  # let the kick reach the loop while the look is still open
        probe.hold.set()
        assert got.wait_for(2, 10)
        first, second = got.samples[:2]
        assert first.start < kicked <= second.start
    finally:
        sched.stop()


def _barrier(sched: ProbeScheduler) -> None:
    """Wait until the scheduler's loop has run everything queued on it before this call."""
    import asyncio

    assert sched._loop is not None
    asyncio.run_coroutine_threadsafe(asyncio.sleep(0), sched._loop).result(10)


def test_a_kick_before_start_or_after_stop_does_nothing(tmp_path: Path) -> None:
    _, sched, got = _slow(tmp_path)
    sched.kick()  # not ticking: nothing to move
    sched.open()
    sched.kick()
    _barrier(sched)  # anything the kick queued on the loop has run by now
    assert got.samples == [] and sched._generation == 0  # no rebase, no look
    sched.stop()
    sched.kick()  # stopped: no error either
    assert got.samples == []


def test_check_all_runs_on_the_scheduler_loop_and_leaves_probes_open(tmp_path: Path) -> None:
    probes = _probes(2, tmp_path)
    got = Collector()
    sched = ProbeScheduler(probes, interval=SLOW, timeout=5.0, on_sample=got)
    try:
        results = sched.check_all(5.0)
        assert [r.ok for r in results] == [True, True]
        counting = [p.probe for p in probes if isinstance(p.probe, CountingProbe)]
        counts = [(p.opened, p.checks, p.closed) for p in counting]
        assert counts == [(1, 1, 0), (1, 1, 0)]  # opened once, looked once, still open
        assert got.samples == []  # a steady-state look is not a sample
        sched.start()
        assert got.wait_for(1, 10)  # the second probe's phase is half the interval later
        with pytest.raises(RuntimeError, match="after start"):
            sched.check_all(5.0)
    finally:
        sched.stop()
    assert [(p.opened, p.closed) for p in counting] == [(1, 1), (1, 1)]


def test_few_probes_get_the_standard_loop_many_get_uvloop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DRILLBOOK_EVENT_LOOP", raising=False)
    assert loop_kind(1) == "asyncio" and loop_kind(UVLOOP_PROBES - 1) == "asyncio"
    has_uvloop = importlib.util.find_spec("uvloop") is not None
    assert loop_kind(UVLOOP_PROBES) == loop_kind() == ("uvloop" if has_uvloop else "asyncio")
    monkeypatch.setenv("DRILLBOOK_EVENT_LOOP", "asyncio")
    assert loop_kind(10_000) == "asyncio"
    monkeypatch.setenv("DRILLBOOK_EVENT_LOOP", "uvloop")
    assert loop_kind(1) == ("uvloop" if has_uvloop else "asyncio")
    # And the scheduler's loop is the one loop_kind names.
    monkeypatch.delenv("DRILLBOOK_EVENT_LOOP")
    probe, probes = _gate(tmp_path)
    sched = ProbeScheduler(probes, interval=SLOW, timeout=5.0, on_sample=Collector())
    try:
        sched.check_all(5.0)
    finally:
        sched.stop()
    assert probe.loop_types and not probe.loop_types[0].startswith("uvloop")

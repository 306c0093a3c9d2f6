"""The probe scheduler's lifecycle hooks and its large-drill mode, on real threads and loops."""

from __future__ import annotations

import gc
import sys
import threading
from pathlib import Path
from typing import ClassVar

from drillbook.backends.base import Context, Probe
from drillbook.model import ProbeResult
from drillbook.probing import SCALE_PROBES, NamedProbe, ProbeScheduler, run_once
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

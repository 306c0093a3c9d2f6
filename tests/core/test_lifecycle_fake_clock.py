"""The drill lifecycle on the fake clock: the waits that last minutes in a real drill (a fault
that never shows, a revert that keeps failing, a warm-up, a long recovery step) are decided by
the clock, so they are checked here exactly and without waiting.

The probes are in-memory (the test's own flag), so nothing here depends on a server's speed."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from drillbook.backends.base import Fault, Probe, ProbeResult, RecoveryStep, Registry, Selection
from drillbook.clock import FakeClock
from drillbook.config import Config, Defaults, SafetySettings
from drillbook.engine import Drill
from drillbook.errors import DrillAborted, FaultError
from drillbook.model import (
    FaultSpec,
    Objectives,
    ProbeSpec,
    RecoveryKind,
    RecoverySpec,
    Scenario,
    TargetSpec,
    Verdict,
)


class World:
    """The pretend system: healthy or not, and how its fault behaves."""

    healthy = True
    shows = True  # inject makes the fault observable
    revert_fails_until = 0  # revert raises on tries before this one
    reverts_hold = True  # verify_reverted sees it gone
    revert_calls = 0
    step_takes_s = 0.0
    inject_takes_s = 0.0  # the platform's time to carry the fault out


@pytest.fixture(autouse=True)
def world() -> Iterator[type[World]]:
    saved = dict(vars(World))
    yield World
    for key, value in saved.items():
        if not key.startswith("__"):
            setattr(World, key, value)


class FlagProbe(Probe):
    def check(self) -> ProbeResult:
        return ProbeResult(World.healthy, 0.0, "up" if World.healthy else "down")


class FlagFault(Fault):
    def resolve(self) -> Selection:
        return Selection(("flag",), 1)

    def plan(self) -> str:
        return "turn the flag off"

    def inject(self) -> None:
        self.ctx.clock.sleep(World.inject_takes_s)
        World.healthy = False

    def verify_injected(self) -> bool:
        return World.shows

    def revert(self) -> None:
        World.revert_calls += 1
        if World.revert_calls < World.revert_fails_until:
            raise RuntimeError("the platform said no")
        World.healthy = True

    def verify_reverted(self) -> bool:
        return World.reverts_hold and World.healthy

    def state(self) -> Mapping[str, Any]:
        return {}


class SlowStep(RecoveryStep):
    """A recovery step that takes ``World.step_takes_s`` on the drill's clock, then heals."""

    def run(self) -> str:
        self.ctx.clock.sleep(World.step_takes_s)
        World.healthy = True
        return "healed"


def _registry() -> Registry:
    reg = Registry()
    reg.add_backend("test", lambda settings: None, "the test's flag")
    reg.add_fault("test.flag_off", "test", FlagFault, help="flag off")
    reg.add_probe("test.flag", "test", FlagProbe, help="the flag")
    reg.add_recovery("test.slow_heal", "test", SlowStep, help="heal, slowly")
    return reg


def _drill(tmp_path: Path, clock: FakeClock, *, timeout_s: float = 600.0) -> Drill:
    config = Config(
        source="test",
        workdir=tmp_path,
        environment="test",
        targets={"flag": TargetSpec("flag", "test", {})},
        safety=SafetySettings(
            max_targets=1,
            max_percent=100,
            fault_ttl_s=3600.0,
            revert_retry_s=120.0,
            watchdog=False,  # the fault lives in this process only
            watchdog_off_by="this test",
        ),
        defaults=Defaults(
            probe_interval_s=0.05, probe_timeout_s=1.0, stable_for_s=0.1, timeout_s=timeout_s
        ),
        reports_dir=tmp_path / "reports",
        state_dir=tmp_path / ".drillbook",
    )
    spec = Scenario(id="fake", objectives=Objectives(rto_s=timeout_s))
    drill = Drill("fake", config, registry=_registry(), scenario=spec, clock=clock)
    drill.watch(ProbeSpec("test.flag", "flag", {}))
    return drill


FAULT = FaultSpec("test.flag_off", {}, ("flag",))


def test_a_fault_that_never_shows_is_given_up_after_its_window_and_reverted(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    World.shows = False
    drill = _drill(tmp_path, clock, timeout_s=600.0)
    drill.steady_state()
    before = clock.monotonic()
    with pytest.raises(FaultError, match="not observable"):
        drill.inject(FAULT)
    waited = clock.monotonic() - before
    result = drill.finish()
    # The window is a quarter of the drill's timeout, capped at 30 s: waited, not skipped.
    assert 30.0 <= waited < 31.0
    assert World.revert_calls == 1 and World.healthy
    assert [r["ok"] for r in result.record["reverts"]] == [True]
    assert result.verdict is not Verdict.PASSED


def test_the_inject_event_says_how_long_the_platform_took_to_show_the_fault(
    tmp_path: Path,
) -> None:
    """Killing a server and deleting its folder is the platform's work: the journal keeps it
    apart, so the harness's own time before the fault can be told from it."""
    clock = FakeClock()
    World.inject_takes_s = 42.0
    drill = _drill(tmp_path, clock)
    drill.steady_state()
    drill.inject(FAULT)
    result = drill.finish()
    (inject,) = [e for e in result.record["timeline"] if e["kind"] == "inject"]
    assert inject["inject_s"] == pytest.approx(42.0, abs=0.01)


def test_a_failing_revert_is_retried_on_the_clock_until_it_holds(tmp_path: Path) -> None:
    clock = FakeClock()
    World.revert_fails_until = 4  # tries 1-3 fail, the 4th holds
    drill = _drill(tmp_path, clock)
    drill.steady_state()
    drill.inject(FAULT)
    before = clock.monotonic()
    result = drill.finish()
    (revert,) = result.record["reverts"]
    assert revert["ok"] and revert["tries"] == 4
    assert World.revert_calls == 4
    # Three pauses between four tries, each doubling from the first: time passed on the clock.
    assert 0.0 < clock.monotonic() - before < 120.0


def test_a_revert_that_never_holds_uses_its_whole_budget_and_says_still_injected(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    World.reverts_hold = False
    drill = _drill(tmp_path, clock)
    drill.steady_state()
    drill.inject(FAULT)
    before = clock.monotonic()
    result = drill.finish()
    (revert,) = result.record["reverts"]
    assert not revert["ok"] and revert["tries"] >= 2
    assert "still injected: test.flag_off on flag" in revert["detail"]
    # revert_retry is 120 s, and each try waits 30 s to see the revert hold.
    assert clock.monotonic() - before >= 120.0
    assert result.verdict is not Verdict.PASSED


def test_a_warmup_is_waited_on_the_clock_and_shows_in_the_phase(tmp_path: Path) -> None:
    clock = FakeClock()
    drill = _drill(tmp_path, clock)
    drill.steady_state(warmup_s=900.0)
    result = drill.finish()
    (phase,) = [p for p in result.record["phases"] if p["phase"] == "steady_state"]
    assert phase["end_s"] is not None and phase["end_s"] - phase["start_s"] >= 900.0


def test_a_long_recovery_step_is_timed_by_the_clock(tmp_path: Path) -> None:
    clock = FakeClock()
    World.step_takes_s = 5400.0  # an hour and a half of restore
    drill = _drill(tmp_path, clock, timeout_s=7200.0)
    drill.steady_state()
    drill.inject(FAULT)
    drill.recover(RecoverySpec(RecoveryKind.SCRIPTED, "test.slow_heal", "restore", {}, ("flag",)))
    result = drill.finish()
    (step,) = result.record["steps"]
    assert step["ok"] and step["detail"] == "healed"
    assert step["duration_s"] == pytest.approx(5400.0, abs=1.0)
    assert result.record["duration_s"] is not None and result.record["duration_s"] >= 5400.0


def test_a_step_past_the_drills_deadline_sees_the_deadline_in_its_context(
    tmp_path: Path,
) -> None:
    """A step's context carries the drill's deadline on the same clock, so a step that polls
    (a restore waiting for the server) stops at the drill's timeout, not at its own."""
    clock = FakeClock()
    seen: list[float] = []

    class DeadlineStep(RecoveryStep):
        def run(self) -> str:
            assert self.ctx.deadline is not None
            seen.append(self.ctx.deadline - self.ctx.clock.monotonic())
            World.healthy = True
            return "ok"

    drill = _drill(tmp_path, clock, timeout_s=600.0)
    drill.registry.add_recovery("test.deadline", "test", DeadlineStep, help="")
    drill.steady_state()
    drill.inject(FAULT)
    clock.advance(500.0)
    drill.recover(RecoverySpec(RecoveryKind.SCRIPTED, "test.deadline", "look", {}, ("flag",)))
    drill.finish()
    assert len(seen) == 1 and 0.0 < seen[0] <= 100.0


class LosingLock:
    """A target lock that is lost after the drill has looked at it a few times."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.taken_over = None
        self.looks = 0

    def lost(self) -> str | None:
        self.looks += 1
        return "lease not renewed for 20s (HTTP 503): it expired" if self.looks > 3 else None

    def release(self, *, clean: bool = True) -> None:
        return None


class LosingArbiter:
    def acquire(self, target: str, holder: Any) -> LosingLock:
        return LosingLock(target)


def test_a_lock_lost_mid_drill_aborts_and_reverts(tmp_path: Path) -> None:
    """Another runner may drill the target once its lock is gone: this drill stops and
    reverts instead of measuring a target it no longer holds."""
    clock = FakeClock()
    drill = _drill(tmp_path, clock)
    drill.arbiter = LosingArbiter()
    drill.steady_state()
    drill.inject(FAULT)  # the target stays down: only the lost lock can end the wait
    with pytest.raises(DrillAborted, match="lost the lock on target 'flag'") as aborted:
        drill.await_recovery()
    result = drill.finish(aborted.value)
    assert result.verdict is Verdict.ABORTED
    assert World.revert_calls == 1 and World.healthy
    lost = [e for e in result.record["timeline"] if e["kind"] == "lock" and e.get("lost")]
    assert lost and "it expired" in lost[0]["detail"]

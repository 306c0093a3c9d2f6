"""The drill's probe samples: the scheduler that takes them, the bookkeeping of each one,
waiting for the next, the guards they trip, and the measures computed from them.
"""

from __future__ import annotations

from drillbook.clock import utc_iso
from drillbook.drillstate import DrillState
from drillbook.errors import DrillAborted
from drillbook.model import ProbeResult
from drillbook.probing import ProbeScheduler
from drillbook.redact import redact_text
from drillbook.timeline import Measures, Sample, compute_measures

__all__ = ["SampleBook"]


class SampleBook(DrillState):
    """Samples in, measures out."""

    def _on_sample(self, sample: Sample, result: ProbeResult) -> None:
        # Runs on the probe loop for every sample (10,000 a second with 1,000 probes at 10 Hz):
        # each value is computed once and shared by the timeline entry and the journal event.
        detail = redact_text(sample.detail)[:300]
        latency = round(result.latency_s, 6)
        offset, end_offset = self._off(sample.start), self._off(sample.end)
        t = utc_iso(self.clock.wall())
        entry = {
            "t": t,
            "offset_s": offset,
            "kind": "probe",
            "probe": sample.probe,
            "ok": sample.ok,
            "latency_s": latency,
            "end_offset_s": end_offset,
            "detail": detail,
        }
        value = result.value if isinstance(result.value, int | float) else None
        if value is not None:  # a measured probe (an SLO's share, a percentile): reports draw it
            entry["value"] = value
        with self._lock:
            self._samples.append(sample)
            self._timeline.append(entry)
        if (
            not sample.ok
            and self._t_inject is not None
            and sample.start >= self._t_inject
            and not sample.probe.startswith("guard:")
        ):
            self._failure_seen = True  # await_detection measures only once this is true
        if self._wake_on_pass or not sample.ok:
            self._sample_arrived.set()
        if self.journal is not None:
            self.journal.probe_event(
                drill=self.id,
                t=t,
                probe=sample.probe,
                ok=sample.ok,
                latency_s=latency,
                offset_s=offset,
                end_offset_s=end_offset,
                detail=detail,
                value=value,
            )
        for guard in self._guards:
            if guard.name == sample.probe and not sample.ok:
                guard.failures += 1

    def _probe_scheduler(self) -> ProbeScheduler:
        """The scheduler of every probe so far; one opened before more probes were added (a
        Python drill may watch more after its steady state) is replaced while it is not ticking."""
        sched = self._scheduler
        if sched is not None and not sched.driving and len(sched.probes) != len(self._probes):
            sched.stop()
            sched = None
        if sched is None:
            sched = self._scheduler = ProbeScheduler(
                self._probes,
                interval=self.interval,
                timeout=self.config.defaults.probe_timeout_s,
                on_sample=self._on_sample,
                clock=self.clock,
            )
        return sched

    def _start_probes(self) -> None:
        if self._probes and (self._scheduler is None or not self._scheduler.driving):
            self._probe_scheduler().start()

    def _kick_probes(self) -> None:
        """Look now rather than at the next tick (see ProbeScheduler.kick)."""
        if self._scheduler is not None:
            self._scheduler.kick()

    def _measure_now(self) -> Measures:
        assert self._t_inject is not None
        started = self.clock.monotonic()
        with self._lock:  # a slice copy only: the probe loop waits on this lock
            snapshot = self._samples[:]
        samples = [s for s in snapshot if not s.probe.startswith("guard:")]
        if not self._injected and self._steps:
            # No fault: nothing is recovered before the runbook's steps are done, so only samples
            # taken after the last step count (else a healthy source would make RTA zero).
            floor = max(st.start + st.duration for st in self._steps)  # automatic: duration 0
            samples = [s for s in samples if s.start >= floor]
        measures = compute_measures(
            samples,
            self._t_inject,
            self.stable_for,
            now=self._now(),
            has_fault=bool(self._injected),
        )
        self._measure_cost_s = self.clock.monotonic() - started
        return measures

    def _await_sample(self, at_most: float) -> None:
        """Wait until the next probe sample arrives, or ``at_most`` seconds.

        Detection and recovery are computed from samples only, so the moment a sample lands is
        the earliest either can change: waking on it ends the wait without the up-to-a-poll lag
        a fixed sleep added (half an interval per wait). The measures are not affected; guards,
        the deadline and the progress line are still looked at every ``at_most`` seconds. A fake
        clock (tests) moves only when slept on: its wait advances it instead."""
        # Measuring is linear in the samples so far: with a thousand probes a wake per sample,
        # or even one per poll, would take a core from the probe loop. Waiting nine times the
        # last measuring cost first keeps it under a tenth of a core, even past ``at_most``; only
        # the reaction is later (by 9x the cost, at most 1 s), never the measures (they come
        # from the samples' own times).
        gap = min(9.0 * self._measure_cost_s, 1.0)
        if gap >= 0.0005:
            self.clock.sleep(gap)
        if gap < at_most:
            self.clock.wait(self._sample_arrived, at_most - gap)
        self._sample_arrived.clear()

    def _check_guards(self) -> None:
        """The stop conditions, looked at on every wait: a guard probe that failed too often,
        and a target lock this drill no longer holds."""
        for guard in self._guards:
            if not guard.tripped and guard.failures >= guard.max_failures:
                guard.tripped = True
                self._event("guard", guard=guard.name, failures=guard.failures, tripped=True)
                raise DrillAborted(f"guard {guard.name} failed {guard.failures} times: aborting")
        self._check_locks()

    def _probe_state(self) -> str:
        latest: dict[str, bool] = {}
        with self._lock:
            for s in self._samples[-len(self._probes) * 2 :]:
                latest[s.probe] = s.ok
        return " ".join(f"{n}={'ok' if ok else 'FAIL'}" for n, ok in sorted(latest.items()))

    def _final_measures(self) -> Measures:
        """The measures over every sample the drill took, the probes now stopped.

        Recovery is not the end of watching: the probes ran on until here (verify included), so a
        relapse after recovery is seen, and a probe that started before recovery was confirmed
        but answered "failing" only afterwards reopens the outage it belongs to. A drill that did
        not recover in time keeps that answer: a recovery after the deadline is not a recovery."""
        measures = self._measures
        if self._t_inject is not None and (measures is None or measures.recovered):
            measures = self._measure_now()
        measures = measures or Measures()
        if measures.relapse_s is not None and self._t_inject is not None:
            self._event(
                "relapse",
                probe=measures.relapse_probe,
                relapse_s=round(measures.relapse_s, 6),
                allowed=bool(self.scenario and self.scenario.allow_relapse),
            )
        return measures

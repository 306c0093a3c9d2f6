"""The drill record: what reports, history and the session read back about one drill, built
once at the end from the drill's state, and the verdict an exception stands for.
"""

from __future__ import annotations

from drillbook.clock import utc_iso
from drillbook.drillstate import DrillState, DryRun, SteadyStateFailed, _Step
from drillbook.errors import DrillAborted, DrillbookError, RecoveryError, SafetyError
from drillbook.model import Verdict
from drillbook.record import DrillRecord, StepRecord
from drillbook.redact import redact_text
from drillbook.safety import Interrupted
from drillbook.timeline import Check, Measures

__all__ = ["RecordWriter"]


class RecordWriter(DrillState):
    """Builds the record of one drill."""

    def _step_record(self, st: _Step) -> StepRecord:
        rec: StepRecord = {
            "name": st.name,
            "kind": st.kind,
            "type": st.type,
            "start_s": self._off(st.start),
            "duration_s": None if st.duration is None else round(st.duration, 6),
            "ok": st.ok,
            "detail": st.detail,
        }
        if st.result:
            rec["result"] = st.result
            rec["note"] = st.note
        if st.instruction:
            rec["instruction"] = st.instruction
        if st.params:
            rec["params"] = dict(st.params)
        return rec

    @staticmethod
    def _verdict_for(exc: BaseException) -> tuple[Verdict, str]:
        text = redact_text(str(exc)) or type(exc).__name__
        if isinstance(exc, DryRun):
            return Verdict.PASSED, text
        if isinstance(exc, Interrupted | KeyboardInterrupt):
            return Verdict.ABORTED, f"interrupted ({text}); reverted"
        if isinstance(exc, DrillAborted):
            return Verdict.ABORTED, text
        if isinstance(exc, SteadyStateFailed):
            return Verdict.ERROR, text
        if isinstance(exc, SafetyError):
            return Verdict.ERROR, f"refused: {text}"
        if isinstance(exc, RecoveryError | AssertionError):
            return Verdict.FAILED, text
        if isinstance(exc, DrillbookError):
            return Verdict.ERROR, text
        return Verdict.ERROR, f"{type(exc).__name__}: {text}"

    def _record(
        self, m: Measures, verdict: Verdict, checks: list[Check], reasons: list[str]
    ) -> DrillRecord:
        ti = self._t_inject

        def iso(mono: float | None) -> str | None:
            if mono is None:
                return None
            wall = self.clock.wall().timestamp() - (self._now() - mono)
            from datetime import UTC, datetime

            return utc_iso(datetime.fromtimestamp(wall, UTC))

        def rnd(v: float | None) -> float | None:
            return None if v is None else round(v, 6)

        def epoch_iso(epoch: float | None) -> str | None:
            from datetime import UTC, datetime

            return None if epoch is None else utc_iso(datetime.fromtimestamp(epoch, UTC))

        lm = self._ledger_measure
        s = self.scenario
        fault_spec = self._injected[0].spec if self._injected else (s.fault if s else None)
        record: DrillRecord = {
            "id": self.id,
            "nodeid": self.nodeid,
            "scenario": s.id if s else None,
            "description": s.description if s else "",
            "runbook": s.runbook if s else "",
            "source": s.source if s else self.nodeid.split("::")[0],
            "severity": self.objectives.severity.value,
            "controls": list(self.objectives.controls),
            "targets": list(self._targets.values())
            or [
                {"name": n, "backend": self.config.targets[n].backend, "resolved": []}
                for n in (s.targets if s else ())
                if n in self.config.targets
            ],
            "objectives": {
                "rto_s": self.objectives.rto_s,
                "rpo_s": self.objectives.rpo_s,
                "response_target_s": self.objectives.response_target_s,
                "severity": self.objectives.severity.value,
                "controls": list(self.objectives.controls),
                "source": "resiliency_policy:" + str(self.objectives.resiliency_policy.get("arn"))
                if self.objectives.resiliency_policy
                else "scenario",
            },
            "fault": {
                "type": fault_spec.type,
                "plan": "; ".join(self._plans),
                "params": dict(fault_spec.params),
            }
            if fault_spec
            else None,
            "started_at": self.started_at,
            "ended_at": utc_iso(self.clock.wall()),
            "duration_s": rnd(self._now() - self.started_mono),
            "probe_interval_s": self.interval,
            "stable_for_s": self.stable_for,
            "timeout_s": self.timeout,
            "phases": [
                {
                    "phase": p.name,
                    "start_s": self._off(p.start),
                    "end_s": self._off(p.end) if p.end else None,
                }
                for p in self._phases
            ],
            "timeline": list(self._timeline),
            "steps": [self._step_record(st) for st in self._steps],
            "runbook_import": dict(s.runbook_import) if s and s.runbook_import else None,
            "measures": {
                "ttd_s": rnd(m.ttd_s),
                "ttd_bracket_s": [rnd(x) for x in m.ttd_bracket_s] if m.ttd_bracket_s else None,
                "rta_s": rnd(m.rta_s),
                "rta_bracket_s": [rnd(x) for x in m.rta_bracket_s] if m.rta_bracket_s else None,
                "rpa_s": rnd(lm.rpa_s) if lm else None,
                "lost_writes": lm.lost_writes if lm else None,
                "ledger": {
                    "acknowledged": lm.acknowledged,
                    "survived": lm.survived,
                    "lost_before_inject": lm.lost_before_inject,
                    "oldest_lost_at": epoch_iso(lm.oldest_lost_at),
                    "newest_lost_at": epoch_iso(lm.newest_lost_at),
                    "recovery_point": epoch_iso(lm.recovery_point),
                    "detail": lm.detail,
                }
                if lm
                else None,
                "outage_observed": m.detected if self._injected else None,
                "relapse_s": rnd(m.relapse_s),
                "relapse_probe": m.relapse_probe,
                "t_relapse": iso(ti + m.relapse_s)
                if ti is not None and m.relapse_s is not None
                else None,
                "t_inject": iso(ti),
                "t_detect": iso(self._t_detect),
                "t_recovered": iso(ti + m.rta_s)
                if ti is not None and m.rta_s is not None
                else None,
                "t_verified": iso(self._t_verified),
                "t_revert_confirmed": iso(self._t_revert_confirmed),
                "probe_samples": m.samples,
                "probe_ticks_skipped": self._scheduler.skipped if self._scheduler else 0,
                "detected": m.detected,
                "recovered": m.recovered,
            },
            "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in checks],
            "verdict": verdict.value,
            "reasons": reasons,
            "guards": [
                {
                    "name": g.name,
                    "failures": g.failures,
                    "max_failures": g.max_failures,
                    "tripped": g.tripped,
                }
                for g in self._guards
            ],
            "reverts": list(self._reverts),
        }
        if self._hold is not None:
            record["hold"] = self._hold
        return record

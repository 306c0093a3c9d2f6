"""Recovery steps: scripted steps run and timed, manual steps answered (--drill-answer, an
operator console, or a prompt on the terminal) and timed.
"""

from __future__ import annotations

from drillbook.drillstate import _Step
from drillbook.errors import DrillbookError, RecoveryError
from drillbook.model import RecoveryKind, RecoverySpec
from drillbook.operator import ManualOutcome, StepInfo, open_tty
from drillbook.record_writer import RecordWriter
from drillbook.redact import redact, redact_text
from drillbook.sampling import SampleBook
from drillbook.timeline import Check
from drillbook.wiring import context_for

__all__ = ["RecoverySteps"]


def _manual_result(spec: RecoverySpec, ok: bool) -> str:
    """A manual step answered by --answer or the plain prompt: done, or failed."""
    if spec.kind is not RecoveryKind.MANUAL:
        return ""
    return "done" if ok else "failed"


class RecoverySteps(RecordWriter, SampleBook):
    """The runbook's steps of one drill."""

    def _step_info(self, spec: RecoverySpec) -> StepInfo:
        s = self.scenario
        total = len(s.recovery) if s is not None and spec in s.recovery else len(self._steps) + 1
        return StepInfo(
            drill_id=self.id,
            index=len(self._steps) + 1,
            total=max(total, len(self._steps) + 1),
            name=spec.name,
            kind=spec.kind.value,
            instruction=spec.instruction,
            params=spec.params,
            t_zero_mono=self._t_inject,
            rto_s=self.objectives.rto_s,
            response_target_s=self.objectives.response_target_s,
            severity=self.objectives.severity.value,
        )

    def recover(self, spec: RecoverySpec) -> None:
        """Run one recovery step: scripted (run and timed), manual (prompted and timed)."""
        operator = self.config.operator
        info = self._step_info(spec) if operator is not None else None
        if operator is not None and info is not None:
            operator.step_started(info)
        try:
            self._recover(spec, info)
        finally:
            if operator is not None and info is not None and len(self._steps) >= info.index:
                operator.step_finished(info, self._step_record(self._steps[info.index - 1]))

    def _recover(self, spec: RecoverySpec, info: StepInfo | None) -> None:
        if spec.kind is RecoveryKind.AUTOMATIC:
            detail = "awaiting the platform's own recovery"
            self._steps.append(
                _Step(spec.name or "automatic", "automatic", None, self._now(), 0.0, True, detail)
            )
            self._event(
                "step", name=spec.name or "automatic", step_kind="automatic", ok=True, detail=detail
            )
            return
        with self._phase("recover"):
            start = self._now()
            ok, detail, result, note = True, "", "", ""
            try:
                if spec.kind is RecoveryKind.SCRIPTED:
                    assert spec.type is not None
                    reg = self.registry.recovery(spec.type)
                    self._need_backend(reg.backend)
                    deadline = (
                        self.deadline
                        if spec.timeout_s is None
                        else min(self.deadline, start + spec.timeout_s)
                    )
                    ctx = context_for(
                        self.config,
                        reg.backend,
                        spec.params,
                        spec.targets,
                        clock=self.clock,
                        deadline=deadline,
                        artifacts_dir=self.journal.dir / self.id if self.journal else None,
                    )
                    detail = reg.factory(ctx).run() or ""
                else:
                    detail, outcome = self._manual(spec, info)
                    if outcome is not None:
                        result, note = outcome.result, redact_text(outcome.note)
                        ok = outcome.result != "failed"
                        if not ok:  # the room carries on; the drill's checks fail
                            self._checks.append(
                                Check(f"runbook step {spec.name}", False, note or "failed")
                            )
            except RecoveryError as exc:
                ok, detail = False, str(exc)
                raise
            except DrillbookError as exc:
                ok, detail = False, str(exc)
                raise RecoveryError(f"{spec.name}: {exc}") from exc
            except Exception as exc:
                ok, detail = False, f"{type(exc).__name__}: {exc}"
                raise RecoveryError(f"{spec.name}: {detail}") from exc
            finally:
                duration = self._now() - start
                self._kick_probes()  # the step may have brought it back: look now
                step = _Step(
                    spec.name,
                    spec.kind.value,
                    spec.type,
                    start,
                    duration,
                    ok,
                    redact_text(detail),
                    result or _manual_result(spec, ok),
                    note,
                    redact_text(spec.instruction)[:4000],
                    redact(dict(spec.params)),
                )
                self._steps.append(step)
                extra = {"result": step.result, "note": note} if step.result else {}
                self._event(
                    "step",
                    name=spec.name,
                    step_kind=spec.kind.value,
                    type=spec.type,
                    ok=ok,
                    duration_s=round(duration, 6),
                    detail=redact_text(detail)[:500],
                    **extra,
                )

    def _manual(
        self, spec: RecoverySpec, info: StepInfo | None
    ) -> tuple[str, ManualOutcome | None]:
        answer = self.config.manual_answers.get(spec.name) or self.config.manual_answers.get("*")
        if answer is not None:
            if answer.lower() in ("fail", "failed", "no"):
                raise RecoveryError(
                    f"manual step {spec.name!r} answered as failed by --drill-answer"
                )
            return f"answered by --drill-answer: {answer}", None
        if self.config.operator is not None and info is not None:
            outcome = self.config.operator.manual_step(info)
            return f"{outcome.result} (operator)", outcome
        return self._prompt(spec), None

    def _prompt(self, spec: RecoverySpec) -> str:
        try:
            tty = open_tty()
        except OSError:
            raise RecoveryError(
                f"manual step {spec.name!r} needs an operator but there is no terminal; "
                f"answer it with --drill-answer '{spec.name}=done'"
            ) from None
        with tty:
            if not tty.isatty():
                raise RecoveryError(f"manual step {spec.name!r}: no terminal to prompt on")
            tty.write(
                f"\n[drillbook] OPERATOR STEP for {self.id}: {spec.instruction}\n"
                "Press Enter when done, or type 'fail' and Enter: "
            )
            tty.flush()
            reply = tty.readline().strip()
        if reply.lower() in ("fail", "failed", "no", "n"):
            raise RecoveryError(f"manual step {spec.name!r}: operator answered {reply!r}")
        return "confirmed by the operator at the terminal"

"""What a drill says about its runbook: the report's and the after-action report's runbook section.

Every step with its duration, result and note; the steps that took the largest share of the RTO;
the steps that failed or were skipped; the commands that exited non-zero; and "runbook changes to
make", derived from those, as Markdown a person can paste into a pull request against the
runbook. Pure: it reads one drill record of the journal and does no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["RunbookSection", "StepRow", "runbook_markdown", "runbook_section"]

#: a step taking at least this share of the RTO is worth rehearsing or automating first
_BIG_SHARE = 0.2
_TOP = 3
_EXIT = re.compile(r"exited (-?\d+)")


@dataclass(frozen=True)
class StepRow:
    index: int
    name: str
    kind: str
    result: str  # done | failed | skipped | ok (scripted/automatic) | not reached
    duration_s: float | None
    rto_share: float | None
    note: str
    command: str
    exit_code: int | None
    detail: str


@dataclass
class RunbookSection:
    runbook: str
    title: str
    warning: str
    rto_s: float | None
    steps: list[StepRow]
    biggest: list[StepRow] = field(default_factory=list)
    failed: list[StepRow] = field(default_factory=list)
    nonzero: list[StepRow] = field(default_factory=list)
    rollback: list[str] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)

    @property
    def changes_markdown(self) -> str:
        return runbook_markdown(self)


def _command(step: Mapping[str, Any]) -> str:
    params = step.get("params")
    if isinstance(params, Mapping):
        cmd = params.get("command")
        if isinstance(cmd, list) and cmd:
            return str(cmd[-1]) if cmd[:2] in (["sh", "-ec"], ["sh", "-c"]) else " ".join(cmd)
        if isinstance(cmd, str):
            return cmd
    text = str(step.get("instruction") or "")
    inside, lines = False, []
    for line in text.split("\n"):
        if line.strip().startswith(("```", "~~~")):
            inside = not inside
        elif inside and line.strip():
            lines.append(line.strip())
    return "\n".join(lines)


def _result(step: Mapping[str, Any]) -> str:
    if step.get("result"):
        return str(step["result"])
    if step.get("kind") == "manual":  # a journal from before results were recorded
        return "done" if step.get("ok") else "failed"
    return "ok" if step.get("ok") else "failed"


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def runbook_section(drill: Mapping[str, Any]) -> RunbookSection | None:
    """The section for a drill imported from a runbook or with manual steps; else None."""
    info = drill.get("runbook_import") if isinstance(drill.get("runbook_import"), Mapping) else {}
    assert isinstance(info, Mapping)
    steps = [s for s in drill.get("steps") or [] if isinstance(s, Mapping)]
    if not info and not any(s.get("kind") == "manual" for s in steps):
        return None
    objectives = drill.get("objectives") if isinstance(drill.get("objectives"), Mapping) else {}
    assert isinstance(objectives, Mapping)
    rto = _num(objectives.get("rto_s"))
    rows: list[StepRow] = []
    for i, st in enumerate(steps, start=1):
        if st.get("kind") == "automatic":
            continue
        duration = _num(st.get("duration_s"))
        detail = str(st.get("detail") or "")
        code = None
        if st.get("type") == "command":
            m = _EXIT.search(detail)
            code = int(m.group(1)) if m else (0 if st.get("ok") else None)
        rows.append(
            StepRow(
                index=i,
                name=str(st.get("name") or f"step {i}"),
                kind=str(st.get("kind") or ""),
                result=_result(st),
                duration_s=duration,
                rto_share=duration / rto if rto and duration is not None else None,
                note=str(st.get("note") or ""),
                command=_command(st),
                exit_code=code,
                detail=detail,
            )
        )
    section = RunbookSection(
        runbook=str(drill.get("runbook") or ""),
        title=str(info.get("title") or ""),
        warning=str(info.get("warning") or ""),
        rto_s=rto,
        steps=rows,
        rollback=[str(r) for r in info.get("rollback") or []],
    )
    timed = [r for r in rows if r.duration_s is not None]
    section.biggest = sorted(timed, key=lambda r: r.duration_s or 0.0, reverse=True)[:_TOP]
    section.failed = [r for r in rows if r.result in ("failed", "skipped")]
    section.nonzero = [
        r
        for r in rows
        if r.exit_code not in (None, 0) or (r.kind == "scripted" and r.result == "failed")
    ]
    section.changes = _changes(section, drill)
    return section


def _changes(section: RunbookSection, drill: Mapping[str, Any]) -> list[str]:
    out: list[str] = []
    if section.warning:
        out.append(f"Re-import the runbook before the next drill: {section.warning.split(':')[0]}.")
    for r in section.failed:
        why = f" (note: {r.note})" if r.note else ""
        if r.result == "failed" and r.kind == "manual":
            out.append(f"Step **{r.name}** failed{why}: fix its instruction or what it assumes.")
        elif r.result == "skipped":
            out.append(f"Step **{r.name}** was skipped{why}: say when it applies, or remove it.")
    for r in section.nonzero:
        out.append(
            f"Command of step **{r.name}** exited {r.exit_code if r.exit_code is not None else 'with an error'}"
            f": `{r.command.splitlines()[0] if r.command else '?'}` — fix it or mark it not drill-safe."
        )
    for r in section.biggest:
        if r.rto_share is not None and r.rto_share >= _BIG_SHARE:
            out.append(
                f"Step **{r.name}** took {r.rto_share:.0%} of the RTO: automate it (a "
                "`drill-safe` block) or rehearse it."
            )
    for r in section.steps:
        if r.note and r.result == "done":
            out.append(f"Step **{r.name}**: {r.note}")
    if drill.get("verdict") == "failed" and not section.failed and not section.nonzero:
        reasons = "; ".join(str(x) for x in drill.get("reasons") or [])
        out.append(
            f"Every step was done but the drill failed ({reasons}): the procedure is "
            "incomplete or too slow for the RTO."
        )
    return out


def runbook_markdown(section: RunbookSection) -> str:
    """The "runbook changes to make" list, ready to paste into a pull request."""
    head = f"### Runbook changes to make: `{section.runbook or 'runbook'}`"
    if not section.changes:
        return f"{head}\n\nNone: every step was done, and no command failed.\n"
    return head + "\n\n" + "\n".join(f"- [ ] {c}" for c in section.changes) + "\n"

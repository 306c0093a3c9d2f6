"""``summary.md``: the run in GitHub-flavoured Markdown, for a CI job's step summary or a ticket."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tabulate import tabulate

from drillbook.report.fmt import fmt_s
from drillbook.report.journal import seq
from drillbook.report.views import slow_steps, summarize

__all__ = ["append_step_summary", "render_summary_md", "write_summary_md"]

_ICON = {"passed": "✅ passed", "failed": "❌ failed", "aborted": "⚠️ aborted", "error": "💥 error"}


def _cell(text: str) -> str:
    """Table cells come from journals: a ``|`` or newline must not break the table."""
    return text.replace("|", "\\|").replace("\n", " ")


def render_summary_md(journal: Mapping[str, Any]) -> str:
    """Headline, one table row per drill, then why each non-passing drill did not pass."""
    drills = [d for d in seq(journal.get("drills")) if isinstance(d, Mapping)]
    summaries = [summarize(d) for d in drills]
    counts: dict[str, int] = {}
    for s in summaries:
        counts[s.verdict] = counts.get(s.verdict, 0) + 1
    env = journal.get("environment") if isinstance(journal.get("environment"), Mapping) else {}
    assert isinstance(env, Mapping)
    tally = ", ".join(f"{n} {v}" for v, n in counts.items()) or "no drills ran"
    lines = [
        f"## drillbook run `{journal.get('run_id')}`",
        "",
        f"**{tally}** · environment `{env.get('name') or '-'}` · exit status "
        f"{journal.get('exit_status')} · started {journal.get('started_at') or '-'}",
        "",
    ]
    if summaries:
        rows = []
        for drill, s in zip(drills, summaries, strict=True):
            slowest = max(slow_steps(drill), key=lambda st: st.duration_s or 0.0, default=None)
            rows.append(
                [
                    _cell(s.id),
                    _ICON.get(s.verdict, s.verdict),
                    _cell(s.targets),
                    fmt_s(s.ttd_s),
                    s.rta_text,
                    fmt_s(s.rto_s),
                    s.rpa_text,
                    fmt_s(s.rpo_s),
                    _cell(f"{slowest.name} ({fmt_s(slowest.duration_s)})") if slowest else "-",
                ]
            )
        lines.append(
            tabulate(
                rows,
                headers=[
                    "drill",
                    "verdict",
                    "target",
                    "TTD",
                    "RTA [bracket]",
                    "RTO",
                    "RPA",
                    "RPO",
                    "slowest step",
                ],
                tablefmt="github",
                disable_numparse=True,
            )
        )
        lines.append("")
    failing = [s for s in summaries if s.verdict != "passed"]
    if failing:
        lines.append("### Why")
        lines.append("")
        for s in failing:
            why = "; ".join(s.reasons) or "no reason recorded"
            lines.append(f"- **{s.id}** ({s.verdict}): {why}")
        lines.append("")
    for drill in drills:
        lines.extend(_runbook_lines(drill))
    lines.append(
        "_RTA: start of the first stable run of passing probes − t_inject, with its bracket "
        "[last failing, first passing probe]. See report.html for definitions._"
    )
    return "\n".join(lines) + "\n"


def _runbook_lines(drill: Mapping[str, Any]) -> list[str]:
    """The drill's runbook section: each step, then the changes to make (paste-able)."""
    from drillbook.runbook.findings import runbook_section

    rb = runbook_section(drill)
    if rb is None:
        return []
    lines = [f"### Runbook: {_cell(str(drill.get('id')))} (`{rb.runbook}`)", ""]
    if rb.warning:
        lines += [f"> ⚠️ **Warning:** {rb.warning}", ""]
    rows = [
        [
            str(r.index),
            _cell(r.name),
            r.kind,
            fmt_s(r.duration_s),
            "-" if r.rto_share is None else f"{r.rto_share:.1%}",
            r.result,
            _cell(r.note),
            _cell(r.command.split("\n")[0])
            + ("" if r.exit_code is None else f" (exit {r.exit_code})"),
        ]
        for r in rb.steps
    ]
    lines.append(
        tabulate(
            rows,
            headers=["#", "step", "kind", "duration", "share of RTO", "result", "note", "command"],
            tablefmt="github",
            disable_numparse=True,
        )
    )
    lines.append("")
    if rb.rollback:
        lines += ["Rollback (kept from the runbook, not run by the drill):", ""]
        lines += [f"{n}. {_cell(r)}" for n, r in enumerate(rb.rollback, start=1)] + [""]
    lines += [rb.changes_markdown.replace("### ", "#### ", 1), ""]
    return lines


def write_summary_md(run_dir: Path, journal: Mapping[str, Any]) -> Path:
    path = run_dir / "summary.md"
    path.write_text(render_summary_md(journal), encoding="utf-8")
    return path


def append_step_summary(text: str, environ: Mapping[str, str] | None = None) -> Path | None:
    """Append to ``$GITHUB_STEP_SUMMARY`` when set (GitHub Actions renders it on the run page)."""
    target = (environ if environ is not None else os.environ).get("GITHUB_STEP_SUMMARY")
    if not target:
        return None
    path = Path(target)
    with path.open("a", encoding="utf-8") as fh:
        fh.write(text if text.endswith("\n") else text + "\n")
    return path

"""The per-run ``report.html``: one self-contained page (inline CSS and SVG, no script, no network).

It is the page someone opens after a drill, so it leads with the verdicts and the measures against
their objectives, then tells each drill's story on one time axis.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from drillbook.report.definitions import MEASURE_DEFINITIONS, PERCENTILE_NOTE
from drillbook.report.fmt import fmt_bracket, fmt_s
from drillbook.report.journal import num, seq
from drillbook.report.series import value_series
from drillbook.report.svg import measure_bar, timeline_chart
from drillbook.report.views import params_text, slow_steps, summarize
from drillbook.runbook.findings import runbook_section

__all__ = ["environment", "render_run_html", "write_run_html"]

if TYPE_CHECKING:  # jinja2 is imported lazily, when a page is rendered
    import jinja2


@functools.cache
def environment() -> jinja2.Environment:
    """The template environment: package templates, autoescaping on, undefined names an error."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("drillbook.report", "templates"),
        bytecode_cache=_bytecode_cache(jinja2),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["dur"] = fmt_s
    env.filters["bracket"] = fmt_bracket
    return env


def _bytecode_cache(jinja2: Any) -> Any:
    """Compiled templates cached per user (keyed by source checksum), so a CLI run skips the
    template compile; none when the cache folder cannot be written."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    folder = Path(base) / "drillbook" / "jinja2"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    if not os.access(folder, os.W_OK):
        return None
    return jinja2.FileSystemBytecodeCache(str(folder))


def _status(
    ok: bool | None, actual: float | None, objective: float | None, missing: str
) -> tuple[bool | None, str]:
    """(ok, words) for a measure beside its objective; a missing measure under an objective is
    a miss (an unrecovered drill has no RTA), with no objective it is only information."""
    if ok is True:
        return True, "within objective"
    if ok is False:
        return False, "objective missed"
    if actual is None and objective is not None:
        return (False if missing != "not measured" else None), missing
    return None, "no objective" if objective is None else "not measured"


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _drill_view(drill: Mapping[str, Any]) -> dict[str, Any]:
    summary = summarize(drill)
    measures = _mapping(drill.get("measures"))
    objectives = _mapping(drill.get("objectives"))
    fault = _mapping(drill.get("fault"))
    ttd_ok = (
        None
        if summary.ttd_s is None or summary.response_target_s is None
        else summary.ttd_s <= summary.response_target_s
    )
    bars = [
        (
            "RTA vs RTO",
            measure_bar("RTA", summary.rta_s, summary.rto_s, measures.get("rta_bracket_s")),
            *_status(
                summary.rta_ok,
                summary.rta_s,
                summary.rto_s,
                "not observed" if summary.outage_observed is False else "not recovered",
            ),
        ),
        (
            "TTD vs response target",
            measure_bar(
                "TTD", summary.ttd_s, summary.response_target_s, measures.get("ttd_bracket_s")
            ),
            *_status(ttd_ok, summary.ttd_s, summary.response_target_s, "not detected"),
        ),
    ]
    if summary.rpa_s is not None or summary.rpo_s is not None:
        bars.append(
            (
                "RPA vs RPO",
                measure_bar("RPA", summary.rpa_s, summary.rpo_s),
                *_status(summary.rpa_ok, summary.rpa_s, summary.rpo_s, "not measured"),
            )
        )
    alert_targets = _mapping(objectives.get("alert_targets_s"))
    for key, label in (("tta", "TTA"), ("ttn", "TTN"), ("ttack", "TTAck")):
        value, target = num(measures.get(f"{key}_s")), num(alert_targets.get(key))
        if value is None and not (key == "tta" and drill.get("alerts")):
            continue  # not an alert drill, or this measure was not asked for
        bracket = measures.get(f"{key}_bracket_s")
        upper = (
            num(bracket[1]) if isinstance(bracket, list | tuple) and len(bracket) == 2 else value
        )
        ok = None if upper is None or target is None else upper <= target
        name = measures.get("alert") or "alert"
        bars.append(
            (
                f"{label} vs response target ({name})",
                measure_bar(label, value, target, bracket),
                *_status(ok, value, target, "never fired" if key == "tta" else "not measured"),
            )
        )
    return {
        "s": summary,
        "drill": drill,
        "nodeid": str(drill.get("nodeid") or ""),
        "description": str(drill.get("description") or ""),
        "runbook": str(drill.get("runbook") or ""),
        "source": str(drill.get("source") or ""),
        "controls": [str(c) for c in seq(drill.get("controls") or objectives.get("controls"))],
        "targets": [t for t in seq(drill.get("targets")) if isinstance(t, Mapping)],
        "fault": fault,
        "fault_params": params_text(fault.get("params")),
        "timeline": timeline_chart(drill),
        "values": value_series(drill),
        "bars": bars,
        "ttd_bracket": fmt_bracket(measures.get("ttd_bracket_s")),
        "rta_bracket": fmt_bracket(measures.get("rta_bracket_s")),
        "probe_samples": measures.get("probe_samples"),
        "moments": [
            (label, measures.get(key))
            for label, key in (
                ("t_inject", "t_inject"),
                ("detected", "t_detect"),
                ("recovered", "t_recovered"),
                ("verified", "t_verified"),
                ("revert confirmed", "t_revert_confirmed"),
            )
        ],
        "steps": slow_steps(drill),
        "rb": runbook_section(drill),
        "checks": [c for c in seq(drill.get("checks")) if isinstance(c, Mapping)],
        "guards": [g for g in seq(drill.get("guards")) if isinstance(g, Mapping)],
        "reverts": [r for r in seq(drill.get("reverts")) if isinstance(r, Mapping)],
        "lost_writes": measures.get("lost_writes"),
        "ledger": _mapping(measures.get("ledger")),
        "relapse_s": num(measures.get("relapse_s")),
        "relapse_probe": measures.get("relapse_probe"),
    }


def render_run_html(journal: Mapping[str, Any]) -> str:
    """The whole report page for one run."""
    drills = [_drill_view(d) for d in seq(journal.get("drills")) if isinstance(d, Mapping)]
    counts: dict[str, int] = {}
    for view in drills:
        counts[view["s"].verdict] = counts.get(view["s"].verdict, 0) + 1
    env_info = _mapping(journal.get("environment"))
    return (
        environment()
        .get_template("report.html.j2")
        .render(
            journal=journal,
            run_id=str(journal.get("run_id")),
            env=env_info,
            drills=drills,
            counts=counts,
            exit_status=journal.get("exit_status"),
            duration_s=_run_duration(journal),
            definitions=MEASURE_DEFINITIONS,
            percentile_note=PERCENTILE_NOTE,
        )
    )


def _run_duration(journal: Mapping[str, Any]) -> float | None:
    total = [num(d.get("duration_s")) for d in seq(journal.get("drills")) if isinstance(d, Mapping)]
    measured = [t for t in total if t is not None]
    return sum(measured) if measured else None


def write_run_html(run_dir: Path, journal: Mapping[str, Any]) -> Path:
    """Write ``report.html`` into the run folder."""
    path = run_dir / "report.html"
    path.write_text(render_run_html(journal), encoding="utf-8")
    return path

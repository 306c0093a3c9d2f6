"""The after-action report (NIST SP 800-84 contents) built from a run's journal.

Why derived and not typed: the journal already holds scope, objectives, timeline, checks and
verdicts; what only people know (participants, owners, remediation) comes from an optional notes
mapping, and anything missing is shown as missing rather than invented.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from drillbook.evidence.controls import known_controls

__all__ = ["AAR_STANDARD", "aar_summary", "build_aar"]

AAR_STANDARD = "NIST SP 800-84 after-action report contents"

_TIMES = ("t_inject", "t_detect", "t_ack", "t_restore", "t_verified", "t_revert_confirmed")


def _iso_plus(base: str | None, offset: Any) -> str | None:
    if not base or not isinstance(offset, int | float):
        return None
    try:
        start = datetime.fromisoformat(base.replace("Z", "+00:00"))
    except ValueError:
        return None
    moment = start + timedelta(seconds=float(offset))
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _t_ack(drill: Mapping[str, Any], measures: Mapping[str, Any]) -> tuple[str | None, str]:
    """When someone (or something) acted on the detection: the first recovery step's start."""
    if measures.get("t_ack"):
        return str(measures["t_ack"]), "journal measures.t_ack"
    for event in drill.get("timeline", []) or []:
        if isinstance(event, Mapping) and event.get("kind") == "step" and event.get("t"):
            return str(event["t"]), f"first recovery step ({event.get('name', 'step')})"
    return None, "no recovery step recorded"


def _timeline(drill: Mapping[str, Any]) -> dict[str, Any]:
    measures: Mapping[str, Any] = drill.get("measures") or {}
    t_ack, ack_source = _t_ack(drill, measures)
    return {
        "drill": drill.get("id"),
        "t_inject": measures.get("t_inject"),
        "t_detect": measures.get("t_detect"),
        "t_ack": t_ack,
        "t_ack_source": ack_source,
        "t_restore": measures.get("t_recovered"),
        "t_verified": measures.get("t_verified"),
        "t_revert_confirmed": measures.get("t_revert_confirmed"),
        "events": list(drill.get("timeline", []) or []),
    }


def _met(actual: Any, target: Any) -> bool | None:
    if not isinstance(actual, int | float) or not isinstance(target, int | float):
        return None
    return float(actual) <= float(target)


def _objectives(drill: Mapping[str, Any]) -> dict[str, Any]:
    obj: Mapping[str, Any] = drill.get("objectives") or {}
    m: Mapping[str, Any] = drill.get("measures") or {}
    return {
        "drill": drill.get("id"),
        "severity": drill.get("severity") or obj.get("severity"),
        "rto": {
            "target_s": obj.get("rto_s"),
            "actual_s": m.get("rta_s"),
            "bracket_s": m.get("rta_bracket_s"),
            "met": _met(m.get("rta_s"), obj.get("rto_s")),
        },
        "rpo": {
            "target_s": obj.get("rpo_s"),
            "actual_s": m.get("rpa_s"),
            "lost_writes": m.get("lost_writes"),
            "met": _met(m.get("rpa_s"), obj.get("rpo_s")),
        },
        "response": {
            "target_s": obj.get("response_target_s"),
            "actual_s": m.get("ttd_s"),
            "bracket_s": m.get("ttd_bracket_s"),
            "met": _met(m.get("ttd_s"), obj.get("response_target_s")),
        },
        "success_criteria": [
            {"name": c.get("name"), "ok": c.get("ok"), "detail": c.get("detail")}
            for c in drill.get("checks", []) or []
            if isinstance(c, Mapping)
        ],
    }


def _is_integrity(check: Mapping[str, Any]) -> bool:
    name = str(check.get("name", ""))
    return name.startswith(("verify:", "rpa", "ledger", "integrity"))


def _derived_issues(drills: Sequence[Mapping[str, Any]], owner: str) -> list[dict[str, Any]]:
    issues: list[dict[str, Any]] = []

    def add(drill: Mapping[str, Any], title: str, severity: Any) -> None:
        issues.append(
            {
                "id": f"I-{len(issues) + 1}",
                "drill": drill.get("id"),
                "title": title,
                "severity": severity or "unrated",
                "owner": owner,
                "status": "open",
                "source": "derived from the journal",
            }
        )

    for drill in drills:
        severity = drill.get("severity")
        for check in drill.get("checks", []) or []:
            if isinstance(check, Mapping) and check.get("ok") is False:
                add(drill, f"check {check.get('name')} failed: {check.get('detail')}", severity)
        if drill.get("verdict") in ("aborted", "error"):
            reasons = "; ".join(str(r) for r in drill.get("reasons", []) or []) or "no reason"
            add(drill, f"drill {drill.get('verdict')}: {reasons}", severity)
        for revert in drill.get("reverts", []) or []:
            if isinstance(revert, Mapping) and not (revert.get("ok") and revert.get("verified")):
                add(
                    drill,
                    f"revert of {revert.get('fault')} not confirmed: {revert.get('detail')}",
                    "P1",
                )
    return issues


def _participants(journal: Mapping[str, Any], notes: Mapping[str, Any]) -> list[dict[str, Any]]:
    given = notes.get("participants")
    if isinstance(given, list) and given:
        return [
            {"name": str(p.get("name")), "role": str(p.get("role", "participant"))}
            for p in given
            if isinstance(p, Mapping)
        ]
    env: Mapping[str, Any] = journal.get("environment") or {}
    people = [{"name": str(env.get("user") or "unknown"), "role": "drill operator (ran drillbook)"}]
    for drill in journal.get("drills", []) or []:
        for step in drill.get("steps", []) or []:
            if isinstance(step, Mapping) and step.get("kind") == "manual":
                people.append({"name": "(operator)", "role": f"manual step: {step.get('name')}"})
    return people


def build_aar(journal: Mapping[str, Any], notes: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The after-action report as a JSON-able dict (also the source of the HTML)."""
    notes = notes or {}
    drills: list[Mapping[str, Any]] = [
        d for d in journal.get("drills", []) or [] if isinstance(d, Mapping)
    ]
    env: Mapping[str, Any] = journal.get("environment") or {}
    owner = str(notes.get("owner") or "unassigned")
    issues = _derived_issues(drills, owner)
    for extra in notes.get("issues", []) or []:
        if isinstance(extra, Mapping):
            issues.append(
                {
                    "id": str(extra.get("id") or f"I-{len(issues) + 1}"),
                    "drill": extra.get("drill"),
                    "title": str(extra.get("title", "")),
                    "severity": str(extra.get("severity", "unrated")),
                    "owner": str(extra.get("owner", owner)),
                    "status": str(extra.get("status", "open")),
                    "source": "notes",
                }
            )
    remediation = [dict(r) for r in notes.get("remediation", []) or [] if isinstance(r, Mapping)]
    covered = {str(r.get("issue")) for r in remediation}
    for issue in issues:
        if issue["id"] not in covered:
            remediation.append(
                {
                    "issue": issue["id"],
                    "action": "to be decided",
                    "owner": issue["owner"],
                    "due": None,
                }
            )
    catalog = known_controls()
    control_ids = sorted({str(c) for d in drills for c in d.get("controls", []) or []})
    return {
        "schema_version": 1,
        "standard": AAR_STANDARD,
        "run_id": journal.get("run_id"),
        "started_at": journal.get("started_at"),
        "ended_at": journal.get("ended_at"),
        "scope": {
            "statement": str(notes.get("scope") or ""),
            "environment": env.get("name"),
            "dry_run": env.get("dry_run"),
            "drills": [
                {
                    "id": d.get("id"),
                    "scenario": d.get("scenario"),
                    "description": d.get("description"),
                    "runbook": d.get("runbook"),
                    "source": d.get("source"),
                    "targets": d.get("targets", []),
                    "fault": {k: (d.get("fault") or {}).get(k) for k in ("type", "plan")},
                }
                for d in drills
            ],
        },
        "objectives": [_objectives(d) for d in drills],
        "participants": _participants(journal, notes),
        "timeline": [_timeline(d) for d in drills],
        "integrity_checks": [
            {
                "drill": d.get("id"),
                "name": c.get("name"),
                "ok": c.get("ok"),
                "detail": c.get("detail"),
            }
            for d in drills
            for c in d.get("checks", []) or []
            if isinstance(c, Mapping) and _is_integrity(c)
        ]
        + [
            {
                "drill": d.get("id"),
                "name": "ledger lost_writes",
                "ok": (d.get("measures") or {}).get("lost_writes") == 0,
                "detail": f"{(d.get('measures') or {}).get('lost_writes')} writes lost",
            }
            for d in drills
            if (d.get("measures") or {}).get("lost_writes") is not None
        ],
        "results": [
            {"drill": d.get("id"), "verdict": d.get("verdict"), "reasons": d.get("reasons", [])}
            for d in drills
        ],
        "issues": issues,
        "remediation": remediation,
        "runbook": _runbooks(drills),
        "controls": [
            {
                "id": c,
                "known": c in catalog,
                "title": catalog[c].title if c in catalog else None,
                "framework": catalog[c].framework if c in catalog else None,
            }
            for c in control_ids
        ],
        "signoffs": {
            "required_roles": list(
                notes.get("signoff_roles", []) or ["drill lead", "service owner"]
            ),
            "recorded_in": "signoffs/*.dsse.json (signed; listed by `drillbook evidence verify`)",
        },
    }


def _runbooks(drills: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Each runbook-driven drill's steps, findings and the changes to make (paste-able)."""
    from dataclasses import asdict

    from drillbook.runbook.findings import runbook_section

    out: list[dict[str, Any]] = []
    for d in drills:
        rb = runbook_section(d)
        if rb is None:
            continue
        out.append(
            {
                "drill": d.get("id"),
                "runbook": rb.runbook,
                "warning": rb.warning or None,
                "steps": [asdict(r) for r in rb.steps],
                "largest_share_of_rto": [r.name for r in rb.biggest],
                "failed_or_skipped": [r.name for r in rb.failed],
                "nonzero_commands": [
                    {"step": r.name, "command": r.command, "exit": r.exit_code} for r in rb.nonzero
                ],
                "rollback": rb.rollback,
                "changes_markdown": rb.changes_markdown,
            }
        )
    return out


def aar_summary(aar: Mapping[str, Any]) -> dict[str, Any]:
    """The short form that goes into the signed in-toto predicate."""
    return {
        "run_id": aar.get("run_id"),
        "started_at": aar.get("started_at"),
        "ended_at": aar.get("ended_at"),
        "environment": (aar.get("scope") or {}).get("environment"),
        "results": aar.get("results"),
        "objectives": [
            {"drill": o["drill"], "rto": o["rto"], "rpo": o["rpo"]}
            for o in aar.get("objectives", [])
        ],
        "timeline": [{k: t.get(k) for k in ("drill", *_TIMES)} for t in aar.get("timeline", [])],
        "controls": [c["id"] for c in aar.get("controls", [])],
        "issues": len(aar.get("issues", [])),
    }

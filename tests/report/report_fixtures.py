"""Fixture journals in exactly the pinned journal.json shape (until real runs are at hand).

``make_drill`` builds a drill whose timeline is consistent with its measures: probe samples every
``interval`` seconds, failing from t_inject + ttd until t_inject + rta, so charts and tables can
be checked against numbers the test chose.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

T0 = datetime(2026, 11, 22, 14, 1, 2, 123000, tzinfo=UTC)


def iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def make_drill(
    scenario: str = "process_restart",
    *,
    verdict: str = "passed",
    started: datetime = T0,
    ttd: float | None = 0.24,
    rta: float | None = 1.21,
    rto: float | None = 30.0,
    rpa: float | None = None,
    rpo: float | None = None,
    lost_writes: int | None = None,
    target: str = "demo-service",
    backend: str = "local",
    interval: float = 0.25,
    steps: list[tuple[str, float, bool]] | None = None,
    reasons: list[str] | None = None,
    guard_tripped: bool = False,
) -> dict[str, Any]:
    inject_at = 0.31
    end_recover = inject_at + (rta if rta is not None else 8.0)
    phases = [
        {"phase": "steady_state", "start_s": 0.0, "end_s": 0.3},
        {"phase": "inject", "start_s": 0.3, "end_s": inject_at},
        {"phase": "detect", "start_s": inject_at, "end_s": inject_at + (ttd or 0.0)},
        {"phase": "recover", "start_s": inject_at + (ttd or 0.0), "end_s": end_recover},
        {"phase": "verify", "start_s": end_recover, "end_s": end_recover + 1.0},
        {"phase": "revert", "start_s": end_recover + 1.0, "end_s": end_recover + 1.2},
    ]
    duration = end_recover + 1.2
    timeline: list[dict[str, Any]] = [
        {
            "t": iso(started),
            "offset_s": 0.0,
            "kind": "phase",
            "phase": "steady_state",
            "detail": "",
        },
        {
            "t": iso(started + timedelta(seconds=inject_at)),
            "offset_s": inject_at,
            "kind": "inject",
            "detail": f"SIGKILL {target}",
        },
    ]
    t = 0.05
    while t < end_recover + 1.0:
        rel = t - inject_at
        failing = rel >= (ttd or 0.0) and (rta is None or rel < rta) and rel >= 0
        timeline.append(
            {
                "t": iso(started + timedelta(seconds=t)),
                "offset_s": round(t, 3),
                "kind": "probe",
                "probe": "http",
                "ok": not failing,
                "latency_s": 0.002,
                "end_offset_s": round(t + 0.002, 3),
                "detail": "connection refused" if failing else "200 OK",
            }
        )
        t += interval
    step_list = []
    start = inject_at + (ttd or 0.0)
    for name, dur, ok in steps or [
        ("automatic restart", max((rta or 1.0) - (ttd or 0.0), 0.1), True)
    ]:
        step_list.append(
            {
                "name": name,
                "kind": "scripted",
                "type": "local.start",
                "start_s": start,
                "duration_s": dur,
                "ok": ok,
                "detail": "done" if ok else "exit 1",
            }
        )
        timeline.append(
            {
                "t": iso(started + timedelta(seconds=start)),
                "offset_s": start,
                "kind": "step",
                "name": name,
                "step_kind": "scripted",
                "ok": ok,
                "duration_s": dur,
            }
        )
        start += dur
    checks = [
        {
            "name": "rta<=rto",
            "ok": rta is not None and (rto is None or rta <= rto),
            "detail": f"{rta}s <= {rto}s",
        }
    ]
    if rpo is not None:
        checks.append(
            {
                "name": "rpa<=rpo",
                "ok": rpa is not None and rpa <= rpo,
                "detail": f"{rpa}s <= {rpo}s",
            }
        )
    t_inject = started + timedelta(seconds=inject_at)
    return {
        "id": scenario,
        "nodeid": f"drills/test_scenarios.py::test_scenario[{scenario}]",
        "scenario": scenario,
        "description": f"Kill {target} and time its recovery",
        "runbook": f"docs/runbooks/{scenario}.md",
        "source": f"scenarios/{scenario}.yaml",
        "severity": "P2",
        "controls": ["SOC2-A1.3", "ISO22301-8.5"],
        "targets": [{"name": target, "backend": backend, "resolved": ["pid 4242"]}],
        "objectives": {
            "rto_s": rto,
            "rpo_s": rpo,
            "response_target_s": 14400.0,
            "severity": "P2",
            "controls": ["SOC2-A1.3", "ISO22301-8.5"],
        },
        "fault": {
            "type": "process.kill",
            "plan": f"SIGKILL {target} (pid 4242)",
            "params": {"signal": "KILL"},
        },
        "started_at": iso(started),
        "ended_at": iso(started + timedelta(seconds=duration)),
        "duration_s": round(duration, 3),
        "phases": phases,
        "timeline": timeline,
        "steps": step_list,
        "measures": {
            "ttd_s": ttd,
            "ttd_bracket_s": [max((ttd or 0) - interval, 0.0), ttd] if ttd else None,
            "rta_s": rta,
            "rta_bracket_s": [rta - interval, rta + 0.01] if rta else None,
            "rpa_s": rpa,
            "lost_writes": lost_writes,
            "t_inject": iso(t_inject),
            "t_detect": iso(t_inject + timedelta(seconds=ttd)) if ttd is not None else None,
            "t_recovered": iso(t_inject + timedelta(seconds=rta)) if rta is not None else None,
            "t_verified": None,
            "t_revert_confirmed": iso(started + timedelta(seconds=duration)),
            "probe_samples": sum(1 for e in timeline if e["kind"] == "probe"),
        },
        "checks": checks,
        "verdict": verdict,
        "reasons": reasons or [],
        "guards": [
            {
                "name": "error-budget",
                "failures": 3 if guard_tripped else 0,
                "tripped": guard_tripped,
            }
        ],
        "reverts": [
            {
                "fault": "process.kill",
                "at": iso(started + timedelta(seconds=duration)),
                "ok": True,
                "verified": True,
                "detail": "process running",
            }
        ],
    }


def make_journal(
    run_id: str = "20261122T140102Z-3f9a1c",
    drills: list[dict[str, Any]] | None = None,
    started: datetime = T0,
    exit_status: int | None = None,
) -> dict[str, Any]:
    drills = drills if drills is not None else [make_drill(started=started)]
    if exit_status is None:
        exit_status = 0 if all(d["verdict"] == "passed" for d in drills) else 1
    return {
        "schema_version": 1,
        "run_id": run_id,
        "started_at": iso(started),
        "ended_at": iso(
            started + timedelta(seconds=sum(d.get("duration_s") or 0.0 for d in drills) + 1)
        ),
        "drillbook_version": "0.1.0",
        "environment": {
            "name": "sandbox",
            "host": "ci-runner-1",
            "user": "sre",
            "python": "3.11.7",
            "platform": "Linux",
            "git_commit": "abc123",
            "config_source": "drillbook.yaml",
            "dry_run": False,
        },
        "exit_status": exit_status,
        "drills": drills,
    }


def sample_run() -> dict[str, Any]:
    """A run with a pass, a slow failing restore with data loss, and an aborted drill."""
    return make_journal(
        drills=[
            make_drill("process_restart"),
            make_drill(
                "db_restore",
                verdict="failed",
                ttd=0.8,
                rta=41.5,
                rto=30.0,
                rpa=2.4,
                rpo=1.0,
                lost_writes=120,
                target="pg-primary",
                backend="postgres",
                interval=0.5,
                steps=[
                    ("stop writers", 0.4, True),
                    ("restore base backup", 31.0, True),
                    ("replay WAL", 6.2, True),
                    ("start primary", 1.1, True),
                ],
                reasons=["RTA 41.5s > RTO 30s", "RPA 2.4s > RPO 1s (120 writes lost)"],
                started=T0 + timedelta(seconds=10),
            ),
            make_drill(
                "region_loss",
                verdict="aborted",
                ttd=0.3,
                rta=None,
                rto=120.0,
                target="region-a",
                backend="postgres",
                guard_tripped=True,
                steps=[("promote region-b", 2.0, False)],
                reasons=["guard error-budget tripped after 3 failures; fault reverted"],
                started=T0 + timedelta(seconds=70),
            ),
        ]
    )


def synthetic_journals(
    runs: int, scenarios: int, *, seed: int = 7, start: datetime | None = None, days: int = 540
) -> list[dict[str, Any]]:
    """``runs`` one-drill journals over ``scenarios`` scenarios spread across ``days`` days.

    Light (no probe timeline) so thousands can be recorded quickly; RTAs are log-normal around a
    per-scenario base with ~8% failures, like real recovery times (heavy tail).
    """
    import random

    rng = random.Random(seed)
    start = start or datetime(2025, 7, 1, tzinfo=UTC)
    out = []
    for i in range(runs):
        k = i % scenarios
        name = f"scenario_{k:02d}"
        base = 2.0 + k * 0.7
        when = start + timedelta(seconds=i * days * 86400 / runs)
        rta = round(base * rng.lognormvariate(0, 0.35), 3)
        rto = round(base * 2.5, 1)
        failed = rng.random() < 0.08 or rta > rto
        ttd = round(rng.uniform(0.05, 0.6), 3)
        drill = {
            "id": name,
            "nodeid": f"drills/test_scenarios.py::test_scenario[{name}]",
            "scenario": name,
            "description": "",
            "runbook": "",
            "source": f"scenarios/{name}.yaml",
            "severity": "P2",
            "controls": [],
            "targets": [{"name": f"target-{k % 5}", "backend": "local", "resolved": []}],
            "objectives": {
                "rto_s": rto,
                "rpo_s": None,
                "response_target_s": 14400.0,
                "severity": "P2",
                "controls": [],
            },
            "fault": {"type": "process.kill", "plan": "", "params": {}},
            "started_at": iso(when),
            "ended_at": iso(when + timedelta(seconds=rta + 2)),
            "duration_s": rta + 2,
            "phases": [],
            "timeline": [],
            "steps": [],
            "measures": {
                "ttd_s": ttd,
                "ttd_bracket_s": [0.0, ttd],
                "rta_s": rta,
                "rta_bracket_s": [rta - 0.25, rta],
                "rpa_s": None,
                "lost_writes": None,
                "t_inject": iso(when),
                "t_detect": None,
                "t_recovered": None,
                "t_verified": None,
                "t_revert_confirmed": None,
                "probe_samples": 0,
            },
            "checks": [{"name": "rta<=rto", "ok": rta <= rto, "detail": f"{rta}s vs {rto}s"}],
            "verdict": "failed" if failed else "passed",
            "reasons": [f"RTA {rta}s > RTO {rto}s"]
            if rta > rto
            else (["verify:rows: 3 rows missing"] if failed else []),
            "guards": [],
            "reverts": [],
        }
        out.append(make_journal(run_id=f"syn-{i:06d}", drills=[drill], started=when))
    return out

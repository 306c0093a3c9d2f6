"""Run folders in exactly the pinned journal/events shape, and configs with planted secrets."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from drillbook.clock import utc_iso

MakeRun = Callable[..., Path]

CANARY_CONFIG: dict[str, Any] = {
    "environment": "sandbox",
    "targets": {
        "pg-primary": {
            "backend": "postgres",
            "dsn": "postgresql://drill:CANARY-SECRET-DSN-PW@127.0.0.1:5432/app",
        },
        "demo-service": {"backend": "local", "command": ["python", "-m", "http.server"]},
        "api": {"backend": "local", "token": "CANARY-TOKEN-9f8e7d", "headers": {"x": "y"}},
        "aws": {"backend": "aws", "aws_secret_access_key": "CANARY-AWS-KEY-abcdef"},
    },
    "backends": {"postgres": {"password": "CANARY-PG-PASSWORD"}},
    "safety": {"max_targets": 1, "max_percent": 50, "require_opt_in": True},
}
CANARIES = [
    "CANARY-SECRET-DSN-PW",
    "CANARY-TOKEN-9f8e7d",
    "CANARY-AWS-KEY-abcdef",
    "CANARY-PG-PASSWORD",
]


def _iso(moment: datetime) -> str:
    return utc_iso(moment)


def write_events(path: Path, events: list[dict[str, Any]]) -> None:
    """Write events with seq and the prev hash chain exactly as the engine pins it."""
    prev = "0" * 64
    lines: list[bytes] = []
    for seq, event in enumerate(events):
        line = json.dumps({"seq": seq, **event, "prev": prev}, sort_keys=False).encode()
        lines.append(line)
        prev = hashlib.sha256(line).hexdigest()
    path.write_bytes(b"".join(line + b"\n" for line in lines))


def make_journal_and_events(
    run_dir: Path,
    *,
    run_id: str,
    scenario: str,
    controls: list[str],
    started: datetime,
    verdict: str = "passed",
) -> None:
    t0 = started
    t_inject = t0 + timedelta(seconds=0.31)

    def at(offset: float) -> str:
        return _iso(t_inject + timedelta(seconds=offset))

    base = {"run_id": run_id}
    events: list[dict[str, Any]] = [
        {**base, "drill": None, "kind": "run_start", "t": _iso(t0), "mono_s": 0.0},
        {**base, "drill": scenario, "kind": "drill_start", "t": _iso(t0), "mono_s": 0.01},
        {
            **base,
            "drill": scenario,
            "kind": "phase",
            "phase": "steady_state",
            "t": _iso(t0),
            "mono_s": 0.02,
        },
        {
            **base,
            "drill": scenario,
            "kind": "intent",
            "fault": "process.kill",
            "t": at(-0.01),
            "mono_s": 0.30,
        },
        {
            **base,
            "drill": scenario,
            "kind": "inject",
            "detail": "SIGKILL pid 4242",
            "t": at(0),
            "mono_s": 0.31,
        },
        {
            **base,
            "drill": scenario,
            "kind": "probe",
            "probe": "http",
            "ok": False,
            "latency_s": 0.002,
            "detail": "connection refused",
            "t": at(0.24),
            "mono_s": 0.55,
        },
        {**base, "drill": scenario, "kind": "detect", "t": at(0.24), "mono_s": 0.55},
        {
            **base,
            "drill": scenario,
            "kind": "step",
            "name": "restart",
            "step_kind": "scripted",
            "ok": True,
            "duration_s": 0.9,
            "t": at(0.3),
            "mono_s": 0.61,
        },
        {**base, "drill": scenario, "kind": "recovered", "t": at(1.21), "mono_s": 1.52},
        {**base, "drill": scenario, "kind": "verify", "ok": True, "t": at(1.3), "mono_s": 1.61},
        {**base, "drill": scenario, "kind": "revert", "ok": True, "t": at(1.4), "mono_s": 1.71},
        {
            **base,
            "drill": scenario,
            "kind": "verdict",
            "verdict": verdict,
            "t": at(1.5),
            "mono_s": 1.81,
        },
        {**base, "drill": scenario, "kind": "drill_end", "t": at(1.5), "mono_s": 1.82},
        {**base, "drill": None, "kind": "run_end", "exit_status": 0, "t": at(1.6), "mono_s": 1.9},
    ]
    write_events(run_dir / "events.jsonl", events)
    ok = verdict == "passed"
    journal = {
        "schema_version": 1,
        "run_id": run_id,
        "started_at": _iso(t0),
        "ended_at": at(1.6),
        "drillbook_version": "0.1.0",
        "environment": {
            "name": "sandbox",
            "host": "drillhost",
            "user": "alice",
            "python": "3.11.7",
            "platform": "Linux",
            "git_commit": "abc123",
            "config_source": "drillbook.yaml",
            "dry_run": False,
        },
        "exit_status": 0 if ok else 1,
        "drills": [
            {
                "id": scenario,
                "nodeid": f"drills/test_scenarios.py::test_scenario[{scenario}]",
                "scenario": scenario,
                "description": "Kill the demo service <b>and</b> watch it come back",
                "runbook": "docs/runbooks/process_restart.md",
                "source": f"scenarios/{scenario}.yaml",
                "severity": "P2",
                "controls": controls,
                "targets": [{"name": "demo-service", "backend": "local", "resolved": ["pid 4242"]}],
                "objectives": {
                    "rto_s": 30.0,
                    "rpo_s": 0.0,
                    "response_target_s": 14400.0,
                    "severity": "P2",
                    "controls": controls,
                },
                "fault": {
                    "type": "process.kill",
                    "plan": "SIGKILL demo-service (pid 4242)",
                    "params": {"signal": "KILL"},
                },
                "started_at": _iso(t0),
                "ended_at": at(1.5),
                "duration_s": 1.8,
                "phases": [{"phase": "steady_state", "start_s": 0.0, "end_s": 0.3}],
                "timeline": [
                    {
                        "t": _iso(t0),
                        "offset_s": -0.31,
                        "kind": "phase",
                        "phase": "steady_state",
                        "detail": "all probes ok",
                    },
                    {"t": at(0), "offset_s": 0.0, "kind": "inject", "detail": "SIGKILL pid 4242"},
                    {
                        "t": at(0.24),
                        "offset_s": 0.24,
                        "kind": "probe",
                        "probe": "http",
                        "ok": False,
                        "latency_s": 0.002,
                        "end_offset_s": 0.242,
                        "detail": "connection refused",
                    },
                    {
                        "t": at(0.3),
                        "offset_s": 0.3,
                        "kind": "step",
                        "name": "restart",
                        "step_kind": "scripted",
                        "ok": True,
                        "duration_s": 0.9,
                    },
                ],
                "steps": [
                    {
                        "name": "restart",
                        "kind": "scripted",
                        "type": "process.start",
                        "start_s": 0.3,
                        "duration_s": 0.9,
                        "ok": True,
                        "detail": "pid 4300",
                    }
                ],
                "measures": {
                    "ttd_s": 0.24,
                    "ttd_bracket_s": [0.0, 0.25],
                    "rta_s": 1.21 if ok else 45.0,
                    "rta_bracket_s": [0.96, 1.22],
                    "rpa_s": 0.0,
                    "lost_writes": 0,
                    "t_inject": at(0),
                    "t_detect": at(0.24),
                    "t_recovered": at(1.21),
                    "t_verified": at(1.3),
                    "t_revert_confirmed": at(1.4),
                    "probe_samples": 40,
                },
                "checks": [
                    {"name": "rta<=rto", "ok": ok, "detail": "1.21s <= 30s" if ok else "45s > 30s"},
                    {"name": "ttd<=response_target", "ok": True, "detail": "0.24s <= 4h"},
                    {"name": "rpa<=rpo", "ok": True, "detail": "0s <= 0s"},
                    {"name": "verify:rows", "ok": True, "detail": "1000 rows match"},
                ],
                "verdict": verdict,
                "reasons": [] if ok else ["rta 45s > rto 30s"],
                "guards": [{"name": "error-rate", "failures": 0, "tripped": False}],
                "reverts": [
                    {
                        "fault": "process.kill",
                        "at": at(1.4),
                        "ok": True,
                        "verified": True,
                        "detail": "service running",
                    }
                ],
            }
        ],
    }
    (run_dir / "journal.json").write_text(json.dumps(journal, indent=2))

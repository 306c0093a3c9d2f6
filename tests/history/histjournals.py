"""Journals for the history tests: many runs over several quarters, made to catch a store that
orders, compares or rounds differently (mixed case and non-ASCII names, start-time ties, missing
measures, float values that a 4-byte REAL would round)."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

from report_fixtures import T0, make_drill, make_journal

__all__ = ["journals"]

SCENARIOS = ["process_restart", "Zeta_failover", "alpha", "ärger", "db_restore"]
TARGETS = ["web", "Web", "db-1", "é-cache"]


def journals(n: int, seed: int = 19, drills_per_run: int = 2) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        # Every third run starts at the same instant as the one before: ties in started_at.
        slot = i - 1 if i % 3 == 0 and i > 0 else i
        started = T0 - timedelta(days=400) + timedelta(days=slot * 1.7)
        drills = []
        for k in range(drills_per_run):
            rta = None if rng.random() < 0.1 else rng.uniform(0.1, 45.0)
            drill = make_drill(
                rng.choice(SCENARIOS),
                verdict=rng.choice(["passed", "passed", "passed", "failed", "error"]),
                started=started,
                ttd=None if rng.random() < 0.1 else rng.uniform(0.01, 3.0),
                rta=rta,
                rto=rng.choice([None, 10.0, 30.0, 1 / 3]),
                rpa=rng.choice([None, rng.uniform(0.0, 9.0)]),
                rpo=rng.choice([None, 5.0]),
                lost_writes=rng.choice([None, 0, 3, 2**40]),
                target=rng.choice(TARGETS),
                reasons=["RTA 31.2s > RTO 30s", "ünïcode reason"] if rng.random() < 0.2 else None,
            )
            drill["id"] = f"{drill['scenario']}-{k}"
            if rng.random() < 0.3:
                drill["measures"]["tta_s"] = rng.uniform(1.0, 120.0)
            drills.append(drill)
        out.append(make_journal(run_id=f"2026run{i:05d}", drills=drills, started=started))
    return out

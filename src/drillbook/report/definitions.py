"""The definitions of the measures, printed at the foot of every report.

They are quoted from DESIGN.md "Measures" so a reader of a report (an auditor, a reviewer who was
not at the drill) knows exactly what each number means without the source code.
"""

from __future__ import annotations

__all__ = ["MEASURE_DEFINITIONS", "PERCENTILE_NOTE"]

MEASURE_DEFINITIONS: tuple[tuple[str, str], ...] = (
    ("t_inject", "The fault's inject call returned and verify_injected() passed."),
    ("TTD (time to detect)", "First failing probe after t_inject − t_inject."),
    (
        "RTA (recovery time actual)",
        "Start of the first run of passing probes that lasts stable_for − t_inject. Reported with "
        "its bracket [last failing probe, first passing probe]: the true moment lies in between.",
    ),
    (
        "RPA (recovery point actual)",
        "t_inject − commit time of the newest write that survived recovery, measured by a ledger: "
        "a writer commits sequence-numbered rows with timestamps before and during the fault; "
        "after recovery the harness reads back what survived and counts what was lost.",
    ),
    ("RTO / RPO", "The objectives the scenario declares: the most RTA and RPA it may have."),
    (
        "Verdict",
        "passed (RTA ≤ RTO and RPA ≤ RPO and every check held), failed (an objective was missed), "
        "aborted (a guard tripped; reverted), error (the harness or setup broke, or the system was "
        "unhealthy before injection: not a recovery failure).",
    ),
    (
        "MTTR / MTTD",
        "Mean RTA / TTD across runs, per scenario and target, by quarter, always shown beside p50 "
        "and p90 because means alone mislead on heavy-tailed data.",
    ),
)

PERCENTILE_NOTE = (
    "Percentiles interpolate linearly between the ranked values (p50 of 1s and 3s is 2s); "
    "drills that never recovered have no RTA and are counted apart."
)

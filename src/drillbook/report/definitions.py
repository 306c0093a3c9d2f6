"""The definitions printed at the foot of every report.

The measures are defined once, in :data:`drillbook.timeline.DEFINITIONS` (the code that computes
them); this adds what a reader of a report also needs (objectives, verdicts, how percentiles are
taken), so an auditor or a reviewer who was not at the drill knows what each number means.
"""

from __future__ import annotations

from drillbook.timeline import DEFINITIONS

__all__ = ["MEASURE_DEFINITIONS", "PERCENTILE_NOTE"]

MEASURE_DEFINITIONS: tuple[tuple[str, str], ...] = (
    *DEFINITIONS.items(),
    ("RTO / RPO", "The objectives the scenario declares: the most RTA and RPA it may have."),
    (
        "Verdict",
        "passed (RTA ≤ RTO and RPA ≤ RPO and every check held), failed (an objective was missed), "
        "aborted (a guard tripped; reverted), error (the harness or setup broke, or the system was "
        "unhealthy before injection: not a recovery failure).",
    ),
    (
        "Regression",
        "The latest RTA is above the previous quarter's p90 (the latest earlier quarter with "
        "data), or above the RTO.",
    ),
)

PERCENTILE_NOTE = (
    "Means are always shown beside p50 and p90, because means alone mislead on heavy-tailed "
    "recovery times. Percentiles interpolate linearly between the ranked values (p50 of 1s and "
    "3s is 2s); drills that never recovered have no RTA and are counted apart."
)

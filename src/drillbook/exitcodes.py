"""drillbook's exit codes, in one place: the CLI and the pytest-free runner both return them.

====  ==========================================================================
0     ok: every drill passed
1     a drill failed its objectives, or a verification (validate, evidence verify) failed
2     bad input: configuration, scenario or command-line error (one line, no traceback)
3     aborted: a guard tripped or a signal arrived; what was injected was reverted
4     harness error: a drill could not run (unhealthy before injection, backend broke)
5     no drill ran: nothing matched the selection (pytest's own 5); a scheduled run that
      drilled nothing must not look like one that passed
====  ==========================================================================
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = [
    "EXIT_ABORTED",
    "EXIT_CONFIG",
    "EXIT_ERROR",
    "EXIT_FAILED",
    "EXIT_NO_DRILLS",
    "EXIT_OK",
    "code_for_verdicts",
]

EXIT_OK, EXIT_FAILED, EXIT_CONFIG, EXIT_ABORTED, EXIT_ERROR = 0, 1, 2, 3, 4
EXIT_NO_DRILLS = 5


def code_for_verdicts(verdicts: Iterable[str | None]) -> int:
    """The worst verdict wins: aborted, then error, then failed; else ok."""
    seen = set(verdicts)
    if "aborted" in seen:
        return EXIT_ABORTED
    if "error" in seen:
        return EXIT_ERROR
    if "failed" in seen:
        return EXIT_FAILED
    return EXIT_OK

"""The TTL watchdog's wait, light enough to start beside a drill that is measuring.

Why a file of its own, run by path (``python -P .../ttlwait.py LEDGER ID``): the watchdog is
started at every inject, on a core the drill's target and probes are using, and as
``python -m drillbook.watchdog`` it imported the drillbook package before waiting (~55 ms of
CPU, the drill's detection woke ms late behind it on a 2-core machine; see
benchmarks/results/overhead.md). Waiting needs only the ledger's lines: this file imports the
standard library alone, reads the intent's status and deadline as
:class:`drillbook.intents.IntentLedger` does (a test holds the two to the same answers), and at
the deadline hands over to :func:`drillbook.watchdog.main`, which reads the ledger again and
reverts. It must not import drillbook before then, so it has no drillbook imports at all.
"""

from __future__ import annotations

import json
import os
import sys
import time

__all__ = ["await_intent", "ledger_status", "main"]


def ledger_status(path: str, intent_id: str) -> tuple[str | None, float]:
    """``(status, expires_at)`` of one intent; ``(None, 0.0)`` when the ledger does not have it.

    The same reading as ``IntentLedger.get``: blank and torn lines skipped, an ``intent`` line
    (re)starts the record, later ``injected``/``reverted``/``revert_failed`` lines set its
    status."""
    status: str | None = None
    expires_at = 0.0
    # The ledger only grows (3 lines a drill), and this is read at start-up and every 0.2 s while
    # a drill runs: lines that cannot be this intent's are skipped unparsed. An id of letters,
    # digits and dashes (every id drillbook makes) is written verbatim by json.dumps, so a line
    # of its record contains it; any other id is looked for the slow way.
    verbatim = intent_id.isascii() and intent_id.replace("-", "").isalnum()
    try:
        fh = open(path, encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return None, 0.0
    with fh:
        for line in fh:
            if verbatim and intent_id not in line:
                continue
            line = line.strip()
            if not line:
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            if not isinstance(rec, dict) or rec.get("id") != intent_id or "op" not in rec:
                continue
            op = rec["op"]
            if op == "intent":
                status, expires_at = "intended", float(rec["expires_at"])
            elif status is not None and op in ("injected", "reverted", "revert_failed"):
                status = op
    return status, expires_at


def _alive(pid: int) -> bool:
    """As ``drillbook.rollback._alive`` (which this file may not import): a killed harness its
    own parent has not reaped yet is a zombie, and counts as gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().split(") ", 1)[1][:1] != "Z"
    except (OSError, IndexError):
        return True


def await_intent(ledger: str, intent_id: str, harness_pid: int, limit_s: float) -> bool:
    """Wait for an intent the harness has not recorded yet: True once it is in the ledger,
    False if the harness is gone (or ``limit_s`` passed) without recording it.

    Why: a drill starts its watchdog early, so the interpreter's start-up is over (and off the
    measured window) by the time it injects. The ledger is read once more after the harness is
    seen gone: it cannot write after that, so an intent recorded just before it died is seen."""
    deadline = time.monotonic() + limit_s
    while ledger_status(ledger, intent_id)[0] is None:
        if not _alive(harness_pid) or time.monotonic() > deadline:
            return ledger_status(ledger, intent_id)[0] is not None
        time.sleep(0.2)
    return True


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) not in (2, 4):
        print("usage: ttlwait.py LEDGER INTENT_ID [HARNESS_PID WAIT_S]", file=sys.stderr)
        return 2
    ledger, intent_id = args[:2]
    if len(args) == 4 and not await_intent(ledger, intent_id, int(args[2]), float(args[3])):
        return 0  # never injected: nothing to watch
    while True:
        status, expires_at = ledger_status(ledger, intent_id)
        if status is None or status == "reverted":
            return 0
        remaining = expires_at - time.time()
        if remaining <= 0:
            break
        time.sleep(min(1.0, remaining))
    try:  # started at nice 10 to wait; the revert itself gets normal priority where allowed
        os.setpriority(os.PRIO_PROCESS, 0, 0)
    except OSError:
        pass
    from drillbook.watchdog import main as revert_at_deadline

    return revert_at_deadline([ledger, intent_id])


if __name__ == "__main__":
    raise SystemExit(main())

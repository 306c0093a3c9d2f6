"""The TTL watchdog: a detached process that reverts a fault when its TTL expires.

Why a separate process: if the harness is SIGKILLed nothing inside it can run, and not every
platform can expire a fault by itself (a SIGSTOPped process stays stopped forever). The engine
starts one watchdog per injected fault and ends it (by PID) once the fault is reverted; if the
harness dies, the watchdog reverts at the deadline. ``python -m drillbook.watchdog LEDGER ID``;
:func:`spawn` starts the lighter :mod:`drillbook.ttlwait`, which waits and then calls :func:`main`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from drillbook.intents import IntentLedger

__all__ = ["main", "spawn"]


#: The watchdog starts at nice 10 where coreutils' nice is at hand: its interpreter start-up
#: (~10 ms of CPU) runs beside a drill that is about to measure, and waiting needs no priority.
_NICE = next(([p, "-n", "10"] for p in ("/usr/bin/nice", "/bin/nice") if os.path.exists(p)), [])


def spawn(
    ledger_path: Path, intent_id: str, log_path: Path, *, before_intent_s: float | None = None
) -> subprocess.Popen[bytes]:
    """Start a watchdog in its own session, so a signal to the harness's group does not reach it.

    It waits in :mod:`drillbook.ttlwait`, run by path with ``-P`` (so drillbook's own folder is
    not put on ``sys.path``: its modules are only ever imported as the package's) and with the
    folder holding this drillbook first on ``PYTHONPATH``, so the revert at the deadline imports
    the same drillbook as this harness.

    ``before_intent_s``: started before the intent is recorded, it waits that long at most for
    it, and leaves if this process dies first (see :func:`drillbook.ttlwait.await_intent`)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    here = Path(__file__).resolve().parent
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(here.parent), env.get("PYTHONPATH", "")) if p
    )
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            _NICE
            + [sys.executable, "-P", str(here / "ttlwait.py"), str(ledger_path), intent_id]
            + ([] if before_intent_s is None else [str(os.getpid()), str(before_intent_s)]),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            env=env,
            start_new_session=True,
            close_fds=True,
        )


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m drillbook.watchdog LEDGER INTENT_ID", file=sys.stderr)
        return 2
    ledger = IntentLedger(Path(args[0]))
    intent_id = args[1]
    while True:
        intent = ledger.get(intent_id)
        if intent is None or intent.status == "reverted":
            return 0
        remaining = intent.expires_at - time.time()
        if remaining <= 0:
            break
        time.sleep(min(1.0, remaining))
    from drillbook.rollback import revert_intent

    intent = ledger.get(intent_id)
    if intent is None or intent.status == "reverted":
        return 0
    outcome = revert_intent(intent, ledger, by="ttl-watchdog")
    print(f"[watchdog pid {os.getpid()}] TTL expired: {outcome.detail}", flush=True)
    return 0 if outcome.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

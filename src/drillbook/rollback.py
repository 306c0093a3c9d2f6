"""The reaper: revert whatever a killed run left injected.

``drillbook rollback`` and the TTL watchdog both call :func:`rollback`. It rebuilds each pending
fault from the intent ledger (type, params, target names, saved state), calls its idempotent
``revert``, checks ``verify_reverted``, and records the outcome, so running it twice is harmless
and running it after a clean run does nothing.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from drillbook.backends.base import get_registry
from drillbook.config import Config, Overrides, load_config
from drillbook.errors import DrillbookError
from drillbook.intents import Intent, IntentLedger
from drillbook.redact import redact_text
from drillbook.wiring import context_for

__all__ = ["RollbackOutcome", "revert_intent", "rollback"]


@dataclass(frozen=True)
class RollbackOutcome:
    intent: Intent
    ok: bool
    detail: str


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0); treat it as dead.
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().split(") ", 1)[1][:1] != "Z"
    except (OSError, IndexError):
        return True


def _config_for(intent: Intent, fallback: Config | None) -> Config:
    if fallback is not None and (
        intent.config_path is None or str(fallback.config_path) == intent.config_path
    ):
        return fallback
    path = Path(intent.config_path) if intent.config_path else None
    return load_config(Overrides(config_path=path), workdir=Path(intent.workdir))


def revert_intent(
    intent: Intent, ledger: IntentLedger, config: Config | None = None, by: str = "rollback"
) -> RollbackOutcome:
    """Rebuild one fault in this process and revert it."""
    try:
        cfg = _config_for(intent, config)
        registry = get_registry()
        reg = registry.fault(intent.fault_type)
        ctx = context_for(
            cfg, reg.backend, intent.params, intent.targets, deadline=time.monotonic() + 300
        )
        fault = reg.factory(ctx)
        fault.load_state(intent.state)
        fault.revert()
        # Poll, as the engine does: a restarted service may run before it listens again.
        verify_by = time.monotonic() + 30.0
        verified = fault.verify_reverted()
        while not verified and time.monotonic() < verify_by:
            time.sleep(0.1)
            verified = fault.verify_reverted()
    except (DrillbookError, Exception) as exc:
        detail = redact_text(f"{type(exc).__name__}: {exc}")
        ledger.revert_failed(intent.id, detail)
        return RollbackOutcome(intent, False, detail)
    if not verified:
        detail = "revert ran but verify_reverted() still sees the fault"
        ledger.revert_failed(intent.id, detail)
        return RollbackOutcome(intent, False, detail)
    detail = f"reverted {intent.fault_type} on {', '.join(intent.targets) or '-'}"
    report = fault.revert_report()
    if report:
        detail = f"{detail}: {report}"
    ledger.reverted(intent.id, detail, by=by)
    return RollbackOutcome(intent, True, detail)


def rollback(
    ledger_path: Path,
    *,
    config: Config | None = None,
    include_live: bool = False,
    only: str | None = None,
    say: Callable[[str], None] = print,
) -> list[RollbackOutcome]:
    """Revert every pending intent whose owning process is gone (or all, with ``include_live``)."""
    ledger = IntentLedger(ledger_path)
    outcomes: list[RollbackOutcome] = []
    pending = ledger.pending()
    if only is not None:
        pending = [i for i in pending if i.id == only]
    if not pending:
        say("nothing pending: no injected fault is waiting to be reverted")
        return outcomes
    for intent in pending:
        if not include_live and intent.pid != os.getpid() and _alive(intent.pid) and only is None:
            say(
                f"skip {intent.id}: {intent.fault_type} on {', '.join(intent.targets)} belongs to "
                f"a live run (pid {intent.pid}); use --force to revert it anyway"
            )
            continue
        outcome = revert_intent(intent, ledger, config)
        mark = "ok" if outcome.ok else "FAILED"
        say(f"{mark} {intent.id} {intent.fault_type} ({intent.drill}): {outcome.detail}")
        outcomes.append(outcome)
    return outcomes

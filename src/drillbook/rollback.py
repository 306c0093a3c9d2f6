"""The reaper: revert whatever a killed run left injected.

``drillbook rollback`` and the TTL watchdog both call into here. Each pending fault is rebuilt
from the intent ledger (type, params, target names, saved state), its idempotent ``revert`` is
called and ``verify_reverted`` checked; a failed try is recorded and tried again with backoff
until it holds or ``safety.revert_retry`` has passed. Running it twice is harmless and running it
after a clean run does nothing.

Whose fault may be reverted: one whose run is provably gone. A pid is only evidence on the host,
PID namespace and boot it was recorded on (:mod:`drillbook.liveness`); an intent recorded
elsewhere (a CronJob's pod writing to a shared state volume) has unknown liveness, and is left
alone until its TTL has passed, unless ``--force``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from drillbook.backends.base import get_registry
from drillbook.clock import Clock, get_clock, utc_iso
from drillbook.config import Config, Overrides, load_config
from drillbook.errors import DrillbookError
from drillbook.intents import Intent, IntentLedger
from drillbook.liveness import Liveness, here, liveness
from drillbook.redact import REDACTED, is_secret_key, redact_text
from drillbook.wiring import context_for

__all__ = [
    "RollbackOutcome",
    "backoff",
    "revert_intent",
    "revert_until_holds",
    "rollback",
    "still_injected",
]

#: The first pause between two tries of a failed revert, and the longest one.
FIRST_PAUSE_S, LONGEST_PAUSE_S = 0.5, 10.0


@dataclass(frozen=True)
class RollbackOutcome:
    intent: Intent
    ok: bool
    detail: str
    tries: int = 1


def backoff(limit_s: float, clock: Clock | None = None) -> Iterator[int]:
    """Try numbers 1, 2, ... with a doubling pause between them (from :data:`FIRST_PAUSE_S` to
    :data:`LONGEST_PAUSE_S`), for as long as ``limit_s`` allows; the first try is always made.
    The caller stops iterating once a try holds."""
    clock = clock or get_clock()
    end = clock.monotonic() + max(0.0, limit_s)
    pause = FIRST_PAUSE_S
    n = 1
    while True:
        yield n
        left = end - clock.monotonic()
        if left <= 0:
            return
        clock.sleep(min(pause, left))
        pause = min(pause * 2, LONGEST_PAUSE_S)
        n += 1


def still_injected(fault_type: str, targets: tuple[str, ...] | list[str], intent_id: str) -> str:
    """The line a run ends with when a fault could not be reverted."""
    where = ", ".join(targets) or "-"
    return f"still injected: {fault_type} on {where} (intent {intent_id}); run drillbook rollback"


def _config_for(intent: Intent, fallback: Config | None) -> Config:
    if fallback is not None and (
        intent.config_path is None or str(fallback.config_path) == intent.config_path
    ):
        return fallback
    path = Path(intent.config_path) if intent.config_path else None
    return load_config(Overrides(config_path=path), workdir=Path(intent.workdir))


def _redacted_state(state: Any, path: str = "") -> list[str]:
    """Where the ledger on disk lost a saved-state value to redaction (a secret-looking key).

    The ledger never holds secrets, so a fault that saved one (or a harmless value under a key
    that looks secret) cannot be reverted from disk: restoring ``***`` would do harm where
    refusing does none. ARCHITECTURE.md tells backend authors to keep such values out of
    ``state()``."""
    found: list[str] = []
    if isinstance(state, dict):
        for key, value in state.items():
            where = f"{path}.{key}" if path else str(key)
            if value == REDACTED and is_secret_key(str(key)):
                found.append(where)
            else:
                found += _redacted_state(value, where)
    elif isinstance(state, list):
        for i, value in enumerate(state):
            found += _redacted_state(value, f"{path}[{i}]")
    return found


def _refusal(intent: Intent) -> str | None:
    """Why this intent cannot be reverted from disk at all (retrying would not help), or None."""
    lost = _redacted_state(dict(intent.state))
    if not lost:
        return None
    return (
        f"not reverted: the saved state's {', '.join(lost)} was redacted on disk (a "
        f"secret-looking key), so this process cannot rebuild what to restore; revert by "
        f"hand: {intent.plan or intent.fault_type}"
    )


def _revert_once(intent: Intent, cfg: Config) -> tuple[bool, str]:
    """Rebuild the fault in this process, revert it, and wait (30 s at most) to see it gone."""
    refused = _refusal(intent)
    if refused is not None:
        return False, refused
    try:
        reg = get_registry().fault(intent.fault_type)
        clock = get_clock()
        ctx = context_for(
            cfg, reg.backend, intent.params, intent.targets, deadline=clock.monotonic() + 300
        )
        fault = reg.factory(ctx)
        fault.load_state(intent.state)
        fault.revert()
        # Poll, as the engine does: a restarted service may run before it listens again.
        verify_by = clock.monotonic() + 30.0
        verified = fault.verify_reverted()
        while not verified and clock.monotonic() < verify_by:
            clock.sleep(0.1)
            verified = fault.verify_reverted()
        report = fault.revert_report()
    except (DrillbookError, Exception) as exc:
        return False, redact_text(f"{type(exc).__name__}: {exc}")
    if not verified:
        return False, "revert ran but verify_reverted() still sees the fault"
    detail = f"reverted {intent.fault_type} on {', '.join(intent.targets) or '-'}"
    return True, f"{detail}: {report}" if report else detail


def revert_until_holds(
    intent: Intent,
    ledger: IntentLedger,
    config: Config | None = None,
    by: str = "rollback",
    say: Callable[[str], None] = print,
) -> RollbackOutcome:
    """Revert one intent, retrying with :func:`backoff` for ``safety.revert_retry``; every try
    is in the ledger (``revert_failed`` with its number, or the final ``reverted``)."""
    try:
        cfg = _config_for(intent, config)
    except (DrillbookError, Exception) as exc:
        detail = redact_text(f"{type(exc).__name__}: {exc}")
        ledger.revert_failed(intent.id, detail, attempt=1)
        say(still_injected(intent.fault_type, intent.targets, intent.id))
        return RollbackOutcome(intent, False, detail)
    refused = _refusal(intent)
    if refused is not None:
        ledger.revert_failed(intent.id, refused, attempt=1)
        say(still_injected(intent.fault_type, intent.targets, intent.id))
        return RollbackOutcome(intent, False, refused)
    ok, detail, tries = False, "", 0
    for tries in backoff(cfg.safety.revert_retry_s):
        ok, detail = _revert_once(intent, cfg)
        if ok:
            break
        ledger.revert_failed(intent.id, detail, attempt=tries)
        say(f"revert try {tries} of {intent.id} ({intent.fault_type}) failed: {detail}")
    if ok:
        ledger.reverted(intent.id, detail, by=by)
    else:
        say(still_injected(intent.fault_type, intent.targets, intent.id))
    return RollbackOutcome(intent, ok, detail, tries)


def revert_intent(
    intent: Intent, ledger: IntentLedger, config: Config | None = None, by: str = "rollback"
) -> RollbackOutcome:
    """One try, recorded (callers that retry themselves, and tests)."""
    try:
        cfg = _config_for(intent, config)
    except (DrillbookError, Exception) as exc:
        ok, detail = False, redact_text(f"{type(exc).__name__}: {exc}")
    else:
        ok, detail = _revert_once(intent, cfg)
    if ok:
        ledger.reverted(intent.id, detail, by=by)
    else:
        ledger.revert_failed(intent.id, detail)
    return RollbackOutcome(intent, ok, detail)


def _why_not(intent: Intent, now_epoch: float) -> str | None:
    """Why this intent's run may still be acting on it (so rollback leaves it), or None."""
    if intent.pid == os.getpid() and intent.origin == here():
        return None  # this process's own: it is reverting them
    state = liveness(intent.pid, intent.origin)
    if state is Liveness.ALIVE:
        return f"belongs to a live run (pid {intent.pid} on {intent.host})"
    if state is Liveness.UNKNOWN and intent.expires_at > now_epoch:
        until = utc_iso(_epoch(intent.expires_at))
        return (
            f"was recorded by pid {intent.pid} on host {intent.host} (another host or PID "
            f"namespace: whether that run is alive cannot be told from here); its TTL ends at "
            f"{until}, after which rollback reverts it"
        )
    return None


def _epoch(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def rollback(
    ledger_path: Path,
    *,
    config: Config | None = None,
    include_live: bool = False,
    only: str | None = None,
    say: Callable[[str], None] = print,
) -> list[RollbackOutcome]:
    """Revert every pending intent whose run is provably gone or whose TTL has passed (or all,
    with ``include_live``; ``only``: that one intent, whoever owns it)."""
    ledger = IntentLedger(ledger_path)
    outcomes: list[RollbackOutcome] = []
    pending = ledger.pending()
    if only is not None:
        pending = [i for i in pending if i.id == only]
    if not pending:
        say("nothing pending: no injected fault is waiting to be reverted")
        return outcomes
    now_epoch = get_clock().wall().timestamp()
    for intent in pending:
        why = None if include_live or only is not None else _why_not(intent, now_epoch)
        if why is not None:
            where = ", ".join(intent.targets)
            say(f"skip {intent.id}: {intent.fault_type} on {where} {why}; --force reverts it now")
            continue
        outcome = revert_until_holds(intent, ledger, config, say=say)
        mark = "ok" if outcome.ok else "FAILED"
        say(f"{mark} {intent.id} {intent.fault_type} ({intent.drill}): {outcome.detail}")
        outcomes.append(outcome)
    return outcomes

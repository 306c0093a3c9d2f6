"""The TTL watchdog: a detached process that reverts a fault when its TTL expires.

Why a separate process: if the harness is SIGKILLed nothing inside it can run, and not every
platform can expire a fault by itself (a SIGSTOPped process stays stopped forever). A drill
starts one watchdog per fault before it records the intent, and does not inject until that
watchdog says it is ready (see :class:`Watchdog`); it ends the watchdog (by PID) once the fault
is reverted. If the harness dies, the watchdog reverts at the deadline, retrying with backoff
as :func:`drillbook.rollback.revert_until_holds` does.

``python -m drillbook.watchdog LEDGER INTENT_ID [--harness-pid PID --wait S] [--ready-fd FD]``.
It reads the live intent ledger about once a second; that file holds only what may be pending
(reverted intents move to the archive), so the read stays small however many drills ran before.
"""

from __future__ import annotations

import argparse
import os
import select
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from drillbook.clock import epoch, get_clock
from drillbook.intents import Intent, IntentLedger
from drillbook.liveness import pid_alive

if TYPE_CHECKING:
    from drillbook.config import Config

__all__ = ["Watchdog", "await_intent", "main", "spare_for", "spawn"]


#: The watchdog starts at nice 10 where coreutils' nice is at hand: its interpreter start-up
#: runs beside a drill that is about to measure, and waiting needs no priority.
_NICE = next(([p, "-n", "10"] for p in ("/usr/bin/nice", "/bin/nice") if os.path.exists(p)), [])
_READY = b"ready\n"


@dataclass
class Watchdog:
    """A started watchdog and the pipe on which it says it is ready."""

    proc: subprocess.Popen[bytes]
    ready_fd: int | None
    live: bool = False

    def wait_ready(self, timeout_s: float) -> bool:
        """True once the watchdog has started, imported drillbook and read the ledger; False if
        it died first or said nothing within ``timeout_s``."""
        if self.live or self.ready_fd is None:
            return self.live and self.proc.poll() is None
        deadline = get_clock().monotonic() + timeout_s
        got = b""
        while len(got) < len(_READY):
            left = deadline - get_clock().monotonic()
            if left <= 0 or not select.select([self.ready_fd], [], [], left)[0]:
                break
            chunk = os.read(self.ready_fd, len(_READY) - len(got))
            if not chunk:
                break  # it closed the pipe without a word: it died
            got += chunk
        os.close(self.ready_fd)
        self.ready_fd = None
        self.live = got == _READY and self.proc.poll() is None
        return self.live

    def stop(self) -> None:
        """Kill it (the fault it watched is reverted, or was never injected)."""
        if self.ready_fd is not None:
            os.close(self.ready_fd)
            self.ready_fd = None
        if self.proc.poll() is None:
            try:
                self.proc.kill()
            except OSError:
                pass

    def reap(self, timeout_s: float = 5.0) -> None:
        try:
            self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            pass


def spawn(
    ledger_path: Path, intent_id: str, log_path: Path, *, before_intent_s: float | None = None
) -> Watchdog:
    """Start a watchdog in its own session, so a signal to the harness's group does not reach it.

    The folder holding this drillbook goes first on ``PYTHONPATH``, so the watchdog imports the
    same drillbook as this harness. ``before_intent_s``: started before the intent is recorded,
    it waits that long at most for it, and leaves if this process dies first."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    here = Path(__file__).resolve().parent
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(here.parent), env.get("PYTHONPATH", "")) if p
    )
    read_fd, write_fd = os.pipe()
    args = [str(ledger_path), intent_id, "--ready-fd", str(write_fd)]
    if before_intent_s is not None:
        args += ["--harness-pid", str(os.getpid()), "--wait", str(before_intent_s)]
    try:
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                [*_NICE, sys.executable, "-m", "drillbook.watchdog", *args],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env=env,
                start_new_session=True,
                pass_fds=(write_fd,),
            )
    except BaseException:
        os.close(read_fd)
        raise
    finally:
        os.close(write_fd)
    return Watchdog(proc, read_fd)


#: How long a watchdog started at the beginning of a run waits for its drill's intent: the drill
#: still has its steady state, backend preparation and ledger history ahead (it leaves at once
#: if the harness dies, and the run stops it if no drill takes it).
_SPARE_WAIT_S = 3600.0


def spare_for(config: Config) -> tuple[str, Watchdog] | None:
    """A watchdog for the run's first inject, started as soon as the config says where the
    ledger is: its interpreter then starts while the harness is still importing and validating,
    not while the drill waits to inject. None when the run will not inject or it cannot start."""
    if config.dry_run or not config.safety.watchdog:
        return None
    intent_id = Intent.new_id()
    try:
        watchdog = spawn(
            config.intent_ledger,
            intent_id,
            config.state_dir / "watchdog.log",
            before_intent_s=_SPARE_WAIT_S,
        )
    except OSError:
        return None  # the drill starts its own, and says so if that fails too
    return intent_id, watchdog


def await_intent(ledger: IntentLedger, intent_id: str, harness_pid: int, limit_s: float) -> bool:
    """Wait for an intent the harness has not recorded yet: True once it is in the ledger,
    False if the harness is gone (or ``limit_s`` passed) without recording it.

    The ledger is read once more after the harness is seen gone: it cannot write after that, so
    an intent recorded just before it died is seen."""
    deadline = get_clock().monotonic() + limit_s
    while ledger.get(intent_id) is None:
        if not pid_alive(harness_pid) or get_clock().monotonic() > deadline:
            return ledger.get(intent_id) is not None
        get_clock().sleep(0.2)
    return True


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m drillbook.watchdog")
    parser.add_argument("ledger", type=Path)
    parser.add_argument("intent_id")
    parser.add_argument("--harness-pid", type=int)
    parser.add_argument("--wait", type=float, default=60.0)
    parser.add_argument("--ready-fd", type=int)
    return parser.parse_args(argv)


def _say_ready(fd: int | None) -> None:
    if fd is None:
        return
    try:
        os.write(fd, _READY)
    except OSError:
        pass  # the harness is gone already; it will not inject
    finally:
        os.close(fd)


def main(argv: list[str] | None = None) -> int:
    args = _parse(sys.argv[1:] if argv is None else argv)
    ledger = IntentLedger(args.ledger)
    ledger.get(args.intent_id)  # the ledger is readable before this says it is ready
    _say_ready(args.ready_fd)
    if args.harness_pid is not None and not await_intent(
        ledger, args.intent_id, args.harness_pid, args.wait
    ):
        return 0  # never recorded: nothing to watch
    while True:
        intent = ledger.get(args.intent_id)
        if intent is None or intent.status == "reverted":
            return 0  # reverted (and moved to the archive)
        remaining = intent.expires_at - epoch()
        if remaining <= 0:
            break
        get_clock().sleep(min(1.0, remaining))
    try:  # started at nice 10 to wait; the revert itself gets normal priority where allowed
        os.setpriority(os.PRIO_PROCESS, 0, 0)
    except OSError:
        pass
    from drillbook.rollback import revert_until_holds

    outcome = revert_until_holds(
        intent,
        ledger,
        by="ttl-watchdog",
        say=lambda line: print(f"[watchdog pid {os.getpid()}] {line}", flush=True),
    )
    print(f"[watchdog pid {os.getpid()}] TTL expired: {outcome.detail}", flush=True)
    return 0 if outcome.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

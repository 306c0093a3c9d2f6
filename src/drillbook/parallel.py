"""Scenario drills run side by side when their targets differ (``drillbook run --parallel N``).

Why threads, not processes: a run is one journal (one hash chain, one journal.json, one report),
and :class:`drillbook.journal.RunJournal` is already written from probe threads under a lock.
Each drill has its own :class:`drillbook.engine.Drill`, so its measures stay its own.

Two scenarios that name a common target are never run at once: the scheduler starts a scenario
only when none of its targets is in use by a running drill, so such a pair is serialised in file
order, not refused (the target locks would refuse the second one; waiting is what a suite wants).
Scenarios start in the order given whenever a worker is free and their targets are.

Signals reach only the main thread. When one arrives (Ctrl-C, SIGTERM, SIGHUP), no further drill
starts, and the same interruption is raised inside every running drill's thread, where the engine
reverts and records it exactly as it does for a serial run; the run waits for those reverts.
"""

from __future__ import annotations

import ctypes
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from drillbook.engine import DrillResult
from drillbook.model import Scenario

__all__ = ["ParallelOutcome", "run_parallel"]


@dataclass
class ParallelOutcome:
    """Results in the scenarios' order (None for one never started) and why the run stopped."""

    results: list[DrillResult | None]
    interrupted: bool = False


def _raise_in(thread: threading.Thread, exc: type[BaseException]) -> None:
    """Raise ``exc`` in ``thread`` at its next bytecode (how a signal reaches a worker drill)."""
    if thread.ident is not None and thread.is_alive():
        ctypes.pythonapi.PyThreadState_SetAsyncExc(
            ctypes.c_ulong(thread.ident), ctypes.py_object(exc)
        )


def run_parallel(
    scenarios: Sequence[Scenario],
    workers: int,
    run_one: Callable[[Scenario], DrillResult],
    targets_of: Callable[[Scenario], set[str]],
    interrupted: Callable[[DrillResult], bool],
) -> ParallelOutcome:
    """Run ``run_one`` for every scenario on up to ``workers`` threads, never two at once on a
    common target. A harness error in a worker is raised here once the others have finished."""
    outcome = ParallelOutcome([None] * len(scenarios))
    waiting = list(range(len(scenarios)))
    running: dict[int, threading.Thread] = {}
    busy: set[str] = set()
    done: queue.Queue[tuple[int, DrillResult | None, BaseException | None]] = queue.Queue()
    errors: list[BaseException] = []

    def work(index: int) -> None:
        try:
            done.put((index, run_one(scenarios[index]), None))
        except BaseException as exc:  # handed to the main thread, which decides
            done.put((index, None, exc))

    def start_what_fits() -> None:
        for index in list(waiting):
            if len(running) >= workers:
                return
            needs = targets_of(scenarios[index])
            if needs & busy:
                continue
            waiting.remove(index)
            busy.update(needs)
            thread = threading.Thread(target=work, args=(index,), name=f"drill-{index}")
            running[index] = thread
            thread.start()

    def collect(block: bool) -> None:
        index, result, error = done.get(timeout=0.25) if block else done.get_nowait()
        running.pop(index).join()
        busy.difference_update(targets_of(scenarios[index]))
        outcome.results[index] = result
        if error is not None:
            errors.append(error)
        elif result is not None and interrupted(result):
            outcome.interrupted = True

    try:
        while running or (waiting and not outcome.interrupted and not errors):
            if not (outcome.interrupted or errors):
                start_what_fits()
            try:
                collect(block=True)  # a timed wait: signals still reach this thread
            except queue.Empty:
                continue
    except KeyboardInterrupt:  # Interrupted (SIGTERM/SIGHUP) is one too
        outcome.interrupted = True
        for thread in running.values():
            _raise_in(thread, KeyboardInterrupt)
        while running:  # every running drill reverts before the run is recorded
            try:
                collect(block=True)
            except queue.Empty:
                continue
            except KeyboardInterrupt:  # a second signal: keep waiting for the reverts
                continue
        raise
    if errors:
        raise errors[0]
    return outcome

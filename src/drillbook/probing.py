"""The probe scheduler: every probe at a fixed rate, concurrently, on one event loop.

Why an event loop in a thread: a drill may watch up to a thousand endpoints at 10 Hz, which
threads-per-probe cannot do on two cores; probes with native async I/O (HTTP, TCP) run on the loop
and blocking ones run in a bounded pool of daemon threads. Ticks are scheduled on absolute times
(start + phase + k·interval), so a slow probe does not drift the schedule; a probe still running
at its next tick skips that tick rather than piling up, and the skip is counted. Each probe's
phase is spread evenly across the interval: started together, N probes would all fall due at the
same instant every tick and the last of them would start N·(cost of a probe) late. Each sample
records when it was due, so the scheduling lag is measurable (benchmarks/probe_scale).

From a hundred probes on the loop is uvloop's when it is installed (it is a dependency on Linux
and macOS): it takes less CPU per HTTP probe than the standard loop (benchmarks/RESULTS.md,
probe scale), most of it in fewer system calls. Fewer probes get the standard loop: uvloop's
import would cost more than it saves (:data:`UVLOOP_PROBES`). ``DRILLBOOK_EVENT_LOOP=asyncio``
or ``=uvloop`` forces either.

The engine also asks for a look between ticks (:meth:`ProbeScheduler.kick`) when the fault is
verified and when a recovery step ends: a tick's wait made both answers up to an interval late.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import queue
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from drillbook.backends.base import Probe
from drillbook.clock import Clock, get_clock
from drillbook.model import ProbeResult
from drillbook.timeline import Sample

__all__ = [
    "UVLOOP_PROBES",
    "DaemonExecutor",
    "NamedProbe",
    "ProbeScheduler",
    "loop_kind",
    "new_event_loop",
    "run_once",
]


#: From this many probes on, the loop is uvloop's (when installed); below, the standard one.
#: Why: uvloop's import is paid once, on the drill's critical path just before the steady-state
#: check, while its saving is per look: worth it at a hundred probes at 10 Hz, not for a handful
#: (benchmarks/RESULTS.md, probe scale, compares the two loops).
UVLOOP_PROBES = 100


def loop_kind(probes: int | None = None) -> str:
    """``uvloop`` or ``asyncio``: what :func:`new_event_loop` gives for ``probes`` probes (None:
    a large number). ``DRILLBOOK_EVENT_LOOP=asyncio`` or ``=uvloop`` forces one."""
    forced = os.environ.get("DRILLBOOK_EVENT_LOOP", "").strip().lower()
    if forced == "asyncio" or (
        forced != "uvloop" and probes is not None and probes < UVLOOP_PROBES
    ):
        return "asyncio"
    try:
        import uvloop  # noqa: F401  (optional: a C extension, absent on Windows)
    except ImportError:
        return "asyncio"
    return "uvloop"


def new_event_loop(probes: int | None = None) -> asyncio.AbstractEventLoop:
    """A new event loop for ``probes`` probes (see :func:`loop_kind` and the module docstring)."""
    if loop_kind(probes) == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


class DaemonExecutor(ThreadPoolExecutor):
    """A bounded pool of daemon threads for blocking probes.

    Why not ThreadPoolExecutor: its threads are joined at shutdown and at interpreter exit, so one
    probe blocked forever (a hung NFS mount, a python probe that never returns) would hang the
    harness after the drill ended. Here a stuck check only occupies its worker; the drill keeps
    its deadline (each check is also bounded by ``asyncio.wait_for``) and the process can exit.
    """

    def __init__(self, max_workers: int = 64) -> None:
        # A ThreadPoolExecutor only because asyncio's set_default_executor insists on one; every
        # method that starts, queues or joins threads is replaced below.
        super().__init__(max_workers=1)
        self.max_workers = max_workers
        self._queue: queue.SimpleQueue[
            tuple[Future[Any], Callable[..., Any], tuple[Any, ...]] | None
        ] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._workers = 0
        self._idle = 0
        self._closed = False

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("executor is shut down")
            if self._idle == 0 and self._workers < self.max_workers:
                self._workers += 1
                threading.Thread(target=self._work, name="drillbook-probe", daemon=True).start()
            else:
                self._idle = max(0, self._idle - 1)
        call = functools.partial(fn, **kwargs) if kwargs else fn
        self._queue.put((future, call, args))
        return future

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            future, fn, args = item
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn(*args))
                except BaseException as exc:
                    future.set_exception(exc)
            with self._lock:
                self._idle += 1

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Never joins: idle workers are told to stop; a stuck one dies with the process."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            workers = self._workers
        for _ in range(workers):
            self._queue.put(None)


@dataclass(frozen=True)
class NamedProbe:
    name: str
    probe: Probe


OnSample = Callable[[Sample, ProbeResult], None]


async def _check(probe: Probe, timeout: float) -> ProbeResult:
    # asyncio.timeout, not wait_for: wait_for wraps every probe in a task of its own (3.11).
    try:
        own = probe.deadline_s
        if own is not None and own <= timeout:
            return await probe.acheck()  # it keeps its own, shorter deadline
        async with asyncio.timeout(timeout):
            return await probe.acheck()
    except TimeoutError:
        return ProbeResult(False, timeout, f"timed out after {timeout:g}s")
    except Exception as exc:
        return ProbeResult(False, 0.0, f"{type(exc).__name__}: {exc}")


async def _aclose(probes: Iterable[Probe]) -> None:
    for probe in probes:
        try:
            await probe.aclose()
        except Exception:  # a probe failing to let go must not stop the others letting go
            pass


#: From this many probes on, the scheduler takes the two process-wide measures below.
SCALE_PROBES = 100


class _ScaleMode:
    """Process-wide settings that keep a large probe loop on time; counted, so they nest.

    * A shorter GIL switch interval (1 ms instead of 5): the drill's main thread measures from
      all samples so far, pure Python that holds the GIL; with the default interval the probe
      loop could wait 5 ms for it at every wake, and its ticks fall behind.
    * ``gc.freeze()`` every half second: a drill keeps every sample (its timeline), so a full
      collection walks a heap that grows by 10,000 objects a second at 1,000 probes, and its
      pauses stop the loop too. Frozen objects are left alone until
      ``gc.unfreeze()`` when the scheduler stops, so nothing is lost, only collected later.
    """

    _lock = threading.Lock()
    _users = 0
    _saved_interval = 0.005

    @classmethod
    def enter(cls) -> None:
        import sys

        with cls._lock:
            if cls._users == 0:
                cls._saved_interval = sys.getswitchinterval()
                sys.setswitchinterval(min(cls._saved_interval, 0.001))
            cls._users += 1

    @classmethod
    def leave(cls) -> None:
        import gc
        import sys

        with cls._lock:
            cls._users -= 1
            if cls._users == 0:
                sys.setswitchinterval(cls._saved_interval)
                gc.unfreeze()

    @staticmethod
    async def freezer(period: float = 0.5) -> None:
        import gc

        while True:
            gc.freeze()
            await asyncio.sleep(period)


class ProbeScheduler:
    """Runs probes until stopped; calls ``on_sample`` from the loop thread for each result."""

    def __init__(
        self,
        probes: Sequence[NamedProbe],
        *,
        interval: float,
        timeout: float,
        on_sample: OnSample,
        clock: Clock | None = None,
        max_threads: int = 64,
    ) -> None:
        self.probes = list(probes)
        self.interval = interval
        self.timeout = timeout if timeout > 0 else interval
        self.on_sample = on_sample
        self.clock = clock or get_clock()
        self.lags: list[float] = []
        self.skipped = 0  # ticks not run because the probe before them overran
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._pool = DaemonExecutor(max_threads)
        self._scale = False  # whether this scheduler holds _ScaleMode
        self.driving = False  # start() was called: the probes tick
        self._tasks: list[asyncio.Task[None]] = []
        # Where every probe's schedule is anchored (loop thread only): set when ticking begins
        # and again by kick(); ``_generation`` tells a driver its anchor moved.
        self._base = 0.0
        self._generation = 0
        self._sleepers: set[asyncio.Future[None]] = set()

    def open(self) -> None:
        """Start the loop thread and open the probes' connections, without ticking yet.

        Why apart from start(): the steady-state check then runs on this loop
        (:meth:`check_all`) and leaves its connections open for the ticks. A loop of its own,
        built and torn down for one look, would be set-up time inside the measured drill.
        Idempotent."""
        if self._thread is not None:
            return
        self._scale = len(self.probes) >= SCALE_PROBES
        if self._scale:
            _ScaleMode.enter()
        self._thread = threading.Thread(target=self._run, name="drillbook-probes", daemon=True)
        self._thread.start()
        self._ready.wait(5)

    def check_all(self, timeout: float) -> list[ProbeResult]:
        """Check every probe once, concurrently, on this scheduler's loop (the steady state).

        Only before :meth:`start`: a probe's kept-alive connection carries one request at a
        time, and a tick could overlap this look."""
        if self.driving:
            raise RuntimeError("check_all() after start(): the probes are ticking")
        self.open()
        loop = self._loop
        # Opening is bounded by one probe timeout (open() waits 5 s of it at most).
        if loop is None or not self._ready.wait(self.timeout + 5.0):
            raise RuntimeError("the probe loop did not start")

        async def gather() -> list[ProbeResult]:
            return list(await asyncio.gather(*(_check(p.probe, timeout) for p in self.probes)))

        future = asyncio.run_coroutine_threadsafe(gather(), loop)
        try:
            return future.result(timeout + 5.0)  # each check is bounded by ``timeout`` already
        finally:
            future.cancel()  # a no-op once done

    def start(self) -> None:
        """Start ticking (opening first, if :meth:`open` was not called); idempotent."""
        self.open()
        if self.driving:
            return
        self.driving = True
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # closed: the loop thread already ended
                loop.call_soon_threadsafe(self._begin)

    def kick(self) -> None:
        """Take every probe's next sample now (staggered as at start), then keep the interval.

        Why: the engine calls it when the fault is verified and when a recovery step ends, the
        moments the answer may just have changed. Waiting for the next tick made detection,
        and the first passing look after a step, up to one interval late; TTD is defined as
        the first failing probe after t_inject, so an earlier look measures it more closely,
        and a recovery run still has to last ``stable_for`` on the regular ticks after it. A
        probe still running when kicked (it started before the kick) samples again at once
        after it ends."""
        loop = self._loop
        if loop is None or not self.driving:
            return
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(self._rebase)

    def _run(self) -> None:
        loop = new_event_loop(len(self.probes))
        loop.set_default_executor(self._pool)
        self._loop = loop
        try:
            loop.run_until_complete(self._main())
        finally:
            loop.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        try:  # open connections before the clock starts, bounded by one probe timeout
            async with asyncio.timeout(self.timeout):
                await asyncio.gather(
                    *(p.probe.aopen() for p in self.probes), return_exceptions=True
                )
        except TimeoutError:
            pass
        self._ready.set()
        await self._stop.wait()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await _aclose(p.probe for p in self.probes)

    def _begin(self) -> None:
        """On the loop: start every probe's driver (start() asked for it)."""
        if self._tasks or self._stop is None or self._stop.is_set():
            return
        self._base = self.clock.monotonic()
        n = max(1, len(self.probes))
        helpers = [asyncio.create_task(_ScaleMode.freezer())] if self._scale else []
        self._tasks = helpers + [
            asyncio.create_task(self._drive(p, i * self.interval / n))
            for i, p in enumerate(self.probes)
        ]

    def _rebase(self) -> None:
        """On the loop: anchor every schedule at now and wake the drivers waiting for a tick."""
        self._base = self.clock.monotonic()
        self._generation += 1
        for waiter in self._sleepers:
            if not waiter.done():
                waiter.set_result(None)

    async def _sleep(self, delay: float) -> None:
        """asyncio.sleep that :meth:`_rebase` can end early (the same future and timer)."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        timer = loop.call_later(delay, _wake, waiter)
        self._sleepers.add(waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self._sleepers.discard(waiter)

    async def _drive(self, named: NamedProbe, phase: float) -> None:
        generation = self._generation
        t0 = self._base + phase
        k = 0
        while True:
            due = t0 + k * self.interval
            delay = due - self.clock.monotonic()
            if delay > 0:
                await self._sleep(delay)
                if generation != self._generation:  # kicked while waiting: due again from now
                    generation, t0, k = self._generation, self._base + phase, 0
                    continue
            start = self.clock.monotonic()
            self.lags.append(start - due)
            result = await _check(named.probe, self.timeout)
            end = self.clock.monotonic()
            self.on_sample(Sample(named.name, start, end, result.ok, result.detail), result)
            if generation != self._generation:  # kicked during this look, which began before it
                generation, t0, k = self._generation, self._base + phase, 0
                continue
            # Next tick strictly after this one finished: skip ticks a slow probe overran, and
            # count them, so saturation shows instead of hiding behind a small lag.
            nxt = max(k + 1, int((end - t0) / self.interval) + 1)
            self.skipped += nxt - k - 1
            k = nxt

    def stop(self) -> None:
        """Stop and join; safe to call again (the engine's finish stops whatever still runs)."""
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(stop.set)
            except RuntimeError:  # closed between the check and the call
                pass
        if self._thread is not None:
            self._thread.join(timeout=max(5.0, self.timeout + 1))
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self._scale:
            self._scale = False
            _ScaleMode.leave()


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def run_once(probes: Sequence[NamedProbe], timeout: float) -> list[tuple[str, ProbeResult]]:
    """Check each probe once, concurrently (steady state, verify)."""

    async def gather() -> list[ProbeResult]:
        asyncio.get_running_loop().set_default_executor(DaemonExecutor(max(4, len(probes))))
        try:
            return list(await asyncio.gather(*(_check(p.probe, timeout) for p in probes)))
        finally:
            await _aclose(p.probe for p in probes)

    with asyncio.Runner(loop_factory=lambda: new_event_loop(len(probes))) as runner:
        results = runner.run(gather())
    return [(p.name, r) for p, r in zip(probes, results, strict=True)]

"""Clock.wait: the engine waits for the next probe sample through the clock, so a fake clock
moves instead of blocking, and the real one wakes on the sample."""

from __future__ import annotations

import threading

from drillbook.clock import FakeClock, SystemClock, epoch, real_wall


def test_fake_clock_wait_advances_and_does_not_block() -> None:
    clock = FakeClock()
    before = clock.monotonic()
    clock.wait(threading.Event(), 30.0)  # nothing will set it: a real wait would block 30 s
    assert clock.monotonic() - before == 30.0


def test_system_clock_wait_wakes_on_the_event() -> None:
    event = threading.Event()
    threading.Timer(0.01, event.set).start()
    SystemClock().wait(event, 60.0)
    assert event.is_set()


def test_epoch_is_real_even_under_a_fake_clock() -> None:
    """Intent expiry and ledger rows are compared by other processes on the real clock."""
    fake = FakeClock()
    assert abs(epoch() - fake.wall().timestamp()) > 3600
    assert abs(epoch() - SystemClock().wall().timestamp()) < 60
    assert abs(real_wall().timestamp() - epoch()) < 60 and real_wall().tzinfo is not None

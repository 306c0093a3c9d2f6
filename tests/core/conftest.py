"""Fixtures shared by the core tests."""

from __future__ import annotations

import os
import threading

import pytest


@pytest.fixture
def fsync_threads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The name of the thread behind every ``os.fsync`` from now on (the fsyncs still happen):
    which waits on the disk is what the journal's and the ledger's tests check."""
    names: list[str] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        names.append(threading.current_thread().name)
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return names

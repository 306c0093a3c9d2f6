"""The pytest plugin: the only module that imports pytest. (Being filled in by the core work.)"""

from __future__ import annotations

import os

import pytest

__all__ = ["needs_backend"]


def _required(backend: str) -> bool:
    value = os.environ.get("DRILLBOOK_REQUIRE_BACKENDS", "").strip().lower()
    if value in ("1", "all", "true", "yes"):
        return True
    return backend.lower() in {v.strip() for v in value.split(",") if v.strip()}


def needs_backend(backend: str, reason: str | None) -> None:
    """Skip, or fail where CI requires the backend, when ``reason`` says it is unavailable.

    Why both: a developer without Docker gets a one-line skip, while CI sets
    ``DRILLBOOK_REQUIRE_BACKENDS`` so a missing engine cannot pass as a green run.
    """
    if reason is None:
        return
    message = f"{backend} unavailable: {reason}"
    if _required(backend):
        pytest.fail(message + " (DRILLBOOK_REQUIRE_BACKENDS is set)", pytrace=False)
    pytest.skip(message)

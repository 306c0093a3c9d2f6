"""Shared test helpers for drillbook's own tests.

``needs_backend`` is the one place that decides what an unreachable backend means: in CI
(``DRILLBOOK_REQUIRE_BACKENDS`` set, to ``1``/``all`` or a comma list) it is a failure, so a
missing Docker engine cannot pass as a green run; for a developer without it, a one-line skip.
"""

from __future__ import annotations

import os

import pytest

pytest_plugins = ["pytester"]


def _required(backend: str) -> bool:
    value = os.environ.get("DRILLBOOK_REQUIRE_BACKENDS", "").strip().lower()
    if value in ("1", "all", "true", "yes"):
        return True
    return backend.lower() in {v.strip() for v in value.split(",") if v.strip()}


def needs_backend(backend: str, reason: str | None) -> None:
    """Skip (or, when CI requires the backend, fail) if ``reason`` says it is unavailable."""
    if reason is None:
        return
    message = f"{backend} unavailable: {reason}"
    if _required(backend):
        pytest.fail(message + " (DRILLBOOK_REQUIRE_BACKENDS is set)", pytrace=False)
    pytest.skip(message)

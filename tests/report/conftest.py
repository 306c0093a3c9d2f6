"""Fixtures for the report tests: fixture journals on disk and a headless Chromium runner."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]


def chromium_binary() -> tuple[str | None, str | None]:
    """(path, None) when Chromium is here, else (None, one-line reason)."""
    explicit = os.environ.get("DRILLBOOK_CHROMIUM")
    if explicit:
        if os.access(explicit, os.X_OK):
            return explicit, None
        return None, f"DRILLBOOK_CHROMIUM={explicit} is not executable"
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found, None
    return None, 'no chromium binary (run: eval "$(scripts/testenv up chromium)")'


@pytest.fixture
def chromium() -> Callable[..., subprocess.CompletedProcess[bytes]]:
    """Run headless Chromium with the flags these machines need, in a fresh profile."""
    from drillbook.plugin import needs_backend

    binary, reason = chromium_binary()
    needs_backend("chromium", reason)
    assert binary is not None

    def run(*args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[bytes]:
        with tempfile.TemporaryDirectory(prefix="drillbook-chromium-") as profile:
            return subprocess.run(
                [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                capture_output=True,
                timeout=timeout,
                check=False,
            )

    return run

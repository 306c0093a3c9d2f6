"""The public surface: ``__all__`` says what it is, and importing it stays light."""

from __future__ import annotations

import subprocess
import sys

import drillbook


def test_all_names_exist_and_are_unique() -> None:
    for name in drillbook.__all__:
        assert getattr(drillbook, name) is not None, name
    assert len(set(drillbook.__all__)) == len(drillbook.__all__)


def test_import_drillbook_does_not_import_the_sdks() -> None:
    code = (
        "import sys, drillbook, drillbook.plugin, drillbook.cli\n"
        "from drillbook.backends.base import get_registry\n"
        "get_registry()\n"
        "bad = [m for m in ('boto3', 'botocore', 'kubernetes', 'docker') if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"imported eagerly: {out.stdout.strip()}"


def test_every_shipped_backend_loads() -> None:
    from drillbook.backends.base import BUILTIN_BACKENDS, Registry

    registry = Registry()
    for name, spec in BUILTIN_BACKENDS.items():
        registry.load(spec, name)
    assert registry.broken == {}
    assert {"local", "postgres", "docker", "kubernetes", "aws"} <= set(registry.backends)

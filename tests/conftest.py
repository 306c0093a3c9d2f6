"""Shared fixtures for drillbook's own tests (kept thin; helpers live in drillbook.plugin)."""

from __future__ import annotations

pytest_plugins = ["pytester"]

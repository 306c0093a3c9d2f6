"""The embedded sandbox: real PostgreSQL in two "regions", an app, a router, one root folder."""

from __future__ import annotations

from drillbook.sandbox.topology import (
    SandboxError,
    default_root,
    down,
    is_up,
    reconcile,
    sandbox_status,
    up,
)

__all__ = ["SandboxError", "default_root", "down", "is_up", "reconcile", "sandbox_status", "up"]

"""The embedded sandbox: real PostgreSQL in two "regions", an app, a router, one root folder.

Modules, bottom up: ``state`` (the shared state file), ``pgbin`` (finding the server programs and
their user), ``control`` (the supervisor's control port), ``nodes`` (one server at a time),
``replication`` (backups, standbys, promotion, ``reconcile``), ``demo`` (demo data), ``lifecycle``
(``up``/``down``/status); ``supervisor`` and ``app`` run as their own processes.
"""

from __future__ import annotations

from drillbook.backends.postgres.sandbox.lifecycle import (
    default_root,
    down,
    is_up,
    sandbox_status,
    up,
)
from drillbook.backends.postgres.sandbox.nodes import SandboxError
from drillbook.backends.postgres.sandbox.replication import reconcile

__all__ = ["SandboxError", "default_root", "down", "is_up", "reconcile", "sandbox_status", "up"]

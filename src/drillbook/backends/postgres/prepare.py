"""The backend's session set-up: bring the sandbox up for sandbox targets when it is not running,
and take it down at the end only if this session started it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from drillbook.backends.base import Context
from drillbook.backends.postgres.target import sandbox_root
from drillbook.errors import BackendUnavailable

__all__ = ["prepare_sandbox"]


@contextlib.contextmanager
def prepare_sandbox(ctx: Context) -> Iterator[None]:
    from drillbook.backends.postgres.sandbox.lifecycle import down as sandbox_down
    from drillbook.backends.postgres.sandbox.lifecycle import is_up, up
    from drillbook.backends.postgres.sandbox.nodes import SandboxError
    from drillbook.backends.postgres.sandbox.replication import reconcile

    roots: list[Path] = []
    for target in ctx.targets:
        if target.backend == "postgres" and target.params.get("sandbox"):
            root = sandbox_root(ctx, target)
            if root not in roots:
                roots.append(root)
    started: list[Path] = []
    try:
        for root in roots:
            try:
                if is_up(root):
                    reconcile(root)  # a previous run may have left it failed over
                else:
                    up(root, sync=bool(ctx.settings.get("sync")))
                    started.append(root)
            except (SandboxError, OSError) as exc:
                raise BackendUnavailable(f"sandbox at {root} could not start: {exc}") from exc
        yield
    finally:
        for root in reversed(started):
            sandbox_down(root)

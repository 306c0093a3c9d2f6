"""Build the Context a fault, probe or step receives from the config; shared by engine and reaper.

One function, so a fault rebuilt by ``drillbook rollback`` in a new process sees exactly what it
saw when it was injected: the same targets (re-read from the config by name, so secrets never sit
in the intent ledger), the same backend settings, the same folders.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from drillbook.backends.base import Context
from drillbook.clock import Clock, get_clock
from drillbook.config import Config

__all__ = ["context_for"]


def context_for(
    config: Config,
    backend: str,
    params: Mapping[str, Any],
    targets: Sequence[str],
    *,
    clock: Clock | None = None,
    deadline: float | None = None,
    artifacts_dir: Path | None = None,
) -> Context:
    return Context(
        params=dict(params),
        targets=tuple(config.target(name) for name in targets),
        environment=config.environment,
        # The global opt-in switch reaches every backend; a backend's own setting wins.
        settings={
            "require_opt_in": config.safety.require_opt_in,
            **config.backend_settings(backend),
        },
        clock=clock or get_clock(),
        workdir=config.workdir,
        state_dir=config.state_dir,
        deadline=deadline,
        artifacts_dir=artifacts_dir,
        peers=tuple(t for t in config.targets.values() if t.backend == backend),
    )

"""Keep a container's environment (where its secrets usually live) out of ``state()``.

``docker.remove`` and ``docker.bad_image`` must re-create a container from its ``docker inspect``,
but the intent ledger and the journal must never hold secrets, and ``Config.Env`` routinely holds
database passwords and API tokens. So the full inspect goes to a 0600 file under drillbook's own
state folder (``.drillbook/docker/``), which ``drillbook rollback`` on this machine reads too, and
``state()`` keeps a copy without ``Env`` plus the file's path. Revert uses the sealed copy when it
is there, and otherwise re-creates without the environment and says so.
"""

from __future__ import annotations

import copy
import json
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from drillbook.backends.base import Context

__all__ = ["SEALED_KEY", "discard", "seal", "unseal"]

SEALED_KEY = "DrillbookSealed"


def seal(ctx: Context, inspect: Mapping[str, Any]) -> dict[str, Any]:
    """Write the full inspect to a private file; return a copy safe for ``state()``."""
    folder = ctx.state_dir / "docker"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / f"{str(inspect['Id'])[:12]}-{secrets.token_hex(4)}.json"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(inspect, fh)
        fh.flush()
        os.fsync(fh.fileno())
    public = copy.deepcopy(dict(inspect))
    public["Config"] = {k: v for k, v in public.get("Config", {}).items() if k != "Env"}
    public[SEALED_KEY] = str(path)
    return public


def unseal(public: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
    """(the inspect to re-create from, whether the environment could be restored)."""
    path = public.get(SEALED_KEY)
    if path and Path(str(path)).is_file():
        with open(str(path), encoding="utf-8") as fh:
            full: dict[str, Any] = json.load(fh)
        return full, True
    data = {k: v for k, v in public.items() if k != SEALED_KEY}
    return data, False


def discard(public: Mapping[str, Any]) -> None:
    """Delete the sealed file once revert no longer needs it."""
    path = public.get(SEALED_KEY)
    if path:
        Path(str(path)).unlink(missing_ok=True)

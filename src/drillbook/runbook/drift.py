"""Has the runbook changed since its scenario was imported from it?

A scenario imported from a runbook keeps the runbook's SHA-256. When the file's text differs at
the next drill, the drill practises a procedure the team no longer has: the run says so in the
terminal, the journal and the report (the drill still runs; re-import to pick up the change).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

__all__ = ["drift_warning", "runbook_path", "sha256_text"]


def sha256_text(text: str) -> str:
    """The hash a scenario keeps: of the UTF-8 text with line endings made ``\\n``, so a checkout
    on Windows (CRLF) is not a change."""
    return hashlib.sha256(text.replace("\r\n", "\n").encode("utf-8")).hexdigest()


def runbook_path(link: str, base: Path) -> Path:
    """The file a scenario's ``runbook:`` names (an ``#anchor`` is not part of it)."""
    path = Path(link.split("#", 1)[0])
    return path if path.is_absolute() else base / path


def drift_warning(link: str, sha256: str, base: Path) -> str | None:
    """One line when the runbook is gone or changed since import, else None."""
    if not link:
        return "runbook_import has a hash but `runbook:` names no file"
    path = runbook_path(link, base)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        return f"runbook {link} cannot be read ({exc.strerror or exc}); the drill may be stale"
    now = sha256_text(text)
    if now != sha256:
        return (
            f"runbook {link} changed since this scenario was imported (sha256 {sha256[:12]} then, "
            f"{now[:12]} now): re-import it with `drillbook runbook import {link} --force`"
        )
    return None

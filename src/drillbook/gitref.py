"""The commit checked out in a work tree, read from ``.git`` without starting ``git``.

Why: every run records the commit of its drills (journal, evidence), and ``git rev-parse HEAD``
cost ~2.5 ms of each run's start (a fork and exec, on the path before the first drill). The
files say the same in the common layouts: ``HEAD`` holding a commit (detached) or naming a ref,
the ref as a loose file or a line of ``packed-refs``, linked work trees (``.git`` as a file,
``commondir``), and no ``.git`` in any parent folder (no repository). Anything else (``GIT_*``
variables that move the repository, a bare repository, reftable storage, a ref that is not
there) is left to ``git`` itself.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

__all__ = ["read_head"]

_HEX = re.compile(r"[0-9a-f]{40}(?:[0-9a-f]{24})?")
#: Variables that change which repository git finds or how it reads it.
_GIT_ENV = ("GIT_DIR", "GIT_WORK_TREE", "GIT_COMMON_DIR", "GIT_CEILING_DIRECTORIES")


def read_head(workdir: Path) -> tuple[bool, str | None]:
    """``(True, commit)``, ``(True, None)`` for no repository, or ``(False, None)``: ask git."""
    if any(name in os.environ for name in _GIT_ENV):
        return False, None
    try:
        gitdir = _find_gitdir(workdir.resolve())
        if gitdir is None:
            return True, None
        if gitdir is _ASK:
            return False, None
        common = gitdir
        if (gitdir / "commondir").is_file():
            common = (gitdir / (gitdir / "commondir").read_text().strip()).resolve()
        if (common / "reftable").exists():
            return False, None
        head = (gitdir / "HEAD").read_text().strip()
        if _HEX.fullmatch(head):
            return True, head
        if not head.startswith("ref: "):
            return False, None
        commit = _resolve_ref(head[5:].strip(), gitdir, common)
        return commit is not None, commit
    except (OSError, UnicodeDecodeError):
        return False, None


_ASK = Path("/nonexistent/ask-git")  # a layout only git should judge


def _find_gitdir(start: Path) -> Path | None:
    for folder in (start, *start.parents):
        dotgit = folder / ".git"
        if dotgit.is_dir():
            return dotgit
        if dotgit.is_file():
            text = dotgit.read_text().strip()
            if not text.startswith("gitdir: "):
                return _ASK
            return (folder / text[8:].strip()).resolve()
        if (folder / "HEAD").is_file() and (folder / "objects").is_dir():
            return _ASK  # inside a bare repository (or its .git folder): git's discovery rules
    return None


def _resolve_ref(ref: str, gitdir: Path, common: Path) -> str | None:
    if not ref.startswith("refs/") or ".." in ref.split("/"):
        return None
    for base in (gitdir, common):
        loose = base / ref
        if loose.is_file():
            value = loose.read_text().strip()
            return value if _HEX.fullmatch(value) else None
    packed = common / "packed-refs"
    if packed.is_file():
        for line in packed.read_text().splitlines():
            sha, _, name = line.partition(" ")
            if name == ref and _HEX.fullmatch(sha):
                return sha
    return None

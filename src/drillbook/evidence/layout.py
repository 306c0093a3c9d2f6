"""Names and shapes of a bundle's files: one place, shared by the builder and the verifier."""

from __future__ import annotations

import re
from pathlib import Path

__all__ = [
    "AAR_HTML",
    "AAR_JSON",
    "BUNDLE_FORMAT",
    "ENVIRONMENT",
    "EVENTS",
    "JOURNAL",
    "MANIFEST",
    "PREDICATE_TYPE",
    "RUN_DIR",
    "SIGNOFFS_DIR",
    "SIGNOFF_RE",
    "SIGNOFF_TYPE",
    "STATEMENT",
    "bundle_files",
]

BUNDLE_FORMAT = "drillbook-evidence/v1"
PREDICATE_TYPE = "https://drillbook.dev/evidence/v1"
SIGNOFF_TYPE = "https://drillbook.dev/evidence/signoff/v1"

RUN_DIR = "run"
JOURNAL = "run/journal.json"
EVENTS = "run/events.jsonl"
ENVIRONMENT = "environment.json"
AAR_JSON = "after-action.json"
AAR_HTML = "after-action.html"
MANIFEST = "manifest.json"
STATEMENT = "statement.dsse.json"
SIGNOFFS_DIR = "signoffs"
SIGNOFF_RE = re.compile(r"^signoffs/(\d{4})\.dsse\.json$")


def bundle_files(root: Path) -> list[str]:
    """Every entry under ``root`` as a POSIX relative path, sorted; symlinks and dirs flagged.

    Directories are not listed (only files), but a symlink or special file is returned with a
    trailing marker so the verifier can reject it: a bundle holds regular files only.
    """
    found: list[str] = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_symlink():
            found.append(rel + " (symlink)")
        elif path.is_file():
            found.append(rel)
        elif not path.is_dir():
            found.append(rel + " (special file)")
    return found

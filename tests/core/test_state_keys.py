"""No built-in fault saves a revert fact under a key the intent ledger hides on disk.

Values under secret-looking keys (``token``, ``password``, ``*_key``...) are written as ``***``,
and rollback refuses an intent whose saved state lost a value that way. A fault that kept its
injection marker as ``token`` could then not be reverted after a crash (the crash matrix found
k8s.isolate doing exactly that). This reads every ``self._state[...]`` key in the source."""

from __future__ import annotations

import re
from pathlib import Path

from drillbook.redact import is_secret_key

SRC = Path(__file__).resolve().parents[2] / "src" / "drillbook"
KEY = re.compile(r"_state(?:\.get\(|\[|\.setdefault\(|\.pop\()\s*[\"']([\w.-]+)[\"']")


def test_no_fault_state_key_is_one_the_ledger_hides() -> None:
    found: dict[str, list[str]] = {}
    for path in SRC.rglob("*.py"):
        for key in KEY.findall(path.read_text()):
            found.setdefault(key, []).append(path.name)
    assert len(found) > 30  # the pattern still finds the backends' state keys
    hidden = {key: files for key, files in found.items() if is_secret_key(key)}
    assert hidden == {}

"""A trust-on-first-use record for verifying bundles: the signer's key and the sign-offs seen.

Why: a bundle carries its signer's public key, so verifying with that key alone proves integrity,
not origin — a forger who re-signs everything with their own key passes. And nothing after the
newest sign-off vouches for it, so deleting it leaves a bundle that verifies. An auditor who pins
the key (``--public-key``) closes the first hole; this record closes both for an auditor who has
no key handed to them: the first verification records the signer's key and each bundle's
sign-offs, and every later one must match that key and still hold every sign-off seen before.

The record is a small JSON file the auditor keeps (``drillbook evidence verify --trust FILE``)::

    {"keys": {"<keyid>": {"public_key": "<base64>", "first_bundle": "<run id>"}},
     "bundles": {"<manifest sha256>": {"run_id": "...", "signoffs": ["<sha256>", ...]}}}
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from drillbook.evidence.errors import EvidenceInputError
from drillbook.evidence.keys import public_key_from_b64

__all__ = ["TrustRecord"]


@dataclass
class TrustRecord:
    """Keys and sign-offs an earlier verification saw; ``path`` None means in memory only."""

    path: Path | None = None
    keys: dict[str, dict[str, Any]] = field(default_factory=dict)
    bundles: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> TrustRecord:
        """Read ``path``; a missing file is an empty record (the first use)."""
        if not path.exists():
            return cls(path)
        try:
            doc = json.loads(path.read_text("utf-8"))
        except (OSError, ValueError) as exc:
            raise EvidenceInputError(f"unreadable trust record ({exc})", source=str(path)) from None
        if not isinstance(doc, dict):
            raise EvidenceInputError("expected a JSON object", source=str(path))
        return cls(path, dict(doc.get("keys") or {}), dict(doc.get("bundles") or {}))

    def public_keys(self) -> list[Ed25519PublicKey]:
        return [public_key_from_b64(str(v["public_key"])) for v in self.keys.values()]

    def pin(self, keyid: str, public_key_b64: str, run_id: str) -> None:
        self.keys.setdefault(keyid, {"public_key": public_key_b64, "first_bundle": run_id})

    def signoffs_seen(self, manifest_sha256: str) -> list[str]:
        return list((self.bundles.get(manifest_sha256) or {}).get("signoffs") or [])

    def record(self, manifest_sha256: str, run_id: str, signoffs: list[str]) -> None:
        self.bundles[manifest_sha256] = {"run_id": run_id, "signoffs": signoffs}

    def save(self) -> None:
        """Write atomically (a crash never leaves half a record)."""
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        doc = {"keys": self.keys, "bundles": self.bundles}
        fd, tmp = tempfile.mkstemp(prefix=".trust-", dir=self.path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(doc, fh, indent=2, sort_keys=True)
            fh.write("\n")
        os.replace(tmp, self.path)

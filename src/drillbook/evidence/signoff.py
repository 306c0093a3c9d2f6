"""Signed sign-offs appended to a bundle after the fact.

Why outside the manifest: the manifest and its statement are sealed when the bundle is built;
people sign off later. Each sign-off is its own DSSE envelope naming the manifest hash it approves
and the hash of the sign-off before it, so sign-offs cannot be moved to another bundle or
reordered, and adding one never invalidates the rest.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from drillbook.clock import get_clock, utc_iso
from drillbook.evidence import layout
from drillbook.evidence.archive import archive_path, extract_bundle, write_archive
from drillbook.evidence.dsse import envelope_bytes, sign_envelope
from drillbook.evidence.errors import EvidenceError, EvidenceInputError
from drillbook.evidence.hashing import sha256_file
from drillbook.evidence.keys import key_id, public_key_b64, resolve_signing_key
from drillbook.evidence.verify import verify_bundle

__all__ = ["sign_off"]


def _append(root: Path, name: str, role: str, note: str | None, key: Ed25519PrivateKey) -> Path:
    check = verify_bundle(root)
    if not check.ok:
        raise EvidenceError(
            "refusing to sign off a bundle that does not verify: " + "; ".join(check.problems[:5])
        )
    folder = root / layout.SIGNOFFS_DIR
    folder.mkdir(exist_ok=True)
    existing = sorted(folder.glob("*.dsse.json"))
    previous = sha256_file(existing[-1]) if existing else None
    payload = {
        "_type": layout.SIGNOFF_TYPE,
        "manifest_sha256": check.manifest_sha256,
        "run_id": check.manifest.get("run_id"),
        "previous_signoff_sha256": previous,
        "name": name,
        "role": role,
        "note": note,
        "signed_at": utc_iso(get_clock().wall()),
        "signer": {"keyid": key_id(key), "public_key": public_key_b64(key)},
    }
    envelope = sign_envelope(payload, key, payload_type="application/vnd.drillbook.signoff+json")
    target = folder / f"{len(existing) + 1:04d}.dsse.json"
    target.write_bytes(envelope_bytes(envelope))
    return target


def sign_off(
    bundle: Path,
    *,
    name: str,
    role: str,
    key: Ed25519PrivateKey | Path | str | None = None,
    note: str | None = None,
) -> Path:
    """Append a sign-off to a bundle folder (refreshing its archive) or to a ``.tar.gz``.

    Returns the sign-off file (inside the folder) or the rewritten archive.
    """
    if not name.strip() or not role.strip():
        raise EvidenceInputError("name and role must not be empty", field="sign-off")
    signing_key = resolve_signing_key(key)
    bundle = Path(bundle)
    if bundle.is_dir():
        written = _append(bundle, name, role, note, signing_key)
        if archive_path(bundle).exists():
            write_archive(bundle)
        return written
    if not bundle.is_file():
        raise EvidenceInputError("no such bundle", source=str(bundle))
    with tempfile.TemporaryDirectory(prefix="drillbook-signoff-", dir=bundle.parent) as tmp:
        root = extract_bundle(bundle, Path(tmp))
        _append(root, name, role, note, signing_key)
        rebuilt = write_archive(root)
        shutil.move(str(rebuilt), str(bundle))
    return bundle

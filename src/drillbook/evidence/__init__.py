"""Evidence bundles an auditor can verify on their own: manifest, hash chain, DSSE signature.

Heavy pieces (cryptography, jinja2) are imported when a function is first used, so
``import drillbook.evidence`` stays cheap for the scenario validator, which needs only the
control catalog.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from drillbook.evidence.controls import Control, known_controls

if TYPE_CHECKING:
    from collections.abc import Mapping

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from drillbook.evidence.verify import VerifyResult

__all__ = ["Control", "build_bundle", "known_controls", "sign_off", "verify_bundle"]


def build_bundle(
    run_dir: Path,
    *,
    out_dir: Path | None = None,
    key: Ed25519PrivateKey | Path | str | None = None,
    config_snapshot: Mapping[str, Any] | None = None,
    notes: Mapping[str, Any] | None = None,
) -> Path:
    """Bundle a run folder; see :func:`drillbook.evidence.bundle.build_bundle`."""
    from drillbook.evidence.bundle import build_bundle as _build

    return _build(run_dir, out_dir=out_dir, key=key, config_snapshot=config_snapshot, notes=notes)


def verify_bundle(bundle: Path, trusted_keys: Any = (), trust: Any = None) -> VerifyResult:
    """Verify a bundle folder or archive; see :func:`drillbook.evidence.verify.verify_bundle`.

    Without ``trusted_keys`` or a ``trust`` record the result is not authenticated (it says so
    in ``warnings``)."""
    from drillbook.evidence.verify import verify_bundle as _verify

    return _verify(bundle, trusted_keys, trust)


def sign_off(
    bundle: Path, *, name: str, role: str, key: Any = None, note: str | None = None
) -> Path:
    """Append a signed sign-off; see :func:`drillbook.evidence.signoff.sign_off`."""
    from drillbook.evidence.signoff import sign_off as _sign_off

    return _sign_off(bundle, name=name, role=role, key=key, note=note)

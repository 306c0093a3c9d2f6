"""Ed25519 signing keys: generate, load from a file or the environment, and name them.

Why Ed25519: small deterministic signatures, no parameters to get wrong, and every language a
third-party verifier might use has it. A key's id is the SHA-256 of its raw 32-byte public key,
so a verifier can recompute it from the public key alone.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from drillbook.evidence.errors import EvidenceInputError
from drillbook.evidence.hashing import sha256_bytes

__all__ = [
    "ENV_KEY",
    "ENV_KEY_FILE",
    "default_key_path",
    "generate_key",
    "git_would_track",
    "key_id",
    "load_private_key",
    "load_public_key",
    "private_key_pem",
    "public_key_b64",
    "public_key_from_b64",
    "public_key_pem",
    "resolve_signing_key",
]

ENV_KEY = "DRILLBOOK_SIGNING_KEY"
ENV_KEY_FILE = "DRILLBOOK_SIGNING_KEY_FILE"


def default_key_path(env: Mapping[str, str] | None = None) -> Path:
    """Where ``keygen`` writes and ``bundle`` looks by default: the user's config folder
    (``$XDG_CONFIG_HOME/drillbook/signing.key``, else ``~/.config/drillbook/signing.key``), never
    the working directory, where a private key would sit beside the repo's files."""
    environ = os.environ if env is None else env
    base = environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "drillbook" / "signing.key"


def git_would_track(path: Path) -> bool:
    """Whether ``path`` lies in a git work tree and is not ignored there (``git add -A`` would
    pick it up). False when git is not installed."""
    import shutil
    import subprocess

    git = shutil.which("git")
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if git is None:
        return False
    inside = subprocess.run(
        [git, "-C", str(folder), "rev-parse", "--is-inside-work-tree"],
        capture_output=True,
        text=True,
        check=False,
    )
    if inside.returncode != 0 or inside.stdout.strip() != "true":
        return False
    ignored = subprocess.run(
        [git, "-C", str(folder), "check-ignore", "-q", "--no-index", str(path.absolute())],
        capture_output=True,
        check=False,
    )
    return ignored.returncode != 0


def generate_key() -> Ed25519PrivateKey:
    """A fresh private key."""
    return Ed25519PrivateKey.generate()


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(key: Ed25519PublicKey | Ed25519PrivateKey) -> str:
    """SHA-256 hex of the raw public key."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return sha256_bytes(_raw_public(public))


def public_key_b64(key: Ed25519PublicKey | Ed25519PrivateKey) -> str:
    """Standard base64 of the raw 32-byte public key (what bundles embed)."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return base64.b64encode(_raw_public(public)).decode()


def public_key_from_b64(text: str) -> Ed25519PublicKey:
    """Inverse of :func:`public_key_b64`; raises ValueError on anything else."""
    raw = base64.b64decode(text, validate=True)
    return Ed25519PublicKey.from_public_bytes(raw)


def private_key_pem(key: Ed25519PrivateKey) -> bytes:
    """PKCS#8 PEM, unencrypted: protect the file with permissions (keygen writes it 0600)."""
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def public_key_pem(key: Ed25519PublicKey | Ed25519PrivateKey) -> bytes:
    """SubjectPublicKeyInfo PEM, what `openssl pkey -pubin` reads."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _parse_private(data: bytes, source: str) -> Ed25519PrivateKey:
    text = data.strip()
    if text.startswith(b"-----BEGIN"):
        try:
            key = serialization.load_pem_private_key(text, password=None)
        except (ValueError, TypeError) as exc:
            raise EvidenceInputError(
                f"not an unencrypted PEM private key ({exc.__class__.__name__})",
                source=source,
                field="signing key",
            ) from None
        if not isinstance(key, Ed25519PrivateKey):
            raise EvidenceInputError("expected an Ed25519 key", source=source, field="signing key")
        return key
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise EvidenceInputError(
            "expected a PEM Ed25519 private key or base64 of its 32-byte seed",
            source=source,
            field="signing key",
        )
    return Ed25519PrivateKey.from_private_bytes(raw)


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """Read a private key file (PEM or base64 seed)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise EvidenceInputError(
            f"cannot read ({exc.strerror})", source=str(path), field="signing key"
        ) from None
    return _parse_private(data, str(path))


def load_public_key(path: Path) -> Ed25519PublicKey:
    """Read a public key: PEM (SubjectPublicKeyInfo) or base64 of the raw 32 bytes."""
    try:
        data = path.read_bytes().strip()
    except OSError as exc:
        raise EvidenceInputError(
            f"cannot read ({exc.strerror})", source=str(path), field="public key"
        ) from None
    try:
        if data.startswith(b"-----BEGIN"):
            key = serialization.load_pem_public_key(data)
            if isinstance(key, Ed25519PublicKey):
                return key
            raise ValueError("not Ed25519")
        return public_key_from_b64(data.decode())
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise EvidenceInputError(
            "expected an Ed25519 public key (PEM or base64 of 32 bytes)",
            source=str(path),
            field="public key",
        ) from None


def resolve_signing_key(
    key: Ed25519PrivateKey | Path | str | None = None,
    env: Mapping[str, str] | None = None,
) -> Ed25519PrivateKey:
    """The key to sign with: an explicit key or path, else $DRILLBOOK_SIGNING_KEY(_FILE), else
    the file ``keygen`` writes by default (:func:`default_key_path`).

    Why no silent ephemeral key: a bundle signed by a key nobody kept proves nothing, so a missing
    key is an input error that tells the operator how to make one.
    """
    if isinstance(key, Ed25519PrivateKey):
        return key
    if key is not None:
        return load_private_key(Path(key))
    environ = os.environ if env is None else env
    if environ.get(ENV_KEY):
        return _parse_private(environ[ENV_KEY].encode(), f"${ENV_KEY}")
    if environ.get(ENV_KEY_FILE):
        return load_private_key(Path(environ[ENV_KEY_FILE]))
    default = default_key_path(environ)
    if default.is_file():
        return load_private_key(default)
    raise EvidenceInputError(
        f"no signing key: pass --key FILE, set {ENV_KEY_FILE} / {ENV_KEY}, or create "
        f"{default} with `drillbook evidence keygen`",
        field="signing key",
    )

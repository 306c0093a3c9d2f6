"""DSSE envelopes (https://github.com/secure-systems-lab/dsse, protocol v1) and in-toto Statements.

Why DSSE: the signature covers the payload type as well as the bytes (PAE), so a signed
statement cannot be replayed as some other kind of document, and off-the-shelf in-toto tooling
can read the envelope.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from drillbook.evidence.hashing import canonical_json
from drillbook.evidence.keys import key_id

__all__ = [
    "INTOTO_PAYLOAD_TYPE",
    "STATEMENT_TYPE",
    "EnvelopeError",
    "envelope_bytes",
    "make_statement",
    "open_envelope",
    "pae",
    "peek_payload",
    "sign_envelope",
]

INTOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"


class EnvelopeError(ValueError):
    """An envelope that is malformed or whose signature does not verify; the message says which."""


def pae(payload_type: str, payload: bytes) -> bytes:
    """Pre-Authentication Encoding: ``DSSEv1 SP LEN(type) SP type SP LEN(body) SP body``."""
    type_bytes = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(type_bytes), type_bytes, len(payload), payload)


def envelope_bytes(envelope: Mapping[str, Any]) -> bytes:
    """The one file form of an envelope (2-space indent, sorted keys, final newline).

    Why fixed: base64 and JSON both allow several spellings of the same content; pinning one
    makes every changed byte of an envelope file detectable, not only the meaningful ones.
    """
    return (json.dumps(dict(envelope), indent=2, sort_keys=True) + "\n").encode()


def _b64(text: Any, what: str, name: str) -> bytes:
    """Strict base64: valid alphabet and canonical (re-encodes to the same text)."""
    try:
        raw = base64.b64decode(str(text), validate=True)
    except (binascii.Error, ValueError):
        raise EnvelopeError(f"{name}: {what} is not valid base64") from None
    if base64.b64encode(raw).decode() != text:
        raise EnvelopeError(f"{name}: {what} is not canonical base64 (altered)")
    return raw


def make_statement(
    subjects: Mapping[str, str], predicate_type: str, predicate: Mapping[str, Any]
) -> dict[str, Any]:
    """An in-toto Statement v1 with one subject per (name, sha256) pair, sorted by name."""
    return {
        "_type": STATEMENT_TYPE,
        "subject": [
            {"name": name, "digest": {"sha256": digest}}
            for name, digest in sorted(subjects.items())
        ],
        "predicateType": predicate_type,
        "predicate": dict(predicate),
    }


def sign_envelope(
    payload_obj: Mapping[str, Any], key: Ed25519PrivateKey, payload_type: str = INTOTO_PAYLOAD_TYPE
) -> dict[str, Any]:
    """Sign canonical JSON of ``payload_obj`` and wrap it in a DSSE envelope."""
    payload = canonical_json(payload_obj)
    signature = key.sign(pae(payload_type, payload))
    return {
        "payload": base64.b64encode(payload).decode(),
        "payloadType": payload_type,
        "signatures": [{"keyid": key_id(key), "sig": base64.b64encode(signature).decode()}],
    }


def open_envelope(
    envelope: Any, keys: Sequence[Ed25519PublicKey], *, name: str
) -> tuple[dict[str, Any], str]:
    """Verify ``envelope`` against ``keys``; return (payload object, keyid that verified).

    Raises :class:`EnvelopeError` naming ``name`` and what failed: shape, keyid, or signature.
    """
    if not isinstance(envelope, dict):
        raise EnvelopeError(f"{name}: not a DSSE envelope (expected a JSON object)")
    payload_type = envelope.get("payloadType")
    sigs = envelope.get("signatures")
    payload = _b64(envelope.get("payload"), "payload", name)
    if not isinstance(payload_type, str) or not isinstance(sigs, list) or not sigs:
        raise EnvelopeError(f"{name}: envelope lacks payloadType or signatures")
    by_id = {key_id(k): k for k in keys}
    message = pae(payload_type, payload)
    failures: list[str] = []
    for entry in sigs:
        if not isinstance(entry, dict):
            failures.append("a signature entry is not an object")
            continue
        keyid = str(entry.get("keyid", ""))
        key = by_id.get(keyid)
        if key is None:
            failures.append(
                f"signature keyid {keyid or '(none)'} is not the expected signer "
                f"({', '.join(sorted(by_id)) or 'no trusted key'})"
            )
            continue
        try:
            key.verify(_b64(entry.get("sig"), "sig", name), message)
        except (InvalidSignature, EnvelopeError):
            failures.append(f"signature by keyid {keyid} does not verify (payload or sig altered)")
            continue
        try:
            obj = json.loads(payload)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise EnvelopeError(f"{name}: payload is not JSON") from None
        if not isinstance(obj, dict):
            raise EnvelopeError(f"{name}: payload is not a JSON object")
        return obj, keyid
    raise EnvelopeError(f"{name}: " + "; ".join(failures))


def peek_payload(envelope: Any, *, name: str) -> dict[str, Any]:
    """Decode the payload WITHOUT verifying it: only to find which key claims to have signed."""
    if not isinstance(envelope, dict):
        raise EnvelopeError(f"{name}: not a DSSE envelope (expected a JSON object)")
    try:
        obj = json.loads(base64.b64decode(str(envelope.get("payload")), validate=True))
    except (binascii.Error, ValueError):
        raise EnvelopeError(f"{name}: payload is not base64 of JSON") from None
    if not isinstance(obj, dict):
        raise EnvelopeError(f"{name}: payload is not a JSON object")
    return obj

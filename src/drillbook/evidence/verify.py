"""Verify a bundle: signature, manifest, files, event chain, sign-offs, and the bundle chain.

Every problem is a sentence naming the file and, for hashes, the expected and the actual value.
Verification never stops at the first problem: an auditor needs the whole list.

Integrity is not origin: without a pinned key (``trusted_keys``, or a trust-on-first-use record,
see :mod:`drillbook.evidence.trust`) the signature is checked against the key the bundle itself
carries, which a forger can replace. Such a result says so in ``warnings`` and has
``authenticated`` False.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from drillbook.evidence import layout
from drillbook.evidence.archive import archive_bytes, extract_bundle
from drillbook.evidence.chain import check_chain_bytes
from drillbook.evidence.dsse import EnvelopeError, envelope_bytes, open_envelope, peek_payload
from drillbook.evidence.errors import EvidenceError
from drillbook.evidence.hashing import sha256_file
from drillbook.evidence.keys import key_id, public_key_b64, public_key_from_b64
from drillbook.evidence.trust import TrustRecord

__all__ = ["VerifyResult", "verify_bundle", "verify_bundle_chain"]


@dataclass
class VerifyResult:
    """Outcome: ``problems`` empty means the bundle verified; ``info`` says what was checked."""

    bundle: str
    problems: list[str] = field(default_factory=list)
    info: list[str] = field(default_factory=list)
    manifest: dict[str, Any] = field(default_factory=dict)
    manifest_sha256: str | None = None
    signoffs: list[dict[str, Any]] = field(default_factory=list)
    #: True only when the statement's signature was checked against a pinned key.
    authenticated: bool = False
    warnings: list[str] = field(default_factory=list)
    signer: tuple[str, str] | None = None  # (keyid, base64 public key) the statement names

    @property
    def ok(self) -> bool:
        return not self.problems


NOT_AUTHENTICATED = (
    "AUTHENTICITY NOT CHECKED: no pinned key (--public-key or --trust), so the signature was "
    "checked only against the key the bundle carries; anyone can re-sign a bundle with their own "
    "key, and deleting its newest sign-off goes unnoticed"
)


def _inside(root: Path, name: str) -> Path | None:
    """``root / name`` when it stays inside the bundle (no absolute path, no ``..``, no symlink
    leading out), else None."""
    parts = Path(name).parts
    if not name or not parts or Path(name).is_absolute() or ".." in parts:
        return None
    path = root / name
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        return None
    return path


def _load_json(path: Path, rel: str, result: VerifyResult) -> Any:
    if not path.is_file():
        result.problems.append(f"{rel}: missing")
        return None
    try:
        return json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        result.problems.append(f"{rel}: not valid JSON ({exc.msg if hasattr(exc, 'msg') else exc})")
        return None


def _load_envelope(path: Path, rel: str, result: VerifyResult) -> Any:
    envelope = _load_json(path, rel, result)
    if isinstance(envelope, dict) and envelope_bytes(envelope) != path.read_bytes():
        result.problems.append(f"{rel}: bytes are not the canonical form of its content (altered)")
    return envelope


def _check_statement(
    root: Path, trusted: Sequence[Ed25519PublicKey], result: VerifyResult
) -> dict[str, Any] | None:
    envelope = _load_envelope(root / layout.STATEMENT, layout.STATEMENT, result)
    if envelope is None:
        return None
    try:
        claimed = peek_payload(envelope, name=layout.STATEMENT)
        signer = (claimed.get("predicate") or {}).get("signer") or {}
        embedded = public_key_from_b64(str(signer.get("public_key")))
    except (EnvelopeError, ValueError) as exc:
        result.problems.append(f"{layout.STATEMENT}: cannot read the signer's key ({exc})")
        return None
    if str(signer.get("keyid")) != key_id(embedded):
        result.problems.append(
            f"{layout.STATEMENT}: signer keyid expected {key_id(embedded)} "
            f"(sha256 of the embedded public key), actual {signer.get('keyid')}"
        )
    if trusted:
        trusted_ids = {key_id(k) for k in trusted}
        if key_id(embedded) not in trusted_ids:
            result.problems.append(
                f"{layout.STATEMENT}: signed by keyid {key_id(embedded)}, which is not a trusted "
                f"key (trusted: {', '.join(sorted(trusted_ids))})"
            )
            return None
    result.signer = (key_id(embedded), public_key_b64(embedded))
    try:
        statement, keyid = open_envelope(envelope, [embedded], name=layout.STATEMENT)
    except EnvelopeError as exc:
        result.problems.append(str(exc))
        return None
    result.authenticated = bool(trusted)
    if not trusted:
        result.warnings.append(NOT_AUTHENTICATED)
    pinned = "a pinned key" if trusted else "the key embedded in the bundle (NOT pinned)"
    result.info.append(f"signature: Ed25519 keyid {keyid}, verified with {pinned}")
    if statement.get("predicateType") != layout.PREDICATE_TYPE:
        result.problems.append(
            f"{layout.STATEMENT}: predicateType expected {layout.PREDICATE_TYPE}, "
            f"actual {statement.get('predicateType')}"
        )
    return statement


def _subjects(statement: Mapping[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for subject in statement.get("subject", []) or []:
        if isinstance(subject, Mapping):
            out[str(subject.get("name"))] = str((subject.get("digest") or {}).get("sha256"))
    return out


def _check_files(
    root: Path,
    manifest: Mapping[str, Any],
    subjects: Mapping[str, str] | None,
    result: VerifyResult,
) -> None:
    files = manifest.get("files")
    if not isinstance(files, Mapping):
        result.problems.append(f"{layout.MANIFEST}: has no files table")
        return
    if subjects is not None:
        for name in sorted(set(subjects) - set(files) - {layout.MANIFEST}):
            result.problems.append(
                f"{layout.MANIFEST}: signed statement lists {name}, manifest does not"
            )
        for name in sorted(set(files) - set(subjects)):
            result.problems.append(f"{layout.MANIFEST}: lists {name}, signed statement does not")
    for name, entry in sorted(files.items()):
        expected = str((entry or {}).get("sha256"))
        if subjects is not None and name in subjects and subjects[name] != expected:
            result.problems.append(
                f"{layout.MANIFEST}: entry for {name}: sha256 expected {subjects[name]} "
                f"(signed statement), actual {expected}"
            )
        path = _inside(root, name)
        if path is None:
            result.problems.append(
                f"{layout.MANIFEST}: entry {name!r} is not a path inside the bundle"
            )
            continue
        if not path.is_file() or path.is_symlink():
            result.problems.append(f"{name}: missing (listed in manifest with sha256 {expected})")
            continue
        actual = sha256_file(path)
        if actual != expected:
            size = path.stat().st_size
            result.problems.append(
                f"{name}: sha256 expected {expected}, actual {actual} "
                f"(size expected {(entry or {}).get('size')}, actual {size})"
            )
    allowed = set(files) | {layout.MANIFEST, layout.STATEMENT}
    for rel in layout.bundle_files(root):
        if rel not in allowed and not layout.SIGNOFF_RE.match(rel):
            result.problems.append(f"{rel}: unexpected file (not in the manifest)")


def _check_events(root: Path, manifest: Mapping[str, Any], result: VerifyResult) -> None:
    meta = manifest.get("events") or {}
    if not isinstance(meta, Mapping):
        result.problems.append(f"{layout.MANIFEST}: events is not an object")
        return
    name = str(meta.get("file") or layout.EVENTS)
    path = _inside(root, name)
    if path is None:
        result.problems.append(
            f"{layout.MANIFEST}: events.file {name!r} is not a path inside the bundle"
        )
        return
    if name not in (manifest.get("files") or {}):
        result.problems.append(f"{layout.MANIFEST}: events.file {name} is not among its files")
    if not path.is_file() or path.is_symlink():
        return  # reported as missing by the file check (or by the line above)
    chain = check_chain_bytes(path.read_bytes(), name=name)
    result.problems.extend(chain.problems)
    if meta.get("lines") != chain.lines:
        result.problems.append(
            f"{name}: event count expected {meta.get('lines')} (manifest), actual {chain.lines}"
        )
    if meta.get("head_sha256") != chain.head:
        result.problems.append(
            f"{name}: chain head expected {meta.get('head_sha256')} (manifest), actual {chain.head}"
        )
    if chain.ok:
        result.info.append(f"event chain: {chain.lines} events linked, head {chain.head[:16]}…")


def _check_signoffs(root: Path, manifest_sha: str | None, result: VerifyResult) -> None:
    folder = root / layout.SIGNOFFS_DIR
    if not folder.is_dir():
        return
    prev: str | None = None
    for number, path in enumerate(sorted(folder.glob("*.dsse.json")), start=1):
        rel = path.relative_to(root).as_posix()
        match = layout.SIGNOFF_RE.match(rel)
        if match is None:
            continue  # reported as stray by the file check
        if int(match.group(1)) != number:
            result.problems.append(
                f"{rel}: sign-off number expected {number:04d}, a sign-off is missing"
            )
        envelope = _load_envelope(path, rel, result)
        if envelope is None:
            prev = sha256_file(path)
            continue
        try:
            claimed = peek_payload(envelope, name=rel)
            public = public_key_from_b64(str((claimed.get("signer") or {}).get("public_key")))
            payload, keyid = open_envelope(envelope, [public], name=rel)
        except (EnvelopeError, ValueError) as exc:
            result.problems.append(str(exc) if isinstance(exc, EnvelopeError) else f"{rel}: {exc}")
            prev = sha256_file(path)
            continue
        if payload.get("_type") != layout.SIGNOFF_TYPE:
            result.problems.append(
                f"{rel}: _type expected {layout.SIGNOFF_TYPE}, actual {payload.get('_type')}"
            )
        if payload.get("manifest_sha256") != manifest_sha:
            result.problems.append(
                f"{rel}: signs manifest sha256 {payload.get('manifest_sha256')}, "
                f"bundle's manifest is {manifest_sha}"
            )
        if payload.get("previous_signoff_sha256") != prev:
            result.problems.append(
                f"{rel}: previous_signoff_sha256 expected {prev}, actual "
                f"{payload.get('previous_signoff_sha256')}"
            )
        result.signoffs.append(
            {
                "file": rel,
                "name": payload.get("name"),
                "role": payload.get("role"),
                "signed_at": payload.get("signed_at"),
                "keyid": keyid,
            }
        )
        prev = sha256_file(path)


def _verify_folder(root: Path, trusted: Sequence[Ed25519PublicKey], label: str) -> VerifyResult:
    result = VerifyResult(bundle=label)
    statement = _check_statement(root, trusted, result)
    subjects = _subjects(statement) if statement is not None else None
    manifest_path = root / layout.MANIFEST
    manifest_sha = sha256_file(manifest_path) if manifest_path.is_file() else None
    result.manifest_sha256 = manifest_sha
    if statement is not None and manifest_sha is not None:
        expected = subjects.get(layout.MANIFEST) if subjects else None
        signed = (statement.get("predicate") or {}).get("manifest_sha256")
        if expected != manifest_sha or signed != manifest_sha:
            result.problems.append(
                f"{layout.MANIFEST}: sha256 expected {expected} (signed statement), "
                f"actual {manifest_sha}"
            )
    manifest = _load_json(manifest_path, layout.MANIFEST, result)
    if not isinstance(manifest, dict):
        if manifest is not None:
            result.problems.append(f"{layout.MANIFEST}: expected a JSON object")
        # Still report stray/missing files against what the statement signed.
        if subjects:
            _check_files(
                root,
                {"files": {n: {"sha256": d} for n, d in subjects.items() if n != layout.MANIFEST}},
                None,
                result,
            )
        return result
    result.manifest = manifest
    if statement is not None:
        predicate = statement.get("predicate") or {}
        if predicate.get("previous") != manifest.get("previous"):
            result.problems.append(
                f"{layout.MANIFEST}: previous-bundle links differ from the signed statement"
            )
    _check_files(root, manifest, subjects, result)
    _check_events(root, manifest, result)
    _check_signoffs(root, manifest_sha, result)
    if result.ok:
        count = len(manifest.get("files") or {})
        result.info.append(f"manifest: {count} files, every sha256 matches")
    return result


def _signoff_hashes(root: Path) -> list[str]:
    folder = root / layout.SIGNOFFS_DIR
    return [sha256_file(p) for p in sorted(folder.glob("*.dsse.json"))] if folder.is_dir() else []


def _verify_trusted(
    root: Path, trusted: Sequence[Ed25519PublicKey], trust: TrustRecord | None, label: str
) -> VerifyResult:
    """Verify against ``trusted`` plus the record's keys; on first use, pin the signer's key; and
    the record's sign-offs for this bundle must all still be there, in order."""
    first_use = trust is not None and not trust.keys and not trusted
    keys = [*trusted, *(trust.public_keys() if trust is not None else [])]
    result = _verify_folder(root, keys, label)
    if trust is None or result.manifest_sha256 is None:
        return result
    where = f" ({trust.path})" if trust.path else ""
    if first_use and result.ok and result.signer is not None:
        trust.pin(result.signer[0], result.signer[1], str(result.manifest.get("run_id")))
        result.warnings.append(
            f"trust on first use: pinned signer keyid {result.signer[0]} in the trust record"
            f"{where}; later bundles must be signed by it (this one's origin rests on that)"
        )
    present = _signoff_hashes(root)
    seen = trust.signoffs_seen(result.manifest_sha256)
    for number, digest in enumerate(seen, start=1):
        if number > len(present) or present[number - 1] != digest:
            result.problems.append(
                f"{layout.SIGNOFFS_DIR}/{number:04d}.dsse.json: recorded by an earlier "
                f"verification{where} with sha256 {digest}, now "
                + ("missing" if number > len(present) else f"sha256 {present[number - 1]}")
            )
    if result.ok:
        trust.record(result.manifest_sha256, str(result.manifest.get("run_id")), present)
    return result


def verify_bundle(
    bundle: Path,
    trusted_keys: Sequence[Ed25519PublicKey] = (),
    trust: TrustRecord | None = None,
) -> VerifyResult:
    """Verify a bundle folder or ``.tar.gz``; never raises for a tampered bundle.

    ``trust`` (a trust-on-first-use record) is updated in memory when the bundle verifies; the
    caller saves it."""
    bundle = Path(bundle)
    if bundle.is_dir():
        return _verify_trusted(bundle, trusted_keys, trust, str(bundle))
    if not bundle.is_file():
        return VerifyResult(bundle=str(bundle), problems=[f"{bundle}: no such bundle"])
    with tempfile.TemporaryDirectory(prefix="drillbook-verify-") as tmp:
        try:
            root = extract_bundle(bundle, Path(tmp))
        except EvidenceError as exc:
            return VerifyResult(bundle=str(bundle), problems=[str(exc)])
        result = _verify_trusted(root, trusted_keys, trust, str(bundle))
        original = bundle.read_bytes()
        canonical = archive_bytes(root)
        if original != canonical:
            at = next(
                (i for i, (a, b) in enumerate(zip(original, canonical, strict=False)) if a != b),
                min(len(original), len(canonical)),
            )
            result.problems.append(
                f"{bundle.name}: archive bytes differ from the canonical archive of its contents "
                f"at byte {at} (size expected {len(canonical)}, actual {len(original)})"
            )
        return result


def verify_bundle_chain(results: Sequence[VerifyResult]) -> list[str]:
    """Given verified bundles oldest first, check each scenario's ``previous`` link.

    A bundle's link must name the manifest hash of the latest earlier bundle (in this list) of the
    same scenario; a bundle whose scenario appears earlier but links elsewhere (or nowhere) means a
    bundle in between was removed or replaced.
    """
    problems: list[str] = []
    last: dict[str, VerifyResult] = {}
    for result in results:
        previous = result.manifest.get("previous") or {}
        for scenario in result.manifest.get("scenarios", []) or []:
            link = previous.get(scenario) if isinstance(previous, Mapping) else None
            before = last.get(scenario)
            if before is not None:
                got = (link or {}).get("manifest_sha256") if isinstance(link, Mapping) else None
                if got != before.manifest_sha256:
                    problems.append(
                        f"{result.bundle}: previous bundle of {scenario} expected manifest sha256 "
                        f"{before.manifest_sha256} ({before.bundle}), actual {got}"
                    )
            last[scenario] = result
    return problems

"""The tamper matrix: every way of altering a bundle fails verification and says what broke."""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from evidence_fixtures import MakeRun

from drillbook.evidence import build_bundle, sign_off, verify_bundle
from drillbook.evidence.archive import archive_path
from drillbook.evidence.dsse import envelope_bytes, pae
from drillbook.evidence.keys import key_id
from drillbook.evidence.trust import TrustRecord
from drillbook.evidence.verify import VerifyResult

FILES = [
    "after-action.html",
    "after-action.json",
    "environment.json",
    "manifest.json",
    "run/events.jsonl",
    "run/journal.json",
    "run/junit.xml",
    "run/nested/probe-log.txt",
    "run/report.md",
    "signoffs/0001.dsse.json",
    "signoffs/0002.dsse.json",
    "statement.dsse.json",
]


@pytest.fixture
def sealed(make_run: MakeRun, signing_key: Ed25519PrivateKey, tmp_path: Path) -> Path:
    """A bundle with two sign-offs, copied so each test may mutilate its own."""
    run_dir = make_run(
        extra={"report.md": "# report\n", "junit.xml": "<x/>\n", "nested/probe-log.txt": "ok\n"}
    )
    folder = build_bundle(run_dir, key=signing_key)
    sign_off(folder, name="Ada Lovelace", role="drill lead", key=signing_key)
    sign_off(folder, name="Grace Hopper", role="service owner", key=Ed25519PrivateKey.generate())
    names = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    assert names == FILES
    assert verify_bundle(folder).ok
    return folder


def _fails_naming(result: VerifyResult, *needles: str) -> None:
    assert not result.ok, "tampering went unnoticed"
    text = "\n".join(result.problems)
    for needle in needles:
        assert needle in text, f"{needle!r} not named in:\n{text}"


def test_untouched_bundle_passes(sealed: Path) -> None:
    result = verify_bundle(sealed)
    assert result.ok, result.problems
    assert [s["name"] for s in result.signoffs] == ["Ada Lovelace", "Grace Hopper"]
    assert verify_bundle(archive_path(sealed)).ok


@pytest.mark.parametrize("name", FILES)
@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_changing_one_byte_fails(sealed: Path, name: str, where: str) -> None:
    path = sealed / name
    data = bytearray(path.read_bytes())
    index = {"first": 0, "middle": len(data) // 2, "last": len(data) - 1}[where]
    data[index] ^= 0x01
    path.write_bytes(bytes(data))
    _fails_naming(verify_bundle(sealed), name)


@pytest.mark.parametrize("name", FILES)
def test_truncating_fails(sealed: Path, name: str) -> None:
    path = sealed / name
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    _fails_naming(verify_bundle(sealed), name)


@pytest.mark.parametrize("name", [f for f in FILES if f != "signoffs/0002.dsse.json"])
def test_deleting_fails(sealed: Path, name: str) -> None:
    (sealed / name).unlink()
    # A deleted sign-off shows as the gap it leaves in the numbering and the sign-off chain.
    expected = "signoffs/0002.dsse.json" if name == "signoffs/0001.dsse.json" else name
    _fails_naming(verify_bundle(sealed), expected)


def test_deleting_the_newest_signoff_fails_against_a_trust_record(sealed: Path) -> None:
    """Nothing after the newest sign-off vouches for it; the auditor's record of what an earlier
    verification saw does."""
    trust = TrustRecord()
    first = verify_bundle(sealed, trust=trust)
    assert first.ok, first.problems
    assert "trust on first use" in "\n".join(first.warnings)
    (sealed / "signoffs/0002.dsse.json").unlink()
    _fails_naming(
        verify_bundle(sealed, trust=trust),
        "signoffs/0002.dsse.json: recorded by an earlier verification",
        "now missing",
    )


def test_deleting_the_newest_signoff_unpinned_passes_but_says_so(sealed: Path) -> None:
    (sealed / "signoffs/0002.dsse.json").unlink()
    result = verify_bundle(sealed)
    assert result.ok and not result.authenticated
    assert [s["role"] for s in result.signoffs] == ["drill lead"]
    assert any("AUTHENTICITY NOT CHECKED" in w for w in result.warnings), result.warnings


def test_a_pinned_key_authenticates_and_does_not_warn(
    sealed: Path, signing_key: Ed25519PrivateKey
) -> None:
    result = verify_bundle(sealed, [signing_key.public_key()])
    assert result.ok and result.authenticated and not result.warnings


@pytest.mark.parametrize("name", ["../outside.jsonl", "/etc/hostname", "run/../../x.jsonl"])
def test_events_file_outside_the_bundle_fails(sealed: Path, name: str) -> None:
    (sealed.parent / "outside.jsonl").write_bytes((sealed / "run/events.jsonl").read_bytes())
    manifest = json.loads((sealed / "manifest.json").read_text())
    manifest["events"]["file"] = name
    (sealed / "manifest.json").write_text(json.dumps(manifest))
    _fails_naming(verify_bundle(sealed), f"events.file {name!r} is not a path inside the bundle")


def test_events_file_symlinked_out_of_the_bundle_fails(sealed: Path) -> None:
    (sealed.parent / "elsewhere").mkdir()
    (sealed / "evil").symlink_to(sealed.parent / "elsewhere")
    manifest = json.loads((sealed / "manifest.json").read_text())
    manifest["events"]["file"] = "evil/events.jsonl"
    (sealed / "manifest.json").write_text(json.dumps(manifest))
    _fails_naming(verify_bundle(sealed), "'evil/events.jsonl' is not a path inside the bundle")


@pytest.mark.parametrize(
    "stray", ["stray.txt", "run/stray.log", "signoffs/notes.txt", "signoffs/0009.dsse.json"]
)
def test_stray_file_fails(sealed: Path, stray: str) -> None:
    (sealed / stray).write_text("{}\n")
    _fails_naming(verify_bundle(sealed), stray)


def test_stray_symlink_fails(sealed: Path) -> None:
    (sealed / "run" / "link").symlink_to("/etc/hostname")
    _fails_naming(verify_bundle(sealed), "run/link (symlink)")


def _events(folder: Path) -> list[bytes]:
    return (folder / "run/events.jsonl").read_bytes().splitlines(keepends=True)


def test_reordering_two_events_fails(sealed: Path) -> None:
    lines = _events(sealed)
    lines[4], lines[5] = lines[5], lines[4]
    (sealed / "run/events.jsonl").write_bytes(b"".join(lines))
    _fails_naming(
        verify_bundle(sealed),
        "run/events.jsonl: sha256 expected",
        "run/events.jsonl:5: prev expected",
        "run/events.jsonl:5: seq expected 4, actual 5",
    )


def test_dropping_an_event_fails(sealed: Path) -> None:
    lines = _events(sealed)
    del lines[7]
    (sealed / "run/events.jsonl").write_bytes(b"".join(lines))
    _fails_naming(
        verify_bundle(sealed),
        "run/events.jsonl:8: prev expected",
        "event count expected 14 (manifest), actual 13",
    )


def test_dropping_the_last_event_fails(sealed: Path) -> None:
    (sealed / "run/events.jsonl").write_bytes(b"".join(_events(sealed)[:-1]))
    _fails_naming(verify_bundle(sealed), "run/events.jsonl: chain head expected")


def _resign(envelope_path: Path, key: Ed25519PrivateKey, keep_keyid: bool) -> None:
    envelope = json.loads(envelope_path.read_text())
    payload = base64.b64decode(envelope["payload"])
    sig = key.sign(pae(envelope["payloadType"], payload))
    entry = envelope["signatures"][0]
    entry["sig"] = base64.b64encode(sig).decode()
    if not keep_keyid:
        entry["keyid"] = key_id(key)
    envelope_path.write_bytes(envelope_bytes(envelope))


@pytest.mark.parametrize("keep_keyid", [True, False])
@pytest.mark.parametrize("name", ["statement.dsse.json", "signoffs/0001.dsse.json"])
def test_signature_from_another_key_fails(sealed: Path, name: str, keep_keyid: bool) -> None:
    _resign(sealed / name, Ed25519PrivateKey.generate(), keep_keyid)
    detail = "does not verify" if keep_keyid else "is not the expected signer"
    _fails_naming(verify_bundle(sealed), name, detail)


def test_full_resign_by_another_key_fails_against_a_pinned_key(
    sealed: Path, signing_key: Ed25519PrivateKey
) -> None:
    """A forger who re-signs everything with their own key passes only unpinned checks."""
    forger = Ed25519PrivateKey.generate()
    path = sealed / "statement.dsse.json"
    envelope = json.loads(path.read_text())
    statement = json.loads(base64.b64decode(envelope["payload"]))
    from drillbook.evidence.dsse import sign_envelope
    from drillbook.evidence.keys import public_key_b64

    statement["predicate"]["signer"] = {
        "keyid": key_id(forger),
        "public_key": public_key_b64(forger),
    }
    path.write_bytes(envelope_bytes(sign_envelope(statement, forger)))
    pinned = verify_bundle(sealed, [signing_key.public_key()])
    _fails_naming(pinned, "statement.dsse.json", f"signed by keyid {key_id(forger)}")
    # Unpinned it verifies, and says loudly that it proves nothing about who signed it.
    unpinned = verify_bundle(sealed)
    assert unpinned.ok and not unpinned.authenticated
    assert any("AUTHENTICITY NOT CHECKED" in w for w in unpinned.warnings), unpinned.warnings


def test_full_resign_by_another_key_fails_against_a_trust_record(
    sealed: Path, make_run: MakeRun, signing_key: Ed25519PrivateKey
) -> None:
    """The trust record pinned the signer at its first verification (of an earlier bundle)."""
    trust = TrustRecord()
    assert verify_bundle(build_bundle(make_run("earlier"), key=signing_key), trust=trust).ok
    forger = Ed25519PrivateKey.generate()
    path = sealed / "statement.dsse.json"
    envelope = json.loads(path.read_text())
    statement = json.loads(base64.b64decode(envelope["payload"]))
    from drillbook.evidence.dsse import sign_envelope
    from drillbook.evidence.keys import public_key_b64

    statement["predicate"]["signer"] = {
        "keyid": key_id(forger),
        "public_key": public_key_b64(forger),
    }
    path.write_bytes(envelope_bytes(sign_envelope(statement, forger)))
    _fails_naming(
        verify_bundle(sealed, trust=trust),
        "statement.dsse.json",
        f"signed by keyid {key_id(forger)}",
    )


def test_signoff_moved_from_another_bundle_fails(
    sealed: Path, make_run: MakeRun, signing_key: Ed25519PrivateKey
) -> None:
    other = build_bundle(make_run("other-run"), key=signing_key)
    sign_off(other, name="Mallory", role="auditor", key=signing_key)
    shutil.copyfile(other / "signoffs/0001.dsse.json", sealed / "signoffs/0003.dsse.json")
    _fails_naming(verify_bundle(sealed), "signoffs/0003.dsse.json: signs manifest sha256")


@pytest.mark.parametrize("where", [0, 4, 9, 100, -9, -1])
def test_flipping_a_byte_of_the_archive_fails(sealed: Path, where: int) -> None:
    archive = archive_path(sealed)
    data = bytearray(archive.read_bytes())
    data[where] ^= 0x01
    archive.write_bytes(bytes(data))
    result = verify_bundle(archive)
    assert (not result.ok and archive.name in "\n".join(result.problems)) or any(
        "expected" in p for p in result.problems
    ), result.problems


def test_manifest_paths_cannot_leave_the_bundle(
    make_run: MakeRun, signing_key: Ed25519PrivateKey
) -> None:
    """Even a validly signed manifest may not point the verifier outside the bundle."""
    from drillbook.evidence.dsse import make_statement, sign_envelope
    from drillbook.evidence.hashing import sha256_file

    folder = build_bundle(make_run(), key=signing_key)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["files"]["../outside.txt"] = {"sha256": "0" * 64, "size": 0}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    envelope = json.loads((folder / "statement.dsse.json").read_text())
    statement = json.loads(base64.b64decode(envelope["payload"]))
    subjects = {n: e["sha256"] for n, e in manifest["files"].items()}
    subjects["manifest.json"] = sha256_file(folder / "manifest.json")
    predicate = {**statement["predicate"], "manifest_sha256": subjects["manifest.json"]}
    forged = make_statement(subjects, statement["predicateType"], predicate)
    (folder / "statement.dsse.json").write_bytes(envelope_bytes(sign_envelope(forged, signing_key)))
    _fails_naming(verify_bundle(folder), "entry '../outside.txt' is not a path inside the bundle")

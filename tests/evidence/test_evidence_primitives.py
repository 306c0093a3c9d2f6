"""The pieces a third-party verifier must reproduce: PAE, the event chain, keys, the catalog."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from evidence_fixtures import write_events

from drillbook.evidence import known_controls
from drillbook.evidence.chain import check_chain, check_chain_bytes
from drillbook.evidence.dsse import EnvelopeError, open_envelope, pae, sign_envelope
from drillbook.evidence.errors import EvidenceInputError
from drillbook.evidence.keys import (
    key_id,
    load_public_key,
    private_key_pem,
    public_key_pem,
    resolve_signing_key,
)
from drillbook.evidence.redaction import REDACTED, SecretFinder

# The example from the DSSE protocol specification.
DSSE_SPEC_PAE = b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"


def test_pae_matches_the_dsse_spec_example() -> None:
    assert pae("http://example.com/HelloWorld", b"hello world") == DSSE_SPEC_PAE


def test_envelope_round_trip_and_wrong_key() -> None:
    key = Ed25519PrivateKey.generate()
    envelope = sign_envelope({"a": 1}, key)
    payload, keyid = open_envelope(envelope, [key.public_key()], name="x")
    assert payload == {"a": 1} and keyid == key_id(key)
    raw_sig = base64.b64decode(envelope["signatures"][0]["sig"])
    key.public_key().verify(
        raw_sig, pae(envelope["payloadType"], base64.b64decode(envelope["payload"]))
    )
    other = Ed25519PrivateKey.generate()
    with pytest.raises(EnvelopeError, match="is not the expected signer"):
        open_envelope(envelope, [other.public_key()], name="x")
    envelope["payloadType"] = "application/other"  # the type is covered by the signature
    with pytest.raises(EnvelopeError, match="does not verify"):
        open_envelope(envelope, [key.public_key()], name="x")


def test_key_id_is_sha256_of_raw_public_key() -> None:
    from cryptography.hazmat.primitives import serialization

    key = Ed25519PrivateKey.generate()
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert key_id(key) == hashlib.sha256(raw).hexdigest()


def test_keys_from_env_pem_and_seed(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization

    key = Ed25519PrivateKey.generate()
    pem = private_key_pem(key).decode()
    assert key_id(resolve_signing_key(env={"DRILLBOOK_SIGNING_KEY": pem})) == key_id(key)
    seed = key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    env = {"DRILLBOOK_SIGNING_KEY": base64.b64encode(seed).decode()}
    assert key_id(resolve_signing_key(env=env)) == key_id(key)
    with pytest.raises(EvidenceInputError, match=r"\$DRILLBOOK_SIGNING_KEY: signing key"):
        resolve_signing_key(env={"DRILLBOOK_SIGNING_KEY": "not a key"})
    pub = tmp_path / "k.pub"
    pub.write_bytes(public_key_pem(key))
    assert key_id(load_public_key(pub)) == key_id(key)


def test_chain_names_the_line_that_breaks(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    write_events(
        path,
        [{"run_id": "r", "drill": None, "kind": "phase", "t": "x", "mono_s": i} for i in range(5)],
    )
    report = check_chain(path)
    assert report.ok and report.lines == 5
    last = path.read_bytes().splitlines()[-1]
    assert report.head == hashlib.sha256(last).hexdigest()
    first = json.loads(path.read_bytes().splitlines()[0])
    assert first["prev"] == "0" * 64
    lines = path.read_bytes().splitlines(keepends=True)
    swapped = check_chain_bytes(b"".join([lines[0], lines[2], lines[1], *lines[3:]]))
    assert swapped.problems[0].startswith("events.jsonl:2: prev expected")
    assert "events.jsonl:2: seq expected 1, actual 2" in swapped.problems
    unterminated = check_chain_bytes(b"".join(lines)[:-1])
    assert "no trailing newline" in unterminated.problems[0]


def test_catalog_has_every_required_control() -> None:
    catalog = known_controls()
    expected = {
        "SOC2-A1.3",
        "SOC2-CC7.5",
        "SOC2-CC9.1",
        "ISO22301-8.5",
        "ISO27001-A.5.30",
        "ISO27001-A.8.13",
        "ISO27001-A.8.14",
        "DORA-11",
        "DORA-12",
        "DORA-24",
        "DORA-25",
        "NIST-CP-4",
        "HIPAA-164.308(a)(7)(ii)(D)",
        "PCI-12.10.2",
    }
    assert set(catalog) == expected
    aar_fields = {
        "scope",
        "objectives",
        "participants",
        "timeline",
        "integrity_checks",
        "issues",
        "remediation",
        "results",
        "controls",
        "signoffs",
    }
    for control in catalog.values():
        assert control.requirement and control.title and control.interval_days > 0
        assert control.frequency in {"annually", "quarterly", "semiannually", "monthly"}
        for field in control.evidence:
            name, _, path = field.partition(":")
            assert name in {
                "after-action.json",
                "after-action.html",
                "environment.json",
                "run/journal.json",
            }, field
            if name == "after-action.json" and path:
                assert path.split(".")[0] in aar_fields, field


def test_catalog_is_shipped_as_package_data() -> None:
    from importlib import resources

    text = resources.files("drillbook.evidence").joinpath("controls.yaml").read_text()
    assert "PCI-12.10.2" in text


def test_redaction_collects_secrets_and_keeps_shape() -> None:
    finder = SecretFinder()
    out = finder.redact(
        {
            "t": {
                "dsn": "postgresql://u:pw-1234@h/db",
                "url": "redis://:tok-987@h",
                "api_key": "k-5555",
                "port": 5432,
                "note": "password=hunter22",
            }
        }
    )
    assert out["t"]["dsn"].startswith("postgresql://u:") and "pw-1234" not in out["t"]["dsn"]
    assert "tok-987" not in out["t"]["url"] and out["t"]["api_key"] == REDACTED
    assert out["t"]["port"] == 5432 and "hunter22" not in out["t"]["note"]
    assert finder.find_in(b"xx tok-987 yy") == "t.url"
    assert finder.find_in(b"nothing here") is None

"""docs/evidence.md's independent verifier really verifies, and really rejects tampering."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from evidence_fixtures import MakeRun

from drillbook.evidence import build_bundle, sign_off
from drillbook.evidence.keys import public_key_pem

DOC = Path(__file__).resolve().parents[2] / "docs" / "evidence.md"


def _verifier(tmp_path: Path) -> Path:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert len(blocks) == 1, "expected exactly one python block in docs/evidence.md"
    script = tmp_path / "independent_verify.py"
    script.write_text(blocks[0])
    return script


def _run(script: Path, bundle: Path, pub: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(script), str(bundle), str(pub)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def setup(
    make_run: MakeRun, signing_key: Ed25519PrivateKey, tmp_path: Path
) -> tuple[Path, Path, Path]:
    bundle = build_bundle(make_run(), key=signing_key)
    sign_off(bundle, name="Ada", role="drill lead", key=signing_key)
    pub = tmp_path / "k.pub"
    pub.write_bytes(public_key_pem(signing_key))
    return _verifier(tmp_path), bundle, pub


def test_documented_verifier_accepts_a_real_bundle(setup: tuple[Path, Path, Path]) -> None:
    script, bundle, pub = setup
    result = _run(script, bundle, pub)
    assert result.returncode == 0 and result.stdout.strip() == "OK", result.stderr


@pytest.mark.parametrize("name", ["run/journal.json", "run/events.jsonl", "manifest.json"])
def test_documented_verifier_rejects_a_flipped_byte(
    setup: tuple[Path, Path, Path], name: str
) -> None:
    script, bundle, pub = setup
    data = bytearray((bundle / name).read_bytes())
    data[len(data) // 2] ^= 0x01
    (bundle / name).write_bytes(bytes(data))
    assert _run(script, bundle, pub).returncode != 0


def test_documented_verifier_rejects_another_key(
    setup: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    script, bundle, _ = setup
    other = tmp_path / "other.pub"
    other.write_bytes(public_key_pem(Ed25519PrivateKey.generate()))
    result = _run(script, bundle, other)
    assert result.returncode != 0 and "InvalidSignature" in result.stderr

"""Bundle what a real drill run wrote: the engine, the journal writer and the plugin, unmocked.

Runs `pytest drills/ -k process_restart --drill-evidence` in a subprocess against the sandbox's
real supervised HTTP service, with a config carrying planted secrets, then verifies and tampers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

from drillbook.evidence import verify_bundle
from drillbook.evidence.archive import archive_path
from drillbook.evidence.keys import generate_key, load_public_key, private_key_pem, public_key_pem

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
CANARIES = ("CANARY-REAL-DSN-PW", "CANARY-REAL-TOKEN-42")


@pytest.fixture(scope="module")
def real_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    # The repository always ships these: a missing one is a failure here, never a skip.
    assert (REPO / "drills").is_dir() and (REPO / "scenarios/process_restart.yaml").is_file()
    work = tmp_path_factory.mktemp("real-run")
    config = yaml.safe_load((REPO / "drillbook.yaml").read_text())
    config["targets"]["canary-db"] = {
        "backend": "postgres",
        "dsn": f"postgresql://drill:{CANARIES[0]}@127.0.0.1:1/x",
    }
    config["targets"]["demo-service"]["token"] = CANARIES[1]
    (work / "drillbook.yaml").write_text(yaml.safe_dump(config))
    key = generate_key()
    (work / "signing.key").write_bytes(private_key_pem(key))
    (work / "signing.key.pub").write_bytes(public_key_pem(key))
    env = {
        **os.environ,
        "DRILLBOOK_SIGNING_KEY_FILE": str(work / "signing.key"),
        "DRILLBOOK_SCENARIOS_DIR": str(REPO / "scenarios"),
        "DRILLBOOK_STATE_DIR": str(work / "state"),
    }
    env.pop("DRILLBOOK_SIGNING_KEY", None)
    reports = work / "reports"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "drills/",
            "-k",
            "process_restart",
            "-q",
            "-p",
            "no:cacheprovider",
            "--drill-config",
            str(work / "drillbook.yaml"),
            "--drill-reports",
            str(reports),
            "--drill-evidence",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    bundles = [p for p in (reports / "evidence").iterdir() if p.is_dir()]
    assert len(bundles) == 1, proc.stdout[-2000:]
    return bundles[0], work / "signing.key.pub"


def test_real_run_bundle_verifies_against_the_pinned_key(real_run: tuple[Path, Path]) -> None:
    bundle, pub = real_run
    result = verify_bundle(bundle, [load_public_key(pub)])
    assert result.ok, result.problems
    assert verify_bundle(archive_path(bundle), [load_public_key(pub)]).ok
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert {"run/journal.json", "run/events.jsonl"} <= set(manifest["files"])
    assert manifest["events"]["lines"] > 10
    aar = json.loads((bundle / "after-action.json").read_text())
    assert aar["results"][0] == {"drill": "process_restart", "verdict": "passed", "reasons": []}
    timeline = aar["timeline"][0]
    assert timeline["t_inject"] and timeline["t_detect"] and timeline["t_restore"]
    assert aar["objectives"][0]["rto"]["met"] is True
    assert [c["id"] for c in aar["controls"]] == ["ISO22301-8.5", "SOC2-A1.3"]


def test_real_run_bundle_carries_no_planted_secret(real_run: tuple[Path, Path]) -> None:
    bundle, _ = real_run
    blobs = [p.read_bytes() for p in bundle.rglob("*") if p.is_file()]
    with tarfile.open(archive_path(bundle)) as tar:
        blobs += [f.read() for m in tar.getmembers() if (f := tar.extractfile(m)) is not None]
    for data in blobs:
        for canary in CANARIES:
            assert canary.encode() not in data
    env = json.loads((bundle / "environment.json").read_text())
    assert env["config"]["targets"]["canary-db"]["dsn"].startswith("postgresql://drill:")


def test_real_run_bundle_any_flipped_byte_fails(
    real_run: tuple[Path, Path], tmp_path: Path
) -> None:
    import shutil

    bundle, pub = real_run
    files = sorted(p.relative_to(bundle) for p in bundle.rglob("*") if p.is_file())
    assert len(files) >= 7
    for rel in files:
        copy = tmp_path / rel.as_posix().replace("/", "_") / bundle.name
        shutil.copytree(bundle, copy)
        data = bytearray((copy / rel).read_bytes())
        data[len(data) // 3] ^= 0x04
        (copy / rel).write_bytes(bytes(data))
        result = verify_bundle(copy, [load_public_key(pub)])
        assert not result.ok and rel.as_posix() in "\n".join(result.problems), (rel, result)

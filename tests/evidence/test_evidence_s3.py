"""Upload to S3 with Object Lock (compliance mode), on moto.

moto stands in for AWS here: it proves the calls and parameters, not AWS's enforcement.
"""

from __future__ import annotations

import argparse
import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from evidence_fixtures import MakeRun

from drillbook.evidence import build_bundle, commands
from drillbook.evidence.archive import archive_path
from drillbook.evidence.errors import EvidenceError, EvidenceInputError
from drillbook.evidence.upload import parse_s3_url, upload_bundle
from drillbook.plugin import needs_backend


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as exc:
        needs_backend("aws", f"moto not installed ({exc})")
        raise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    import boto3

    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    client = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    return client


def test_parse_s3_url() -> None:
    assert parse_s3_url("s3://bucket/a/b/") == ("bucket", "a/b")
    assert parse_s3_url("s3://bucket") == ("bucket", "")
    with pytest.raises(EvidenceInputError):
        parse_s3_url("https://bucket/x")


def test_upload_sets_compliance_retention(
    s3: Any, moto_endpoint: str, make_run: MakeRun, signing_key: Ed25519PrivateKey
) -> None:
    s3.create_bucket(Bucket="evidence-locked", ObjectLockEnabledForBucket=True)
    archive = archive_path(build_bundle(make_run(), key=signing_key))
    result = upload_bundle(
        archive,
        "s3://evidence-locked/2026Q4",
        retain_days=30,
        endpoint_url=moto_endpoint,
        region="us-east-1",
    )
    assert result.key == f"2026Q4/{archive.name}"
    head = s3.head_object(Bucket="evidence-locked", Key=result.key)
    assert head["ObjectLockMode"] == "COMPLIANCE"
    # FakeClock: 2026-11-22T14:00Z + 30 days.
    assert head["ObjectLockRetainUntilDate"].astimezone(UTC) == datetime(
        2026, 12, 22, 14, tzinfo=UTC
    )
    assert head["Metadata"]["drillbook-sha256"] == hashlib.sha256(archive.read_bytes()).hexdigest()
    body = s3.get_object(Bucket="evidence-locked", Key=result.key)["Body"].read()
    assert body == archive.read_bytes()
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError):
        s3.delete_object(Bucket="evidence-locked", Key=result.key, VersionId=result.version_id)


def test_bucket_without_object_lock_is_refused(
    s3: Any, moto_endpoint: str, make_run: MakeRun, signing_key: Ed25519PrivateKey
) -> None:
    s3.create_bucket(Bucket="evidence-plain")
    archive = archive_path(build_bundle(make_run(), key=signing_key))
    with pytest.raises(EvidenceError, match="s3://evidence-plain: object lock"):
        upload_bundle(archive, "s3://evidence-plain", retain_days=1, endpoint_url=moto_endpoint)
    assert s3.list_objects_v2(Bucket="evidence-plain").get("KeyCount") == 0


def test_cli_bundle_upload(
    s3: Any,
    moto_endpoint: str,
    make_run: MakeRun,
    signing_key: Ed25519PrivateKey,
    reports_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from drillbook.evidence.keys import private_key_pem

    key_file = tmp_path / "k.pem"
    key_file.write_bytes(private_key_pem(signing_key))
    s3.create_bucket(Bucket="evidence-cli", ObjectLockEnabledForBucket=True)
    make_run()
    parser = argparse.ArgumentParser()
    parser.add_argument("--reports-dir", default=str(reports_dir))
    parser.add_argument("--config", default=str(tmp_path / "absent.yaml"))
    commands.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(
        [
            "evidence",
            "bundle",
            "--key",
            str(key_file),
            "--upload",
            "s3://evidence-cli/q4",
            "--retain-days",
            "7",
            "--s3-endpoint-url",
            moto_endpoint,
            "--s3-region",
            "us-east-1",
        ]
    )
    assert args.handler(args) == 0
    out = capsys.readouterr().out
    assert "uploaded: s3://evidence-cli/q4/" in out and "COMPLIANCE lock until 2026-11-29" in out
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="evidence-cli")["Contents"]]
    assert keys == ["q4/20261122T140102Z-3f9a1c.tar.gz"]

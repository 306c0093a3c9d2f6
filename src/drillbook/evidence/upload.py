"""Optional upload of a bundle archive to S3 under Object Lock retention (compliance mode).

Why compliance mode: in that mode no one, the account root included, can shorten the retention or
delete the object version before the date, which is what "tamper-evident" needs to become
"tamper-resistant". boto3 is imported here, lazily, so `import drillbook` never pays for it.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from drillbook.clock import get_clock
from drillbook.evidence.errors import EvidenceError, EvidenceInputError

__all__ = ["UploadResult", "parse_s3_url", "upload_bundle"]


@dataclass(frozen=True)
class UploadResult:
    """Where the archive went and until when it is locked."""

    bucket: str
    key: str
    version_id: str | None
    retain_until: datetime
    sha256: str


def parse_s3_url(url: str) -> tuple[str, str]:
    """``s3://bucket/prefix`` → (bucket, prefix without slashes at the ends)."""
    if not url.startswith("s3://") or len(url) <= 5:
        raise EvidenceInputError("expected s3://bucket[/prefix]", field="--upload")
    bucket, _, prefix = url[5:].partition("/")
    if not bucket:
        raise EvidenceInputError("expected s3://bucket[/prefix]", field="--upload")
    return bucket, prefix.strip("/")


def upload_bundle(
    archive: Path,
    url: str,
    *,
    retain_days: int,
    endpoint_url: str | None = None,
    region: str | None = None,
    client: Any = None,
) -> UploadResult:
    """Put ``archive`` with COMPLIANCE retention of ``retain_days``; checksum verified by S3.

    The bucket must have been created with Object Lock enabled (S3 cannot enable it later on
    most buckets); a bucket without it is an error, not a silent unlocked upload.
    """
    if retain_days < 1:
        raise EvidenceInputError("retention must be at least 1 day", field="--retain-days")
    bucket, prefix = parse_s3_url(url)
    if client is None:
        import boto3  # lazily: the SDK is optional at import time

        client = boto3.client("s3", endpoint_url=endpoint_url, region_name=region)
    from botocore.exceptions import ClientError

    try:
        lock = client.get_object_lock_configuration(Bucket=bucket)
        enabled = lock.get("ObjectLockConfiguration", {}).get("ObjectLockEnabled") == "Enabled"
    except ClientError as exc:
        raise EvidenceError(
            f"s3://{bucket}: object lock is not available ({exc.response['Error'].get('Code')}); "
            "create the bucket with Object Lock enabled"
        ) from None
    if not enabled:
        raise EvidenceError(f"s3://{bucket}: object lock is not enabled on the bucket")
    data = archive.read_bytes()
    digest = hashlib.sha256(data).digest()
    key = f"{prefix}/{archive.name}" if prefix else archive.name
    retain_until = get_clock().wall() + timedelta(days=retain_days)
    try:
        response = client.put_object(
            Bucket=bucket,
            Key=key,
            Body=data,
            ContentType="application/gzip",
            # S3 requires an integrity header on object-lock puts; SHA-256 also lets S3 check it.
            ChecksumAlgorithm="SHA256",
            ChecksumSHA256=base64.b64encode(digest).decode(),
            ObjectLockMode="COMPLIANCE",
            ObjectLockRetainUntilDate=retain_until,
            Metadata={"drillbook-sha256": digest.hex()},
        )
    except ClientError as exc:
        raise EvidenceError(f"s3://{bucket}/{key}: upload failed ({exc})") from None
    return UploadResult(bucket, key, response.get("VersionId"), retain_until, digest.hex())

"""Job outputs in S3: private objects, read through links that expire.

Every result URL is an S3 presigned GET URL for one object, signed when the
job is read (GET /status, POST /jobs/{jobId}/cancel) and good for
`lifetime_seconds` (template parameter OutputLinkSeconds), or less: a URL
signed with temporary credentials stops working when they expire, and a
Lambda function's are. Nothing else can read the outputs: the bucket blocks
public access and grants no one but the functions' roles. Why presigned S3
URLs rather than CloudFront signed URLs: docs/decisions.md."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from shared.jobs import iso


def job_prefix(job_id: str) -> str:
    return f"jobs/{job_id}/"


class OutputLinks:
    """Presigned GET URLs for a job's output objects."""

    def __init__(self, s3: Any, *, bucket: str, lifetime_seconds: int) -> None:
        self._s3 = s3
        self._bucket = bucket
        self.lifetime_seconds = lifetime_seconds

    def url(self, key: str) -> str:
        return self._s3.generate_presigned_url(
            "get_object", Params={"Bucket": self._bucket, "Key": key}, ExpiresIn=self.lifetime_seconds
        )

    def expires_at(self, now: datetime) -> str:
        return iso(now + timedelta(seconds=self.lifetime_seconds))


def _versions(s3: Any, bucket: str, prefix: str) -> Iterator[dict[str, str]]:
    """Every version and delete marker under a prefix."""
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
        for entry in (*page.get("Versions", []), *page.get("DeleteMarkers", [])):
            yield {"Key": entry["Key"], "VersionId": entry["VersionId"]}


def delete_outputs(s3: Any, *, bucket: str, job_id: str) -> int:
    """Remove every version of every object of a job (the bucket is versioned:
    deleting a key alone would keep its data as a noncurrent version).
    Returns how many versions were removed; raises if any could not be."""
    removed, batch = 0, []

    def flush() -> int:
        if not batch:
            return 0
        response = s3.delete_objects(Bucket=bucket, Delete={"Objects": list(batch), "Quiet": True})
        errors = response.get("Errors", [])
        if errors:
            first = errors[0]
            raise RuntimeError(f"could not delete {len(errors)} output version(s): {first.get('Code')} {first.get('Key')}")
        count = len(batch)
        batch.clear()
        return count

    for version in _versions(s3, bucket, job_prefix(job_id)):
        batch.append(version)
        if len(batch) == 1000:  # the most one DeleteObjects call takes
            removed += flush()
    return removed + flush()

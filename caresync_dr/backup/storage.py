"""Where backups live: a local directory and, optionally, the site's S3 backup bucket (SSE-KMS).

A backup is two objects with the same name: ``<name>.dump.enc`` and ``<name>.manifest.json``.
The manifest is written last, so a backup without one is incomplete and never chosen as latest.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from caresync_dr.backup.errors import BackupNotFoundError
from caresync_dr.backup.manifest import DATA_SUFFIX, MANIFEST_SUFFIX, name_time

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = logging.getLogger(__name__)
DEFAULT_PREFIX = "backups/"


@dataclass(frozen=True)
class LocalBackup:
    name: str
    taken_at: datetime
    data: Path
    manifest: Path


def list_local(directory: Path) -> list[LocalBackup]:
    """Complete backups (data and manifest present) in a directory, oldest first."""
    found = []
    if not directory.is_dir():
        return []
    for manifest in directory.glob(f"backup_*{MANIFEST_SUFFIX}"):
        name = manifest.name[: -len(MANIFEST_SUFFIX)]
        taken = name_time(name)
        data = directory / f"{name}{DATA_SUFFIX}"
        if taken is not None and data.exists():
            found.append(LocalBackup(name, taken, data, manifest))
    return sorted(found, key=lambda b: b.taken_at)


def latest_local(directory: Path) -> LocalBackup:
    backups = list_local(directory)
    if not backups:
        raise BackupNotFoundError(f"no complete backup (data + manifest) in {directory}")
    return backups[-1]


def upload(s3: S3Client, bucket: str, kms_key_id: str | None, files: list[Path],
           prefix: str = DEFAULT_PREFIX) -> list[str]:
    """Upload with SSE-KMS (the bucket's key unless one is named); data before manifest."""
    extra: dict[str, str] = {"ServerSideEncryption": "aws:kms"}
    if kms_key_id:
        extra["SSEKMSKeyId"] = kms_key_id
    keys = []
    for path in files:
        key = f"{prefix}{path.name}"
        log.info("uploading %s to s3://%s/%s (SSE-KMS)", path.name, bucket, key)
        s3.upload_file(str(path), bucket, key, ExtraArgs=extra)
        keys.append(key)
    return keys


def latest_in_bucket(s3: S3Client, bucket: str, prefix: str = DEFAULT_PREFIX) -> str:
    """The newest backup name in the bucket that has both data and manifest."""
    names: dict[str, set[str]] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            base = obj["Key"][len(prefix):]
            for suffix in (DATA_SUFFIX, MANIFEST_SUFFIX):
                if base.endswith(suffix) and name_time(base):
                    names.setdefault(base[: -len(suffix)], set()).add(suffix)
    complete = [n for n, parts in names.items() if parts == {DATA_SUFFIX, MANIFEST_SUFFIX}]
    if not complete:
        raise BackupNotFoundError(f"no complete backup under s3://{bucket}/{prefix}")
    return max(complete, key=lambda n: name_time(n) or datetime.min)


def download(s3: S3Client, bucket: str, name: str, directory: Path,
             prefix: str = DEFAULT_PREFIX) -> LocalBackup:
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    paths = []
    for suffix in (MANIFEST_SUFFIX, DATA_SUFFIX):
        path = directory / f"{name}{suffix}"
        try:
            s3.download_file(bucket, f"{prefix}{name}{suffix}", str(path))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey"):
                raise BackupNotFoundError(
                    f"s3://{bucket}/{prefix}{name}{suffix} does not exist") from None
            raise
        path.chmod(0o600)
        paths.append(path)
    taken = name_time(name)
    assert taken is not None
    return LocalBackup(name, taken, paths[1], paths[0])

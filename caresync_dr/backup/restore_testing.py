"""The daily restore test, local side: latest backup -> throwaway database -> verify -> drop.

"An unverified backup is not a backup": this proves the newest backup decrypts, loads and matches
its manifest, and that it is recent enough. The scratch database is dropped whatever happens (by
this run, or, if it is killed, by the next restore or restore test of the same database).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from caresync_dr.backup.crypto import Header
from caresync_dr.backup.errors import BackupError, KeyUnavailableError, KmsUnavailableError
from caresync_dr.backup.leftovers import RestoreLockedError, download_dir
from caresync_dr.backup.manifest import read_manifest
from caresync_dr.backup.restore import header_time
from caresync_dr.backup.rollback import rollback
from caresync_dr.backup.storage import LocalBackup, download, latest_in_bucket, latest_local

if TYPE_CHECKING:
    from collections.abc import Callable

    from mypy_boto3_s3 import S3Client

log = logging.getLogger(__name__)


@dataclass
class RestoreTestResult:
    passed: bool
    backup: str | None = None
    backup_age_hours: float | None = None
    scratch_database: str | None = None
    problems: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def find_latest(local_dir: Path | None, s3: S3Client | None, bucket: str | None,
                prefix: str, download_dir: Path) -> LocalBackup:
    if bucket and s3 is not None:
        name = latest_in_bucket(s3, bucket, prefix)
        log.info("latest backup in s3://%s/%s is %s; downloading", bucket, prefix, name)
        return download(s3, bucket, name, download_dir, prefix)
    if local_dir is None:
        raise BackupError("no backup source: give a local directory or a bucket")
    return latest_local(local_dir)


def run_local_restore_test(backup: LocalBackup, target_url: str,
                           master_key_for: Callable[[Header], bytes], *,
                           max_age: timedelta | None, now: datetime | None = None,
                           jobs: int = 2) -> RestoreTestResult:
    """Restore ``backup`` into a scratch database on ``target_url``'s server, verify, drop.

    The backup's age is the start time its encrypted header records (authenticated with the
    data), which its manifest and file name must agree with; never the file name alone.
    """
    now = now or datetime.now(UTC)
    result = RestoreTestResult(passed=False, backup=backup.name)
    clock = time.monotonic()
    try:
        manifest = read_manifest(backup.manifest)
        taken = header_time(backup.data, manifest)  # checked against the rest in rollback
        result.backup_age_hours = round((now - taken).total_seconds() / 3600, 2)
        if max_age is not None and now - taken > max_age:
            result.problems.append(
                f"latest backup {backup.name} is {result.backup_age_hours} h old, more than "
                f"the allowed {max_age.total_seconds() / 3600:g} h: backups have stopped")
        outcome = rollback(backup.data, target_url, master_key_for, jobs=jobs, swap_in=False,
                           now=now, scratch_label="restoretest", discard=True)
        result.scratch_database = outcome.restored_as
        result.seconds.update(outcome.seconds)
        log.info("restore test: %s restored into %s and %s; dropped it", backup.name,
                 outcome.restored_as, outcome.verification)
    except KmsUnavailableError as exc:
        result.problems.append(str(exc))
    except KeyUnavailableError:
        raise   # no key file: the operator's to fix (exit 2), not a failed restore
    except RestoreLockedError as exc:
        if not result.problems:
            raise   # an operator's restore is running: not tested (exit 4), not "failed"
        result.problems.append(str(exc))
    except BackupError as exc:
        result.problems.append(str(exc))
    result.seconds["total"] = round(time.monotonic() - clock, 3)
    result.passed = not result.problems
    return result


def scratch_dir() -> Path:
    """Where the restore test downloads a backup from S3 (encrypted files)."""
    return download_dir()

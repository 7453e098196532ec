"""Local retention: delete backups older than the retention period, never the newest one.

Age comes from the UTC time in the name (copying a file changes its mtime, not its name). A backup
exactly ``retention_days`` old is kept. The newest backup is always kept, even when it is older
than the retention: if backups stopped, pruning must not leave nothing to restore. S3 copies are
expired by the bucket's lifecycle rule, not here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from caresync_dr.backup.manifest import DATA_SUFFIX, MANIFEST_SUFFIX
from caresync_dr.backup.storage import list_local

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PrunePlan:
    keep: list[str]
    delete: list[str]


def plan_prune(directory: Path, now: datetime, retention_days: int) -> PrunePlan:
    if retention_days < 1:
        raise ValueError(f"retention must be at least 1 day, got {retention_days}")
    backups = list_local(directory)
    cutoff = now - timedelta(days=retention_days)
    delete = [b.name for b in backups[:-1] if b.taken_at < cutoff]
    keep = [b.name for b in backups if b.name not in delete]
    return PrunePlan(keep=keep, delete=delete)


def prune(directory: Path, now: datetime, retention_days: int, dry_run: bool = False) -> PrunePlan:
    plan = plan_prune(directory, now, retention_days)
    for name in plan.delete:
        if dry_run:
            log.info("would delete %s (older than %d days)", name, retention_days)
            continue
        for suffix in (DATA_SUFFIX, MANIFEST_SUFFIX):
            (directory / f"{name}{suffix}").unlink(missing_ok=True)
        log.info("deleted %s (older than %d days)", name, retention_days)
    return plan

"""The restore time T and the windows RDS can restore from.

RDS restores an instance to any time between its earliest restorable time (the oldest automated
backup it keeps, ``BackupRetentionPeriod`` days back) and ``LatestRestorableTime`` (usually
about five minutes ago: RDS uploads the transaction logs every five minutes; RDS user guide,
"Restoring a DB instance to a specified time"). A region that holds a *replica* of an
instance's automated backups restores from its ``RestoreWindow`` (``DescribeDBInstance
AutomatedBackups``; "Replicating automated backups to another AWS Region"), and so does the
region of an instance that no longer exists, from its retained backups.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

__all__ = [
    "BadRestoreTimeError",
    "RestorableWindow",
    "choose",
    "outside_message",
    "parse_restore_time",
]


class BadRestoreTimeError(ValueError):
    """T is malformed, has no time zone, or lies in the future: no window can hold it."""


def iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_restore_time(text: str, now: datetime | None = None) -> datetime:
    """``2026-11-30T02:11:00Z`` (ISO 8601 with a zone) as an aware UTC datetime, to the whole
    second (``RestoreTime``'s examples are to the second; a fraction is dropped, which restores
    a moment *earlier*, never later into the damage).

    A time without a zone is refused rather than guessed: at 3 a.m. a local time taken for UTC
    restores hours away from the damage."""
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError as exc:
        raise BadRestoreTimeError(f"--restore-time {text!r} is not an ISO 8601 time such as "
                                  "2026-11-30T02:11:00Z") from exc
    if when.tzinfo is None:
        raise BadRestoreTimeError(f"--restore-time {text!r} has no time zone: add Z for UTC "
                                  "(or an offset such as +01:00)")
    when = when.astimezone(UTC).replace(microsecond=0)
    current = now or datetime.now(UTC)
    if when > current:
        raise BadRestoreTimeError(f"--restore-time {iso(when)} is in the future (now "
                                  f"{iso(current)})")
    return when


@dataclass(frozen=True)
class RestorableWindow:
    """Where a restore can come from and the span of times it covers."""

    label: str                       # for people: "caresync-primary-db (its own backups)"
    earliest: datetime
    latest: datetime
    source_identifier: str | None = None          # SourceDBInstanceIdentifier
    automated_backups_arn: str | None = None      # SourceDBInstanceAutomatedBackupsArn
    kms_key_id: str | None = None                 # the key the restored instance will use

    def contains(self, when: datetime) -> bool:
        return self.earliest <= when <= self.latest

    def describe(self) -> str:
        return f"{iso(self.earliest)} to {iso(self.latest)} from {self.label}"


def choose(when: datetime, windows: list[RestorableWindow]) -> RestorableWindow | None:
    """The first window holding ``when`` (callers list the writer's own backups first)."""
    return next((w for w in windows if w.contains(when)), None)


def outside_message(when: datetime, windows: list[RestorableWindow]) -> str:
    if not windows:
        return (f"cannot restore to {iso(when)}: no automated backups found in this region "
                "(BackupRetentionPeriod 0, or no replicated backups)")
    spans = "; ".join(w.describe() for w in windows)
    return f"cannot restore to {iso(when)}: outside every restorable window ({spans})"

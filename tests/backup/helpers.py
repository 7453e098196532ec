"""Shared steps for the backup tests: take a backup, read a database's fingerprints."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from caresync_dr.backup.create import BackupOptions, take_backup
from caresync_dr.backup.keys import key_from_file
from caresync_dr.backup.manifest import Manifest
from caresync_dr.backup.verify import TableFingerprint, copy_fingerprints


def backup(url: str, directory: Path, key_file: Path,
           now: datetime | None = None) -> tuple[Manifest, Path]:
    return take_backup(BackupOptions(url, directory, key_from_file(key_file)), now=now)


def state(url: str) -> dict[str, TableFingerprint]:
    """Every user table's rows and the SHA-256 of its COPY text, read from the database: an
    independent check of the figures the backup computed on pg_dump's stream."""
    return copy_fingerprints(url)

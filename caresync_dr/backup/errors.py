"""The backup error hierarchy; each class maps to one documented exit code in the scripts."""

from __future__ import annotations


class BackupError(Exception):
    """Base class: a backup or restore step failed; the message says what and why."""


class BackupNotFoundError(BackupError):
    """The named backup (or its manifest) does not exist."""


class IntegrityError(BackupError):
    """The backup is corrupt, truncated, tampered with, or encrypted with another key."""


class VerificationError(BackupError):
    """A restored database does not match the manifest (row counts or fingerprints)."""


class KeyUnavailableError(BackupError):
    """No usable key: missing key file, wrong size, or KMS refused the data key."""


class UsageError(BackupError):
    """Bad input from the operator (arguments, environment); nothing was touched."""

"""The backup errors: part of the operator commands' one hierarchy (:mod:`caresync_dr.cli.errors`),
each carrying the exit code it means by default. A command that gives one another meaning says
so (``restore.py`` refuses, exit 3, on a corrupt backup: the live database was not touched)."""

from __future__ import annotations

from caresync_dr.cli.errors import ExitCode, FailedError


class BackupError(FailedError):
    """Base class: a backup or restore step failed (exit 1); the message says what and why."""


class BackupNotFoundError(BackupError):
    """The named backup (or its manifest) does not exist (exit 2: the operator named it)."""

    exit_code = ExitCode.USAGE


class IntegrityError(BackupError):
    """The backup is corrupt, truncated, tampered with, or encrypted with another key."""


class VerificationError(BackupError):
    """A restored database does not match the manifest (row counts or fingerprints)."""


class KeyUnavailableError(BackupError):
    """No usable key: missing key file, wrong size, or KMS refused the data key (exit 2)."""

    exit_code = ExitCode.USAGE


class KmsUnavailableError(KeyUnavailableError):
    """KMS did not give the data key (credentials, a disabled key, no answer in any region).
    The restore test counts it as a failed test: backups that cannot be decrypted now is what it
    exists to find; a missing key *file* is the operator's to fix (usage)."""


class UsageError(BackupError):
    """Bad input from the operator (arguments, environment); nothing was touched (exit 2)."""

    exit_code = ExitCode.USAGE

"""The failover's error hierarchy; each error maps to one documented exit code."""

from __future__ import annotations

from caresync_dr.cli import ExitCode


class FailoverError(Exception):
    """Base class: a one-sentence message for the operator and the exit code it means."""

    exit_code: ExitCode = ExitCode.FAILED


class UsageError(FailoverError):
    """Bad arguments, unknown stack, malformed settings or inventory. Nothing was changed."""

    exit_code = ExitCode.USAGE


class RefusedError(FailoverError):
    """A preflight check or the operator refused. Nothing was changed."""

    exit_code = ExitCode.REFUSED


class LockedError(FailoverError):
    """Another run holds the failover lock. Nothing was changed."""

    exit_code = ExitCode.LOCKED


class NotReadyError(FailoverError):
    """``--check``: a failover would not succeed now."""

    exit_code = ExitCode.NOT_READY


class StepFailedError(FailoverError):
    """A required step failed part-way; the journal lets ``--resume`` continue."""

    exit_code = ExitCode.FAILED


class WaitTimeoutError(StepFailedError):
    """A bounded wait ran out of time."""

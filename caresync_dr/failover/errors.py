"""The failover's errors: the operator commands' one hierarchy (:mod:`caresync_dr.cli.errors`)
under the names the failover code uses, plus the two that only a step raises."""

from __future__ import annotations

from caresync_dr.cli.errors import (
    CommandError,
    FailedError,
    LockedError,
    NotReadyError,
    RefusedError,
    UsageError,
)

FailoverError = CommandError

__all__ = ["FailoverError", "LockedError", "NotReadyError", "RefusedError", "StepFailedError",
           "UsageError", "WaitTimeoutError"]


class StepFailedError(FailedError):
    """A required step failed part-way; the journal lets ``--resume`` continue."""


class WaitTimeoutError(StepFailedError):
    """A bounded wait ran out of time."""

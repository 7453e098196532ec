"""The failover's errors: the operator commands' one hierarchy (:mod:`caresync_dr.cli.errors`)
and the engine's step errors, under the names the failover code uses."""

from __future__ import annotations

from caresync_dr.cli.errors import (
    CommandError,
    LockedError,
    NotReadyError,
    RefusedError,
    UsageError,
)
from caresync_dr.operations.errors import StepFailedError, WaitTimeoutError

FailoverError = CommandError

__all__ = ["FailoverError", "LockedError", "NotReadyError", "RefusedError", "StepFailedError",
           "UsageError", "WaitTimeoutError"]

"""The engine's own errors, in the operator commands' one hierarchy (exit 1: resumable)."""

from __future__ import annotations

from caresync_dr.cli.errors import FailedError


class StepFailedError(FailedError):
    """A required step failed part-way; the journal lets ``--resume`` continue."""


class WaitTimeoutError(StepFailedError):
    """A bounded wait ran out of time."""

"""The failover lock is the engine's lease lock (:mod:`caresync_dr.operations.lock`)."""

from __future__ import annotations

from caresync_dr.operations.lock import (
    STALE_HEARTBEATS,
    LeaseLock,
    LockHolder,
    Release,
)

FailoverLock = LeaseLock

__all__ = ["STALE_HEARTBEATS", "FailoverLock", "LockHolder", "Release"]

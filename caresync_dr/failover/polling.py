"""Bounded, backed-off polling is the engine's (:mod:`caresync_dr.operations.polling`)."""

from __future__ import annotations

from caresync_dr.operations.polling import PollPolicy, wait_until

__all__ = ["PollPolicy", "wait_until"]

"""Bounded, backed-off polling: every wait in an operation has a deadline."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from caresync_dr.operations.errors import StepFailedError, WaitTimeoutError

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class PollPolicy:
    """First interval, growth factor and cap between reads, and the overall deadline."""

    interval: float
    max_interval: float
    timeout: float
    factor: float = 1.5

    def __post_init__(self) -> None:
        # A NaN or infinite value would make the deadline comparison never true: a wait
        # without end. Options are checked on input; this keeps every other caller honest.
        for name in ("interval", "max_interval", "timeout", "factor"):
            value = getattr(self, name)
            if not math.isfinite(value) or value <= 0:
                raise ValueError(f"PollPolicy.{name} must be a finite number > 0, got {value!r}")

    def intervals(self) -> Callable[[], float]:
        current = [self.interval]

        def next_interval() -> float:
            value = current[0]
            current[0] = min(self.max_interval, value * self.factor)
            return value

        return next_interval


def wait_until(what: str, probe: Callable[[], T], done: Callable[[T], str | None],
               policy: PollPolicy, stop: threading.Event | None = None) -> T:
    """Call ``probe`` until ``done(result)`` returns None; it otherwise says what is awaited.

    Raises :class:`WaitTimeoutError` naming ``what`` and the last state seen, and
    :class:`StepFailedError` when ``stop`` is set (the run was interrupted).
    """
    stop = stop or threading.Event()
    started = time.monotonic()
    next_interval = policy.intervals()
    last_logged = ""
    while True:
        state = probe()
        pending = done(state)
        if pending is None:
            return state
        elapsed = time.monotonic() - started
        if pending != last_logged:
            log.info("waiting for %s: %s (%.1f s so far)", what, pending, elapsed)
            last_logged = pending
        if elapsed >= policy.timeout:
            raise WaitTimeoutError(f"gave up waiting for {what} after {elapsed:.0f} s: {pending}")
        if stop.wait(min(next_interval(), max(0.0, policy.timeout - elapsed))):
            raise StepFailedError(f"stopped waiting for {what}: the run was interrupted")

"""Timestamped progress for long streams: bytes so far and the rate, at most every few seconds."""

from __future__ import annotations

import logging
import time

log = logging.getLogger(__name__)


def human_bytes(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(count) < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} GiB"


class Progress:
    """Call ``add(n)`` as bytes flow; ``done()`` logs the total. Logging goes through ``log``."""

    def __init__(self, what: str, every_seconds: float = 5.0) -> None:
        self.what = what
        self.every = every_seconds
        self.total = 0
        self.started = time.monotonic()
        self._last = self.started

    def add(self, count: int) -> None:
        self.total += count
        now = time.monotonic()
        if now - self._last >= self.every:
            self._last = now
            log.info("%s: %s so far, %s/s", self.what, human_bytes(self.total),
                     human_bytes(self.total / max(now - self.started, 1e-9)))

    @property
    def seconds(self) -> float:
        return time.monotonic() - self.started

    def done(self) -> None:
        log.info("%s: %s in %.1f s (%s/s)", self.what, human_bytes(self.total), self.seconds,
                 human_bytes(self.total / max(self.seconds, 1e-9)))

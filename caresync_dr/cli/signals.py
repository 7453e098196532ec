"""SIGTERM and SIGHUP end a run the way Ctrl-C does: journal, report and lock are settled.

By default both kill the process on the spot (a closed terminal sends SIGHUP, ``kill`` and
systemd send SIGTERM), which would leave the lock behind until it goes stale. Turned into
:class:`Interrupted` (a ``KeyboardInterrupt``), they take the same path as Ctrl-C. SIGKILL cannot
be caught; the lock's lease covers it.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

CAUGHT = (signal.SIGTERM, signal.SIGHUP)


class Interrupted(KeyboardInterrupt):
    """The run was asked to stop by a signal."""

    def __init__(self, signum: int) -> None:
        self.signal_name = signal.Signals(signum).name
        super().__init__(f"stopped by {self.signal_name}")


@contextmanager
def signals_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM and SIGHUP raise :class:`Interrupted` in the main thread.
    Outside the main thread (tests calling ``run`` from a thread) nothing is installed."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        raise Interrupted(signum)

    previous = {signum: signal.signal(signum, handler) for signum in CAUGHT}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


@contextmanager
def signals_held() -> Iterator[None]:
    """Within the block, Ctrl-C, SIGTERM and SIGHUP are ignored: for the few milliseconds in
    which a run that is already ending as interrupted corrects its report, so that a second
    Ctrl-C cannot leave the uncorrected one behind. Outside the main thread nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.signal(signum, signal.SIG_IGN)
                for signum in (signal.SIGINT, *CAUGHT)}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)

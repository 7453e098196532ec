"""Read pools whose end never waits without limit for reads nobody will use.

``with ThreadPoolExecutor()`` exits by joining every worker, with no limit. When its body is
stopped by something that is not an ordinary ``Exception`` -- Ctrl-C, SystemExit, a kill, a
test's timeout raised from a signal handler -- the results of the reads still running are
never used, and one worker blocked on the network (a hung endpoint, an emulator that stopped
answering) would keep the command from ending and writing its report. :class:`ReadPool` then
cancels what has not started, leaves what is running (named in the log) and lets the stop go on
at once. After a normal end or an ordinary error it waits for its reads as before: the caller
uses their results, or the error's report follows them, and each read is an AWS call bounded
by its call budget (``caresync_dr.aws``), so no thread of the pool outlives the command's
clients.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType
from typing import ParamSpec, TypeVar

log = logging.getLogger(__name__)
P = ParamSpec("P")
T = TypeVar("T")


class ReadPool(ThreadPoolExecutor):
    """A ``ThreadPoolExecutor`` for reads, used as a ``with`` block (see the module doc)."""

    def __init__(self, max_workers: int, thread_name_prefix: str) -> None:
        super().__init__(max_workers=max_workers, thread_name_prefix=thread_name_prefix)
        self._prefix = thread_name_prefix
        self._work: list[tuple[str, Future[object]]] = []

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        future = super().submit(fn, *args, **kwargs)
        self._work.append((getattr(fn, "__qualname__", repr(fn)), future))  # type: ignore[arg-type]
        return future

    def __exit__(self, exc_type: type[BaseException] | None, exc_val: BaseException | None,
                 exc_tb: TracebackType | None) -> bool | None:
        if exc_type is None or issubclass(exc_type, Exception):
            return super().__exit__(exc_type, exc_val, exc_tb)
        self.abandon(f"{exc_type.__name__}")
        return None

    def abandon(self, why: str) -> list[str]:
        """Cancel what has not started, leave what is running without waiting for it;
        returns (and logs) the names of the reads left running."""
        left = [name for name, future in self._work
                if not future.cancel() and not future.done()]
        self.shutdown(wait=False, cancel_futures=True)
        if left:
            log.warning("%s: %d read(s) still running left behind (%s): %s", self._prefix,
                        len(left), why, ", ".join(left))
        return left

"""A child process's output read to its end on a thread, waited for with a deadline.

``for line in child.stderr: if marker in line: break`` waits forever for a child that hangs
before it prints the marker, and after the ``break`` nobody reads the pipe: a child that then
writes more than the pipe holds (64 KiB) blocks on its write and never exits.
"""

from __future__ import annotations

import threading
from typing import IO


class Drained:
    """What a stream said so far; :meth:`wait_for` a text with a deadline."""

    def __init__(self, stream: IO[str]) -> None:
        self._lines: list[str] = []
        self._changed = threading.Condition()
        self._ended = False
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True,
                                        name="child-output")
        self._thread.start()

    def _read(self, stream: IO[str]) -> None:
        try:
            for line in stream:
                with self._changed:
                    self._lines.append(line)
                    self._changed.notify_all()
        finally:
            with self._changed:
                self._ended = True
                self._changed.notify_all()

    def text(self) -> str:
        with self._changed:
            return "".join(self._lines)

    def wait_for(self, marker: str, timeout: float) -> bool:
        """True once ``marker`` was said; False when the stream ended or ``timeout`` passed
        without it."""
        with self._changed:
            return self._changed.wait_for(
                lambda: any(marker in line for line in self._lines) or self._ended,
                timeout) and any(marker in line for line in self._lines)


def drain(stream: IO[str]) -> Drained:
    return Drained(stream)

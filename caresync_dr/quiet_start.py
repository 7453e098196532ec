"""Ctrl-C while an operator command is still starting is one line and exit 3, not a traceback.

An operator command spends up to a second importing (boto3, botocore's models, pulumi) before
:func:`caresync_dr.cli.run_main` takes over; Ctrl-C then printed Python's ``KeyboardInterrupt``
traceback through the import machinery. Nothing has been read or changed at that point, so the
process ends at once with the refused code. ``run_main`` puts Python's own handler back
(:func:`end`): from there on an interruption takes the command's path (journal, report, lock).

Only a process started as an operator command (``scripts/*`` or a ``caresync-*`` entry point)
is affected: importing the package elsewhere (tests, the Pulumi program) changes nothing.
Standard library only, and cheap: it runs at the package's import.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
LINE = b"interrupted while starting: nothing was read or changed (exit 3: refused)\n"
REFUSED = 3   # caresync_dr.cli.ExitCode.REFUSED (not imported: that package is not cheap)


def started_as_command(argv0: str) -> bool:
    """``argv0`` is an operator command: a ``caresync-*`` entry point or a file in scripts/."""
    if not argv0:
        return False
    path = Path(argv0)
    if path.name.startswith("caresync-"):
        return True
    try:
        return path.resolve().parent == SCRIPTS
    except OSError:
        return False


def _stop(signum: int, frame: FrameType | None) -> None:
    os.write(2, LINE)
    os._exit(REFUSED)


def begin() -> None:
    """While a command starts, Ctrl-C ends it with :data:`LINE` and exit 3."""
    if (threading.current_thread() is threading.main_thread()
            and started_as_command(sys.argv[0] if sys.argv else "")
            and signal.getsignal(signal.SIGINT) is signal.default_int_handler):
        signal.signal(signal.SIGINT, _stop)


def end() -> None:
    """The command starts its work: Ctrl-C raises ``KeyboardInterrupt`` again."""
    if (threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGINT) is _stop):
        signal.signal(signal.SIGINT, signal.default_int_handler)

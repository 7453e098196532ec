"""What every operator command shares: exit codes, timestamped logging, JSON reports."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Iterator
from enum import IntEnum
from pathlib import Path
from typing import Any


class ExitCode(IntEnum):
    """Exit codes are a contract; scripts document the ones they use in ``--help``."""

    OK = 0
    FAILED = 1        # failed part-way; state is consistent and the run can be resumed/retried
    USAGE = 2         # bad arguments, unknown stack, malformed settings or inventory
    REFUSED = 3       # a preflight check refused; nothing was changed
    LOCKED = 4        # another run holds the lock; nothing was changed
    NOT_READY = 5     # --check: a failover would not succeed now


class Interrupted(BaseException):
    """SIGTERM or SIGHUP arrived (systemd stopping the unit, a closed terminal): unwind through
    every cleanup, write the report, exit."""


@contextlib.contextmanager
def interrupt_on_signals() -> Iterator[None]:
    """Within the block, SIGTERM and SIGHUP raise :class:`Interrupted` in the main thread.
    Without this they end the process on the spot, skipping cleanup and the report."""
    def handler(signum: int, _frame: object) -> None:
        raise Interrupted(f"interrupted by {signal.Signals(signum).name}")
    previous = {signum: signal.signal(signum, handler)
                for signum in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def setup_logging(verbose: bool = False) -> None:
    """Timestamped lines on stderr, so long operations show progress an operator can follow."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)-7s %(message)s",
        datefmt="%Y-%m-%dT%H:%M:%S%z",
        stream=sys.stderr,
        force=True,
    )
    for noisy in ("botocore", "boto3", "urllib3", "s3transfer"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def write_private(path: Path, text: str) -> None:
    """Write ``text`` atomically (a reader never sees half a file), readable by the owner only.

    Reports and manifests name patients' tables, hosts and backup keys: mode 0600 whatever the
    umask, and an existing file is replaced, never rewritten in place with its old mode.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # a leftover tmp file may have had another mode
        with os.fdopen(fd, "w") as out:
            fd = -1
            out.write(text)
        tmp.replace(path)
    finally:
        if fd >= 0:
            os.close(fd)
        tmp.unlink(missing_ok=True)


def write_json_report(path: Path, report: dict[str, Any]) -> None:
    """Write a machine-readable report atomically, mode 0600 (:func:`write_private`)."""
    write_private(path, json.dumps(report, indent=2, sort_keys=True, default=str) + "\n")


def finish_report(report: dict[str, Any], code: ExitCode, started: float,
                  path: Path | None) -> int:
    """End a run: stamp ``exit_code`` and ``duration_seconds`` (since the ``time.monotonic()``
    reading ``started``) on ``report``, write it to ``path`` if one was given, return the code."""
    report.update(exit_code=int(code), duration_seconds=round(time.monotonic() - started, 3))
    if path is not None:
        write_json_report(path, report)
    return int(code)

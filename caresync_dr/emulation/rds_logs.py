"""RDS's PostgreSQL log export to CloudWatch Logs, for a local server behind an emulated RDS.

With ``enabled_cloudwatch_logs_exports = ["postgresql"]`` RDS publishes the instance's
PostgreSQL log to ``/aws/rds/instance/<id>/postgresql``, one log event per line, in a stream
named after the instance (RDS user guide, "Publishing PostgreSQL logs to Amazon CloudWatch
Logs"). moto's RDS runs no database and publishes nothing. :class:`LogExport` reads a local
server's log file from where it stopped last time and puts the new lines into the group, as
RDS would (RDS does it continuously, within about a minute; here on each :meth:`ship`).
"""

from __future__ import annotations

import contextlib
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# The line prefix's time: RDS's "%t" (2026-11-30 03:01:02 UTC) or "%m" (with milliseconds).
_TIME = re.compile(r"^(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2})(\.\d+)? UTC")
BATCH = 5000   # PutLogEvents takes at most 10,000 events per call


def line_time(line: str) -> int:
    """Milliseconds since the epoch of a log line (its prefix), or now."""
    match = _TIME.match(line)
    if match is None:
        return int(time.time() * 1000)
    when = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    fraction = float(match.group(2) or 0)
    return int((when.timestamp() + fraction) * 1000)


@dataclass
class LogExport:
    """Ships ``log_file``'s new lines to ``group`` (stream ``stream``) with ``logs``."""

    log_file: Path
    logs: Any
    group: str
    stream: str
    offset: int = 0

    def ship(self) -> int:
        """Put every complete line written since the last call; returns how many."""
        if not self.log_file.exists():
            return 0
        with self.log_file.open("rb") as handle:
            handle.seek(self.offset)
            data = handle.read()
        end = data.rfind(b"\n")
        if end < 0:
            return 0
        self.offset += end + 1
        lines = [line for line in data[:end].decode(errors="replace").splitlines() if line]
        if not lines:
            return 0
        with contextlib.suppress(self.logs.exceptions.ResourceAlreadyExistsException):
            self.logs.create_log_stream(logGroupName=self.group, logStreamName=self.stream)
        stamped = sorted(((line_time(line), line) for line in lines), key=lambda e: e[0])
        events = [{"timestamp": when, "message": line} for when, line in stamped]
        for start in range(0, len(events), BATCH):
            self.logs.put_log_events(logGroupName=self.group, logStreamName=self.stream,
                                     logEvents=events[start:start + BATCH])
        return len(lines)

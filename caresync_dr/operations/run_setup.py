"""What an operation is handed (options, where it keeps its books, where its report goes) and
what it keeps about its own ending and lock, for the report."""

from __future__ import annotations

import argparse
import getpass
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from caresync_dr.arguments import seconds
from caresync_dr.cli.errors import ExitCode
from caresync_dr.cli.reporting import write_json_report
from caresync_dr.operations.lock import DEFAULT_LOCK_HEARTBEAT_SECONDS, LOCK_HEARTBEAT_RANGE
from caresync_dr.operations.timeline import INCIDENTS_PREFIX

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_ssm import SSMClient

Mode = Literal["run", "check", "dry-run"]
REPOSITORY = Path(__file__).resolve().parents[2]
REPORT_HELP = "write the run as JSON to PATH and a Markdown timeline beside it"
STANDBY_STACK_HELP = ("stack whose Pulumi.<stack>.yaml names the standby region and inventory "
                      "parameter (default: dr)")


@dataclass(frozen=True)
class EngineOptions:
    """What the operator asked the engine for (the operation's own options live in its
    context)."""

    mode: Mode
    stack: str
    yes: bool = False                   # skip the confirmation prompt
    resume: bool = False                # continue the unfinished run of the journal
    report: Path | None = None          # --report: JSON, and the .md timeline beside it
    heartbeat_seconds: float = 10.0     # lease renewal; stale after 3 missed renewals

    @classmethod
    def requested(cls, options: RunRequest, heartbeat_seconds: float) -> EngineOptions:
        """The engine's part of a command's parsed options."""
        return cls(mode=options.mode, stack=options.stack, yes=options.yes,
                   resume=options.resume, report=options.report,
                   heartbeat_seconds=heartbeat_seconds)


def add_operation_arguments(parser: argparse.ArgumentParser, *, stack: str | None = "dr",
                            stack_help: str = STANDBY_STACK_HELP, check_help: str | None = None,
                            journal_default: str | None = None,
                            yes_help: str = "do not ask the operator to type the stack name",
                            project_dir_help: str = "where Pulumi.<stack>.yaml lives (default: "
                                                    "the repository)") -> None:
    """The flags every command on the engine has, with one meaning each: ``--stack`` (none
    when ``stack`` is None: a command that works on both stacks, such as breach.py),
    ``--check`` (only with ``check_help``: what a passing readiness check means for this
    command) and ``--dry-run``, ``--yes``, ``--resume``, ``--journal-file`` (``journal_default``:
    where the journal goes without ``--report``, else beside the report only) and
    ``--project-dir``. ``--report`` is the base parser's (:data:`REPORT_HELP`). Parsed, they are
    :class:`RunRequest`'s fields for :meth:`EngineOptions.requested`."""
    if stack is not None:
        parser.add_argument("--stack", default=stack, help=stack_help)
    mode = parser.add_mutually_exclusive_group()
    if check_help is not None:
        mode.add_argument("--check", action="store_true", help=check_help)
    mode.add_argument("--dry-run", action="store_true",
                      help="show every step, the state it sees and what it would change; "
                           "change nothing")
    parser.add_argument("--yes", action="store_true", help=yes_help)
    parser.add_argument("--resume", action="store_true",
                        help="continue a run that stopped part-way (from its journal)")
    parser.add_argument("--journal-file", type=Path, metavar="PATH",
                        help="local journal copy (default: beside --report"
                             + (f", else ./{journal_default})" if journal_default else ")"))
    parser.add_argument("--project-dir", type=Path, default=REPOSITORY, metavar="DIR",
                        help=project_dir_help)


def add_polling_arguments(parser: argparse.ArgumentParser, *, first: float,
                          longest: bool = True, heartbeat: bool = True) -> None:
    """How a command on the engine waits: ``--poll-seconds`` (default ``first``), and unless
    turned off ``--poll-max-seconds`` (the backoff's cap) and ``--lock-heartbeat-seconds``
    (the lease renewal, :mod:`caresync_dr.operations.lock`). Checked as finite seconds in
    range when parsed (:func:`caresync_dr.arguments.seconds`)."""
    parser.add_argument("--poll-seconds", type=seconds(maximum=600), default=first, metavar="S",
                        help=f"first interval between state reads while waiting (default "
                             f"{first:g})")
    if longest:
        parser.add_argument("--poll-max-seconds", type=seconds(maximum=600), metavar="S",
                            help="longest interval between reads (default 4 x the first)")
    if heartbeat:
        parser.add_argument("--lock-heartbeat-seconds", metavar="S",
                            type=seconds(maximum=LOCK_HEARTBEAT_RANGE[1]),
                            default=DEFAULT_LOCK_HEARTBEAT_SECONDS,
                            help=f"lock lease renewal (default "
                                 f"{DEFAULT_LOCK_HEARTBEAT_SECONDS:g}; stale after 3 missed)")


class RunRequest(Protocol):
    """The options every operation's command parses for the engine."""

    @property
    def mode(self) -> Mode: ...
    @property
    def stack(self) -> str: ...
    @property
    def yes(self) -> bool: ...
    @property
    def resume(self) -> bool: ...
    @property
    def report(self) -> Path | None: ...


@dataclass(frozen=True)
class Bookkeeping:
    """Where an operation keeps its lock, journal and incident records: SSM parameters and a
    bucket in the region that must answer (the standby region for a failover)."""

    ssm: SSMClient
    lock_parameter: str
    journal_parameter: str
    journal_file: Path | None           # local copy of the journal
    incident_bucket: str
    incident_s3: Callable[[], S3Client]   # made only when the timeline is uploaded
    incident_prefix: str = INCIDENTS_PREFIX


class ReportTarget(Protocol):
    """Where the JSON report goes (``caresync_dr.cli.Invocation`` is one)."""

    report_path: Path | None

    def write_report(self, document: dict[str, Any]) -> None: ...


@dataclass
class ReportFile:
    """A :class:`ReportTarget` for callers without an ``Invocation``."""

    report_path: Path | None

    def write_report(self, document: dict[str, Any]) -> None:
        if self.report_path is not None:
            write_json_report(self.report_path, document)


@dataclass
class LockState:
    """What the report says about the lock."""

    name: str
    held: bool = False
    taken_over: dict[str, Any] | None = None
    released: bool | None = None
    release_error: str | None = None
    removed_stale: dict[str, Any] | None = None

    def as_report(self) -> dict[str, Any]:
        return {"parameter": self.name, "held": self.held, "takenOver": self.taken_over,
                "released": self.released, "releaseError": self.release_error,
                "removedStale": self.removed_stale}


@dataclass
class Ending:
    """How the run ends. ``handled`` stays False only for an exit this code does not handle
    (a kill-like BaseException): the process is going away without cleanup."""

    code: ExitCode = ExitCode.FAILED
    outcome: str = "crashed"
    message: str = "the process was stopped without cleanup"
    handled: bool = False
    lines: list[str] = field(default_factory=list)   # printed after the report is written


def operator_name() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"

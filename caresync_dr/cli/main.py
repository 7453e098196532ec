"""``run_main``: the one way every operator command starts and ends.

A command is a parser (:func:`~caresync_dr.cli.parser.command_parser`) and a body
``(args, invocation) -> int``. :func:`run_command` guarantees, whatever the body does:

- bad input is one line naming the problem and its exit code, never a traceback (argparse's
  refusals included); an unexpected error is one line too, its traceback only with ``-v``;
- ``--report`` is checked before the body runs (exit 2, nothing written), and a report is
  written on every exit: the body's own (:meth:`Invocation.write_report`) or, when it wrote
  none, the base report (command, outcome, exit code, message, timing, ``invocation.data``);
- missing or expired AWS credentials name the command's IAM role
  (:data:`caresync_dr.operator_permissions.ROLES`) and how to assume it;
- an endpoint answering a web page instead of AWS (a proxy, a captive portal) is said so
  (:mod:`caresync_dr.cli.aws_answers`), not taken for an empty result;
- an AWS error, an unreachable endpoint or Ctrl-C/SIGTERM before the body said it was
  changing something (:meth:`Invocation.changing`) is exit 3, "nothing was changed"; after it,
  exit 1.

:func:`run_main` adds logging (timestamped lines on stderr) and turns SIGTERM/SIGHUP into
Ctrl-C, for ``main(argv) -> int``; tests call :func:`run_command` directly.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from caresync_dr import quiet_start
from caresync_dr.cli.aws_problems import aws_problem, is_aws_error
from caresync_dr.cli.errors import CODE_NAMES, CommandError, ExitCode, UsageError
from caresync_dr.cli.reporting import writable_file, write_json_report
from caresync_dr.cli.signals import Interrupted, signals_held, signals_interrupt
from caresync_dr.operator_permissions import role_name_of

log = logging.getLogger(__name__)
OUTCOMES: dict[int, str] = {
    ExitCode.OK: "ok", ExitCode.FAILED: "failed", ExitCode.USAGE: "usage error",
    ExitCode.REFUSED: "refused", ExitCode.LOCKED: "locked", ExitCode.NOT_READY: "not ready"}


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


@dataclass
class Ending:
    """How an invocation ended: what the error line and the base report say."""

    code: int
    message: str
    outcome: str
    traceback: str | None = None


@dataclass
class Invocation:
    """What the body is handed besides its arguments."""

    command: str
    report_path: Path | None
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    data: dict[str, Any] = field(default_factory=dict)   # merged into the base report
    changed: bool = False
    report_written: bool = False
    message: str = ""           # the body's closing sentence for the base report
    report_document: dict[str, Any] | None = None   # the body's own report, as last written

    def changing(self) -> None:
        """From here on a failure may leave something changed (exit 1, not 3)."""
        self.changed = True

    def write_report(self, document: dict[str, Any]) -> None:
        """Write the body's own report (instead of the base one); no-op without --report."""
        if self.report_path is not None:
            write_json_report(self.report_path, document)
            self.report_written = True
            self.report_document = document

    def claim_report(self) -> None:
        """The body writes the report itself on every exit (the base report is not written)."""
        self.report_written = True


Body = Callable[[argparse.Namespace, Invocation], int]
Fallback = Callable[[argparse.Namespace | None, Invocation, Ending], dict[str, Any]]


def _name(code: int) -> str:
    return CODE_NAMES.get(code, "undocumented")


def _report_in(argv: Sequence[str]) -> Path | None:
    """``--report`` from arguments the parser refused (a report is written on every exit)."""
    probe = argparse.ArgumentParser(add_help=False)
    probe.add_argument("--report", type=Path)
    try:
        known, _ = probe.parse_known_args(list(argv))
    except SystemExit:
        return None
    path: Path | None = known.report
    if path is None:
        return None
    try:
        return writable_file("--report", path)
    except UsageError:
        return None


def _not_an_input(parser: argparse.ArgumentParser, args: argparse.Namespace,
                  report: Path) -> None:
    """``--report`` must not name a file the command reads (its backup, key file,
    inventory): the report would replace it. Raises :class:`UsageError` naming both."""
    if not report.exists():
        return
    for action in parser._actions:
        if action.dest == "report":
            continue
        values = getattr(args, action.dest, None)
        for value in values if isinstance(values, list) else [values]:
            if isinstance(value, Path) and value.is_file() and value.samefile(report):
                option = (action.option_strings[-1] if action.option_strings
                          else action.dest.upper())
                raise UsageError(f"--report {report} is the file {option} names: the report "
                                 "would replace it; give another path")


def _not_changed(invocation: Invocation) -> str:
    return "nothing was changed" if not invocation.changed else \
        "it stopped part-way: the report says what was done"


def _ending(exc: BaseException, invocation: Invocation) -> Ending:
    code: int
    if isinstance(exc, CommandError):
        code, message = int(exc.exit_code), str(exc)
        problem = aws_problem(exc)
        if problem is not None and problem.kind == "credentials":
            message = f"{message}; {problem.sentence(message, role_name_of(invocation.command))}"
        return Ending(code, message, OUTCOMES.get(code, "failed"))
    code = int(ExitCode.FAILED if invocation.changed else ExitCode.REFUSED)
    if isinstance(exc, KeyboardInterrupt):
        why = f"stopped by {exc.signal_name}" if isinstance(exc, Interrupted) else "interrupted"
        return Ending(code, f"{why}: {_not_changed(invocation)}", "interrupted")
    if is_aws_error(exc):
        problem = aws_problem(exc)
        said = (problem.sentence(role=role_name_of(invocation.command)) if problem is not None
                else f"AWS call failed: {exc}")
        return Ending(code, f"{said}; {_not_changed(invocation)}", OUTCOMES.get(code, "failed"))
    if isinstance(exc, BrokenPipeError):   # `| head`, a closed terminal: nobody reads on
        return Ending(int(ExitCode.FAILED), "the output was cut off (its reader went away: "
                      f"{exc.strerror or exc}); {_not_changed(invocation)}", "failed")
    if isinstance(exc, OSError):
        said = f"{exc.filename}: {exc.strerror}" if exc.filename and exc.strerror else str(exc)
        return Ending(int(ExitCode.FAILED), f"{said}; {_not_changed(invocation)}", "failed")
    return Ending(int(ExitCode.FAILED),
                  f"unexpected error {type(exc).__name__}: {exc} (a bug: the traceback is in "
                  "the report, and shown with -v); " + _not_changed(invocation), "crashed",
                  traceback="".join(traceback.format_exception(exc)))


def _base_report(args: argparse.Namespace | None, invocation: Invocation,
                 ending: Ending) -> dict[str, Any]:
    ended = datetime.now(UTC)
    report: dict[str, Any] = {
        "command": invocation.command, "outcome": ending.outcome, "exit_code": ending.code,
        "message": ending.message, "started_at": invocation.started_at.isoformat(),
        "ended_at": ended.isoformat(),
        "duration_seconds": round((ended - invocation.started_at).total_seconds(), 3)}
    if ending.traceback:
        report["traceback"] = ending.traceback
    report.update(invocation.data)
    return report


# The fields by which a body's own report says the run succeeded.
SUCCESS_CLAIMS: dict[str, object] = {"ok": True, "outcome": "ok", "exit_code": 0, "exitCode": 0}


def _claims_success(document: dict[str, Any]) -> bool:
    return any(key in document and document[key] == value and
               type(document[key]) is type(value) for key, value in SUCCESS_CLAIMS.items())


def _correct_claimed_success(invocation: Invocation, ending: Ending) -> None:
    """The body wrote its own report saying it succeeded, then failed or was interrupted (a
    Ctrl-C while it printed its summary): that report is rewritten with the ending, so no exit
    leaves a report that contradicts its exit code. Never raises."""
    document = invocation.report_document
    if invocation.report_path is None or document is None or not _claims_success(document):
        return
    corrected = {**document, "ending": {"outcome": ending.outcome, "exit_code": ending.code,
                                        "message": ending.message}}
    for key in SUCCESS_CLAIMS:
        if key in corrected:
            corrected[key] = {"ok": False, "outcome": ending.outcome}.get(key, ending.code)
    try:
        with signals_held():
            write_json_report(invocation.report_path, corrected)
        invocation.report_document = corrected
    except Exception as exc:
        log.error("could not correct the report %s: %s", invocation.report_path, exc)


def _write_fallback(args: argparse.Namespace | None, invocation: Invocation, ending: Ending,
                    fallback: Fallback) -> None:
    """Never raises: the report is what is left when everything else failed."""
    if invocation.report_path is None or invocation.report_written:
        return
    try:
        write_json_report(invocation.report_path, fallback(args, invocation, ending))
    except Exception as exc:
        log.error("could not write the report %s: %s", invocation.report_path, exc)


def run_command(parser: argparse.ArgumentParser, body: Body, argv: Sequence[str] | None, *,
                command: str | None = None, fallback: Fallback = _base_report) -> int:
    """Parse ``argv``, check ``--report``, run ``body``; see the module docstring for what
    every exit guarantees. ``fallback`` shapes the report written when the body wrote none."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    invocation = Invocation(command or parser.prog.removesuffix(".py"), None)
    args: argparse.Namespace | None = None
    if "botocore.handlers" in sys.modules:   # a command that calls AWS (loaded already: free)
        from caresync_dr.cli.aws_answers import refuse_web_pages

        refuse_web_pages()
    try:
        args = parser.parse_args(arguments)
    except SystemExit as exc:          # --help (0), or a parser that is not a CommandParser
        return int(exc.code or 0) if not isinstance(exc.code, str) else int(ExitCode.USAGE)
    except CommandError as exc:
        invocation.report_path = _report_in(arguments)
        ending = _ending(exc, invocation)
        log.error("%s (exit %d: %s)", ending.message, ending.code,
                  _name(ending.code))
        _write_fallback(None, invocation, ending, fallback)
        return ending.code
    try:
        report = getattr(args, "report", None)
        invocation.report_path = writable_file("--report", report) if report else None
        if invocation.report_path is not None:
            _not_an_input(parser, args, invocation.report_path)
    except UsageError as exc:
        log.error("%s (exit %d: usage); nothing was written", exc, ExitCode.USAGE)
        return int(ExitCode.USAGE)
    try:
        code = int(body(args, invocation))
        ending = Ending(code, invocation.message, OUTCOMES.get(code, "failed"))
    except (Exception, KeyboardInterrupt) as exc:
        ending = _ending(exc, invocation)
        log.error("%s (exit %d: %s)", ending.message, ending.code,
                  _name(ending.code))
        log.debug("details", exc_info=True)
        _correct_claimed_success(invocation, ending)
    _write_fallback(args, invocation, ending, fallback)
    return ending.code


def verbose_in(argv: Sequence[str]) -> bool:
    return any(a in ("-v", "--verbose") for a in argv)


def run_main(parser: argparse.ArgumentParser, body: Body, argv: Sequence[str] | None = None,
             *, command: str | None = None, fallback: Fallback = _base_report) -> int:
    """``main(argv) -> int`` of an operator command: logging, signals, :func:`run_command`."""
    quiet_start.end()      # Ctrl-C from here on is the command's to handle
    arguments = list(sys.argv[1:] if argv is None else argv)
    setup_logging(verbose=verbose_in(arguments))
    started = time.monotonic()
    with signals_interrupt():
        code = run_command(parser, body, arguments, command=command, fallback=fallback)
    log.debug("%s ended with exit %d after %.2f s", parser.prog, code, time.monotonic() - started)
    return code

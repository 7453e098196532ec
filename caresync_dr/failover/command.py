"""The failover command: parse arguments, load settings and inventory, pick the mode, run.

``scripts/failover.py`` is a thin front over :func:`main`; tests and drills call :func:`run`.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from caresync_dr.aws import new_core_session
from caresync_dr.cli import (
    CommandParser,
    Ending,
    ExitCode,
    Invocation,
    command_parser,
    run_command,
    run_main,
)
from caresync_dr.failover.context import FailoverContext, client_operations
from caresync_dr.failover.inputs import DEFAULT_JOURNAL_FILE, load_inventory, options_from
from caresync_dr.failover.operation import FailoverOperation
from caresync_dr.failover.options import (
    ENV_HEALTH_URL,
    ENV_LOCK_HEARTBEAT,
    ENV_POLL,
    ENV_POLL_MAX,
    ENV_VERIFY_TIMEOUT,
    ENV_WAIT_TIMEOUT,
    add_timing_arguments,
)
from caresync_dr.operations.hooks import DeferredHooks
from caresync_dr.operations.recorder import ApiCallRecorder
from caresync_dr.operations.run_setup import REPORT_HELP, add_operation_arguments
from caresync_dr.settings import Settings
from caresync_dr.startup import pause_collection

if TYPE_CHECKING:
    from caresync_dr.aws import AwsSession

log = logging.getLogger(__name__)
PROJECT_DIR = Path(__file__).resolve().parents[2]

NOTES = f"""\
environment:
  AWS_ENDPOINT_URL                    send every AWS call to this endpoint (emulator drills)
  {ENV_POLL:<35} first interval between state reads while waiting (default 5)
  {ENV_POLL_MAX:<35} longest interval between reads (default 4 x the first)
  {ENV_WAIT_TIMEOUT:<35} limit for promotion and scale-up waits (default: the RTO)
  {ENV_VERIFY_TIMEOUT:<35} limit for the health URL verification (default 600)
  {ENV_HEALTH_URL:<35} health URL to verify instead of the inventory's publicHealthUrl
  {ENV_LOCK_HEARTBEAT:<35} lock lease renewal interval (default 10); a lock is
  {"":<35} stale after 3 missed renewals
Every exit writes the report (--report) it can; missing AWS credentials name the operator role.
"""
EXIT_CODES = [
    (ExitCode.OK, 'success; also "already failed over", a passing --check, a dry run that\n'
                  "would proceed"),
    (ExitCode.FAILED, "failed or stopped part-way: state is consistent, continue with --resume"),
    (ExitCode.USAGE, "usage or configuration error (a bad flag, unknown stack, malformed\n"
                     "settings or inventory); nothing was changed"),
    (ExitCode.REFUSED, "refused by a preflight check (replication, lag, a missing resource), at\n"
                       "the confirmation prompt, or stopped before any change (AWS did not\n"
                       "answer, no credentials, interrupted); nothing was changed"),
    (ExitCode.LOCKED, "another live run holds the lock (holder, start, heartbeat age shown);\n"
                      "nothing was changed. A dead run's lock is stale 3 heartbeats after its\n"
                      "last one: then it is taken over (by a plain run, or by --resume of that\n"
                      "run's unfinished journal)"),
    (ExitCode.NOT_READY, "--check: a failover would not succeed now"),
]


def build_parser() -> CommandParser:
    parser = command_parser(
        "failover.py", "Promote the DR site (--scope region) or the primary's in-region replica "
        "(--scope database), using nothing from the failed region.", EXIT_CODES, notes=NOTES,
        report_help=REPORT_HELP)
    add_operation_arguments(parser, check_help="readiness table only; exit 0 when a failover "
                            "would succeed now", journal_default=str(DEFAULT_JOURNAL_FILE))
    parser.add_argument("--scope", choices=("region", "database"), default="region",
                        help="region: fail over to the standby region (default); database: "
                        "promote the primary's in-region read replica")
    parser.add_argument("--force", action="store_true",
                        help="go on although the replica lags beyond the RPO (data loss!)")
    parser.add_argument("--outage-started", metavar="TIME",
                        help="when the primary stopped taking writes (ISO 8601 with a time "
                        "zone, e.g. 2026-11-30T02:11Z, from the first alert): replication and "
                        "the data-loss exposure are judged as of then, so a replica that "
                        "stopped replicating because of the outage is not refused")
    parser.add_argument("--adopt-promoted", metavar="DB_IDENTIFIER",
                        help="the target database was promoted by hand (RDS console or CLI) "
                        "before this run: accept that standalone writer as promoted and do the "
                        "rest (fence, switch, scale, verify). DB_IDENTIFIER must be the target "
                        "the inventory names for this direction, status available; not with "
                        "--check or --resume")
    parser.add_argument("--inventory", type=Path, metavar="FILE",
                        help="read the inventory JSON from FILE instead of SSM")
    add_timing_arguments(parser)
    return parser


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def _fallback_report(args: argparse.Namespace | None, invocation: Invocation,
                     ending: Ending) -> dict[str, Any]:
    """The report of a run that ended before its mode wrote one (bad input, no inventory)."""
    mode = "run" if args is None else ("check" if args.check else
                                       "dry-run" if args.dry_run else "run")
    return {"mode": mode, "stack": getattr(args, "stack", None),
            "scope": getattr(args, "scope", None),
            "outcome": "usage error" if ending.code == ExitCode.USAGE else
                       "refused" if ending.code == ExitCode.REFUSED else "failed",
            "exitCode": ending.code, "message": ending.message,
            "endedAt": datetime.now(UTC).isoformat()}


def _notifications(ctx: FailoverContext, settings: Settings) -> DeferredHooks:
    """The run's notifier (D7), built on the hook thread at the first event: its imports
    (requests, templates) and clients (SNS, Secrets Manager) are not on the way to the
    promotion, which the hook thread waits for (RunContext.critical_sent)."""
    def build() -> Any:
        from caresync_dr.failover.notifications import failover_notifications

        return failover_notifications(ctx, settings)

    return DeferredHooks(build)


def _body(session: AwsSession | None, stdin: TextIO | None, out: TextIO
          ) -> Callable[[argparse.Namespace, Invocation], int]:
    def body(args: argparse.Namespace, invocation: Invocation) -> int:
        options = options_from(args)
        # Every AWS call of the command, the inventory read included, goes through this
        # session and is recorded; --check and --dry-run block any change (the engine's proof).
        aws = session if session is not None else new_core_session(
            operations=client_operations())
        recorder = ApiCallRecorder(block=options.mode != "run").install(aws)
        try:
            created: dict[str, Any] = {}
            inventory, settings = load_inventory(options, args.project_dir, aws, created)
            ctx = FailoverContext(inventory, options, session=aws)
            if "ssm" in created and created["ssm"][0] == ctx.books.region:
                ctx.books.adopt("ssm", created["ssm"][1])   # the inventory's reader
            hooks = None
            if options.mode == "run":
                invocation.claim_report()      # the engine writes a run's report on every exit
                hooks = _notifications(ctx, settings)
            operation = FailoverOperation(ctx, out, stdin or sys.stdin, report_target=invocation,
                                          recorder=recorder, hooks=hooks)
            ctx.prewarm()  # start work sooner: clients built while the first reads wait
            try:
                return operation.execute()
            finally:
                ctx.run_over()
        finally:
            recorder.uninstall()

    return body


def run(argv: list[str] | None = None, session: AwsSession | None = None,
        stdin: TextIO | None = None, out: TextIO | None = None) -> int:
    """Parse, load, run; every known failure becomes one clear line and its exit code, and
    every exit leaves the report it can (``--report``)."""
    return run_command(build_parser(), _body(session, stdin, out or sys.stdout), argv,
                       command="failover", fallback=_fallback_report)


def main(argv: list[str] | None = None) -> int:
    pause_collection()   # scripts/failover.py did before its imports (then a no-op)
    return run_main(build_parser(), _body(None, None, sys.stdout), argv, command="failover",
                    fallback=_fallback_report)

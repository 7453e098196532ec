"""``pitr.py`` (``caresync-pitr``): point-in-time restore of the active site's writer and
cut-over (issue 14; the work is :mod:`caresync_dr.pitr`).

``scripts/pitr.py`` is a thin front over :func:`main`; tests and drills call :func:`run`.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

import boto3

from caresync_dr import arguments
from caresync_dr.cli import (
    CommandParser,
    ExitCode,
    Invocation,
    UsageError,
    command_parser,
    run_command,
    run_main,
)
from caresync_dr.operations.run_setup import (
    REPORT_HELP,
    add_operation_arguments,
    add_polling_arguments,
)
from caresync_dr.pitr.context import PitrContext, PitrOptions
from caresync_dr.pitr.operation import PitrOperation
from caresync_dr.pitr.verify import WRITABLE, Check, count
from caresync_dr.pitr.window import BadRestoreTimeError, parse_restore_time
from caresync_dr.settings import SettingsError, StackFileError, settings_from_stack_file

_TABLE = re.compile(r"[a-z_][a-z0-9_$]*(\.[a-z_][a-z0-9_$]*)?")

DESCRIPTION = """\
Point-in-time restore of the active site's writer (seed scenario 1: corruption, a bad migration,
a DELETE without WHERE): the replicas carry the damage within a second, so the recovery is the
database as it was just before it.

  1. restore the writer at --restore-time into a new instance (the next generation,
     caresync-<site>-db-g<N>), with the site's subnet group, security group, parameter group,
     class and Multi-AZ, never public; encrypted with the site key (the backups' key)
  2. verify it as the app's login: writable, and the --check/--count the operator names
  3. fence the damaged writer (moved into the no-access group; kept for forensics)
  4. repoint the app's endpoint parameter, replace the app instances (capacity kept)

It restores in the site's own region, from the writer's automated backups or from backups kept
in that region for an earlier writer (after a region failover, the primary's replicated
automated backups in the standby region). A time outside every window is refused, with the
windows in the message.
"""
NOTES = """\
--restore-time is UTC unless it says otherwise (2026-11-30T02:11:00Z); pick a time just before
the damage (its first log line, the first bad migration's start). Writes after it exist only in
the damaged instance, which is kept.
The checks connect as caresync/db/app with sslmode verify-full: set PGSSLROOTCERT to the RDS
certificate bundle (global-bundle.pem); PGSSLMODE and the other libpq variables apply.
AWS_ENDPOINT_URL sends every AWS call to an emulator (drills).
Runbook: docs/runbooks/corruption.md.
"""
EXIT_CODES = [
    (ExitCode.OK, "restored and cut over (also: already restored to that time; a dry run\n"
                  "that would proceed)"),
    (ExitCode.FAILED, "failed part-way (the restore failed or fails its checks: nothing was\n"
                      "cut over); continue with --resume, or, if T was wrong, run again\n"
                      "with another --restore-time (delete the restored instance first)"),
    (ExitCode.USAGE, "bad arguments (a malformed time, a time in the future), unknown stack;\n"
                     "nothing was changed"),
    (ExitCode.REFUSED, "refused by the preflight (not the active site, T outside every\n"
                       "restorable window, no fence group...), at the prompt, or AWS did not\n"
                       "answer before any change; nothing was changed"),
    (ExitCode.LOCKED, "another in-region operation of this site holds the lock"),
]


def build_parser() -> CommandParser:
    parser = command_parser("pitr.py", DESCRIPTION, EXIT_CODES, notes=NOTES,
                            report_help=REPORT_HELP)
    add_operation_arguments(parser, stack="prod",
                            stack_help="the active site's stack: prod, or dr after a failover",
                            journal_default="reports/pitr-journal.json")
    parser.add_argument("--restore-time", required=True, metavar="TIME",
                        help="ISO 8601 with a zone, e.g. 2026-11-30T02:11:00Z")
    parser.add_argument("--check", action="append", default=[], metavar="SQL",
                        help="a condition the restored database must meet: SQL whose first "
                             "column is true (repeatable)")
    parser.add_argument("--count", action="append", default=[], metavar="TABLE",
                        help="report the rows of TABLE, restored and damaged (repeatable; "
                             "default: patients)")
    parser.add_argument("--health-url", type=arguments.http_url, metavar="URL",
                        help="at the end, GET it until the service answers writable")
    add_polling_arguments(parser, first=15.0)
    parser.add_argument("--restore-timeout", type=arguments.seconds(), default=4 * 3600.0,
                        metavar="S",
                        help="limit of the restore (default 14400: RDS replays the logs)")
    parser.add_argument("--refresh-timeout", type=arguments.seconds(), default=3600.0,
                        metavar="S",
                        help="limit of the app's instance refresh (default 3600)")
    return parser


def options_from(args: argparse.Namespace) -> PitrOptions:
    try:
        when = parse_restore_time(args.restore_time)
    except BadRestoreTimeError as exc:
        raise UsageError(str(exc)) from exc
    for table in args.count:
        if not _TABLE.fullmatch(table):
            raise UsageError(f"--count {table!r}: a table name such as patients or "
                             "public.patients")
    for sql in args.check:
        if not sql.strip():
            raise UsageError("--check needs SQL")
    checks: list[Check] = [WRITABLE]
    checks += [Check(f"check {i}", "condition", sql) for i, sql in enumerate(args.check, 1)]
    checks += [count(table) for table in (args.count or ["patients"])]
    journal = args.journal_file or (args.report.with_name("pitr-journal.json") if args.report
                                    else Path("reports") / "pitr-journal.json")
    return PitrOptions(stack=args.stack, restore_time=when, checks=tuple(checks),
                       mode="dry-run" if args.dry_run else "run", yes=args.yes,
                       resume=args.resume, report=args.report, journal_file=journal,
                       health_url=args.health_url, poll_seconds=args.poll_seconds,
                       poll_max_seconds=args.poll_max_seconds or args.poll_seconds * 4,
                       restore_timeout=args.restore_timeout,
                       refresh_timeout=args.refresh_timeout,
                       heartbeat_seconds=args.lock_heartbeat_seconds)


def _body(session: boto3.Session | None, stdin: TextIO | None, out: TextIO
          ) -> Callable[[argparse.Namespace, Invocation], int]:
    def body(args: argparse.Namespace, invocation: Invocation) -> int:
        options = options_from(args)
        try:
            settings = settings_from_stack_file(args.stack, args.project_dir)
        except (SettingsError, StackFileError) as exc:
            raise UsageError(str(exc)) from exc
        invocation.data.update(stack=args.stack, site=settings.site, region=settings.region,
                               restoreTime=args.restore_time)
        ctx = PitrContext(options, settings, session)
        if options.mode == "run":
            invocation.claim_report()
        return PitrOperation(ctx, out, stdin or sys.stdin, report_target=invocation).execute()

    return body


def run(argv: list[str] | None = None, session: boto3.Session | None = None,
        stdin: TextIO | None = None, out: TextIO | None = None) -> int:
    return run_command(build_parser(), _body(session, stdin, out or sys.stdout), argv,
                       command="pitr")


def main(argv: list[str] | None = None) -> int:
    return run_main(build_parser(), _body(None, None, sys.stdout), argv, command="pitr")

"""``app.py`` (``caresync-app``): the app tier of one site, in its own region: status,
restart, deploy, rollback (issue 14; the work is :mod:`caresync_dr.app`).

``scripts/app.py`` is a thin front over :func:`main`; tests and drills call :func:`run`.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

import boto3

from caresync_dr import arguments
from caresync_dr.app.context import AppContext, AppOptions
from caresync_dr.app.operation import AppOperation
from caresync_dr.app.status import read_status, render
from caresync_dr.app.steps import rolled_back_sentence
from caresync_dr.cli import (
    CommandParser,
    ExitCode,
    FailedError,
    Invocation,
    RefusedError,
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
from caresync_dr.settings import SettingsError, StackFileError, settings_from_stack_file

VERSION = arguments.integer(minimum=1, maximum=2**31 - 1)
ACTIONS = ("status", "restart", "deploy", "rollback")
_AMI = re.compile(r"ami-[0-9a-f]{8,17}")

DESCRIPTION = """\
The app tier of one site, in its own region (seed scenario 2, "Application Crash"):

  status    instances, launch template version and AMI, target health, recent 5xx, alarms
  restart   replace every instance with a fresh one of the same release (capacity kept:
            new instances start before old ones stop), then wait until all are healthy
  deploy    roll out a new launch template version (the one `pulumi up` made; CI's deploy
            job runs this): Auto Scaling watches the 5xx and unhealthy-host alarms during
            the refresh and a bake time after it, and rolls back by itself if one fires
  rollback  back to the previous good version, or --to-version N, or --to-ami AMI (a new
            version of the running one with that image); with a deploy in progress and no
            target named, that refresh is rolled back
"""
NOTES = """\
AWS_ENDPOINT_URL sends every AWS call to an emulator (drills). Every exit writes the report it
can (--report) and, once something may have changed, the incident timeline under incidents/ in
the site's backup bucket. Runbooks: docs/runbooks/app-crash.md, docs/runbooks/bad-release.md.
"""
EXIT_CODES = [
    (ExitCode.OK, "done (also: already done; a dry run that would proceed; status read)"),
    (ExitCode.FAILED, "failed part-way, or a deploy Auto Scaling rolled back (the previous\n"
                      "release serves again); the message says which. Continue a failed run\n"
                      "with --resume"),
    (ExitCode.USAGE, "bad arguments or stack file; nothing was changed"),
    (ExitCode.REFUSED, "refused by the preflight (a refresh in progress, unknown version,\n"
                       "alarms firing, no rollback possible...), at the prompt, or AWS did\n"
                       "not answer before any change; nothing was changed"),
    (ExitCode.LOCKED, "another in-region operation of this site holds the lock; nothing was\n"
                      "changed"),
]


def build_parser() -> CommandParser:
    parser = command_parser("app.py", DESCRIPTION, EXIT_CODES, notes=NOTES,
                            report_help=REPORT_HELP)
    parser.add_argument("action", choices=ACTIONS, help="what to do (see above)")
    add_operation_arguments(
        parser, stack="prod",
        stack_help="the site's stack: prod (primary) or dr (standby); default prod",
        journal_default="reports/app-<action>-journal.json (one journal per action)")
    parser.add_argument("--force", action="store_true",
                        help="deploy a version Auto Scaling rolled back before")
    parser.add_argument("--version", type=VERSION, metavar="N",
                        help="deploy: the launch template version (default: the latest)")
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--to-version", type=VERSION, metavar="N",
                        help="rollback: go to this launch template version")
    target.add_argument("--to-ami", metavar="AMI",
                        help="rollback: a new version of the running one with this image")
    parser.add_argument("--minutes", type=arguments.integer(minimum=1, maximum=1440),
                        default=15, metavar="M",
                        help="status: the window of the 5xx rate (default 15)")
    add_polling_arguments(parser, first=5.0)
    parser.add_argument("--wait-timeout", type=arguments.seconds(), default=3600.0, metavar="S",
                        help="limit of one refresh, bake time included (default 3600)")
    return parser


def options_from(args: argparse.Namespace) -> AppOptions:
    action = args.action
    for flag, value, allowed in (("--version", args.version, ("deploy",)),
                                 ("--to-version", args.to_version, ("rollback",)),
                                 ("--to-ami", args.to_ami, ("rollback",)),
                                 ("--force", args.force or None, ("deploy",))):
        if value is not None and action not in allowed:
            raise UsageError(f"{flag} applies to {' and '.join(allowed)} only, not {action}")
    if args.to_ami is not None and not _AMI.fullmatch(args.to_ami):
        raise UsageError(f"--to-ami {args.to_ami!r} is not an AMI id such as "
                         "ami-0abc12345def67890")
    journal = args.journal_file or (
        args.report.with_name(f"app-{action}-journal.json") if args.report else
        Path("reports") / f"app-{action}-journal.json")
    return AppOptions(action=action, stack=args.stack,
                      mode="dry-run" if args.dry_run else "run", yes=args.yes,
                      resume=args.resume, force=args.force, report=args.report,
                      journal_file=journal, version=args.version, to_version=args.to_version,
                      to_ami=args.to_ami, poll_seconds=args.poll_seconds,
                      poll_max_seconds=args.poll_max_seconds or args.poll_seconds * 4,
                      wait_timeout=args.wait_timeout,
                      heartbeat_seconds=args.lock_heartbeat_seconds)


def _body(session: boto3.Session | None, stdin: TextIO | None, out: TextIO
          ) -> Callable[[argparse.Namespace, Invocation], int]:
    def body(args: argparse.Namespace, invocation: Invocation) -> int:
        try:
            settings = settings_from_stack_file(args.stack, args.project_dir)
        except (SettingsError, StackFileError) as exc:
            raise UsageError(str(exc)) from exc
        invocation.data.update(stack=args.stack, action=args.action, site=settings.site,
                               region=settings.region)
        if args.action == "status":
            ctx = AppContext(AppOptions(action="restart", stack=args.stack), settings,
                             session)
            try:
                status = read_status(ctx, args.minutes)
            except LookupError as exc:
                raise RefusedError(str(exc)) from exc
            out.write(render(status) + "\n")
            invocation.write_report({"command": "app", "action": "status", "exitCode": 0,
                                     "outcome": "ok", **json.loads(json.dumps(status))})
            return ExitCode.OK
        options = options_from(args)
        ctx = AppContext(options, settings, session)
        if options.mode == "run":
            invocation.claim_report()   # the engine writes a run's report on every exit
        code = AppOperation(ctx, out, stdin or sys.stdin, report_target=invocation).execute()
        rolled = ctx.facts.get("rolled_back")
        if code == ExitCode.OK and rolled:
            # The run finished (nothing to resume); the deploy did not: exit 1, CI goes red.
            raise FailedError(rolled_back_sentence(rolled, ctx.group))
        return code

    return body


def run(argv: list[str] | None = None, session: boto3.Session | None = None,
        stdin: TextIO | None = None, out: TextIO | None = None) -> int:
    return run_command(build_parser(), _body(session, stdin, out or sys.stdout), argv,
                       command="app")


def main(argv: list[str] | None = None) -> int:
    return run_main(build_parser(), _body(None, None, sys.stdout), argv, command="app")

"""The planned switchover command (``caresync-switchover``, ``scripts/switchover.py``): move
the writer to the other site with no acknowledged write lost (RPO 0), then move traffic.

A command of its own rather than ``failover.py --planned``: a failover must work with the
primary region gone and never waits on it (fencing is best effort, it promotes what arrived and
reports the exposure); a switchover needs both regions and both databases, refuses unless both
sites are healthy, waits on the old writer (fence, final WAL position) and rolls back rather
than promote a replica that has not replayed everything. Different preconditions, inputs and
promises: one flag would make every failover option and check conditional. Both share the
operation engine, the failover's steps and its lock.

Importable entry points: :func:`main` (argv -> exit code, the console script) and :func:`run`
(the same with an injected boto3 session, stdin and stdout, for drills, tests and failback).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import boto3

from caresync_dr.arguments import database_url, integer, seconds
from caresync_dr.aws import STANDBY, AwsClients, RegionClients
from caresync_dr.cli import (
    CommandParser,
    Ending,
    ExitCode,
    Invocation,
    command_parser,
    run_command,
    run_main,
)
from caresync_dr.db.roles import APP_ROLE
from caresync_dr.failover.inputs import load_inventory, options_from
from caresync_dr.failover.options import (
    ENV_HEALTH_URL,
    ENV_LOCK_HEARTBEAT,
    ENV_POLL,
    ENV_POLL_MAX,
    ENV_VERIFY_TIMEOUT,
    ENV_WAIT_TIMEOUT,
    add_timing_arguments,
)
from caresync_dr.inventory import Inventory
from caresync_dr.operations.recorder import ApiCallRecorder
from caresync_dr.operations.run_setup import REPORT_HELP, add_operation_arguments
from caresync_dr.switchover import databases
from caresync_dr.switchover.context import (
    DEFAULT_CATCH_UP_SECONDS,
    DEFAULT_TERMINATE_MS,
    SITES,
    DatabaseLink,
    Site,
    SwitchoverContext,
    SwitchoverSettings,
)
from caresync_dr.switchover.notifications import switchover_notifications
from caresync_dr.switchover.operation import SwitchoverOperation

ENV_SOURCE_URL = "CARESYNC_SWITCHOVER_SOURCE_DATABASE_URL"
ENV_TARGET_URL = "CARESYNC_SWITCHOVER_TARGET_DATABASE_URL"
DEFAULT_JOURNAL_FILE = Path("reports") / "switchover-journal.json"
# PostgreSQL identifiers as the stack names roles: lower case, at most 63 bytes.
ROLE_NAME = re.compile(r"[a-z_][a-z0-9_$]{0,62}")

NOTES = f"""\
databases (as the RDS master user; default: the caresync/db/master secret and each site's
endpoint parameter, read in that site's region):
  {ENV_SOURCE_URL:<40} default of --source-database-url
  {ENV_TARGET_URL:<40} default of --target-database-url
environment (as failover.py):
  AWS_ENDPOINT_URL                         send every AWS call to this endpoint (drills)
  {ENV_POLL:<40} first interval between state reads (default 5)
  {ENV_POLL_MAX:<40} longest interval between reads
  {ENV_WAIT_TIMEOUT:<40} limit for promotion and scale-up (default: the RTO)
  {ENV_VERIFY_TIMEOUT:<40} limit for the health URL verification (default 600)
  {ENV_HEALTH_URL:<40} health URL to verify instead of the inventory's
  {ENV_LOCK_HEARTBEAT:<40} lock lease renewal (default 10; the failover's lock)
The report (--report) has a "switchover" section: final WAL position, milestones and the
write-unavailability window. Runbook: docs/runbooks/switchover-failback.md.
"""
EXIT_CODES = [
    (ExitCode.OK, 'switched over; also "already switched over", a passing --check, a dry\n'
                  "run that would proceed"),
    (ExitCode.FAILED, "stopped part-way: continue with --resume. Also when the replica did\n"
                      "not replay the final WAL position within --catch-up-timeout: the\n"
                      "fence was then rolled back (the old writer takes writes again) and\n"
                      "nothing was promoted"),
    (ExitCode.USAGE, "bad arguments, settings or inventory; nothing was changed"),
    (ExitCode.REFUSED, "refused by a preflight check (a site not healthy, the replica behind\n"
                       "or not following), at the prompt, or AWS did not answer; nothing was\n"
                       "changed"),
    (ExitCode.LOCKED, "another switchover or failover run holds the lock; nothing was changed"),
    (ExitCode.NOT_READY, "--check: a switchover would not succeed now"),
]


def writer_role(text: str) -> str:
    if not ROLE_NAME.fullmatch(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a role name (lower-case letters, "
                                         "digits, _ and $, at most 63, not starting with a "
                                         "digit)")
    return text


def build_parser() -> CommandParser:
    parser = command_parser(
        "switchover.py", "Planned switchover with no data loss (RPO 0): fence the writer, wait "
        "until the other site's replica has replayed its final WAL position, promote it and "
        "move traffic.", EXIT_CODES, notes=NOTES,
        report_help=REPORT_HELP)
    parser.set_defaults(scope="region", force=False, outage_started=None, adopt_promoted=None)
    parser.add_argument("--to", required=True, choices=SITES,
                        help="the site that becomes the writer: standby (to the dr region) "
                             "or primary (back home, once it replicates from the standby)")
    add_operation_arguments(parser, check_help="readiness table only; exit 0 when a "
                            "switchover would succeed now",
                            journal_default=str(DEFAULT_JOURNAL_FILE))
    parser.add_argument("--source-database-url", type=database_url, metavar="URL",
                        default=os.environ.get(ENV_SOURCE_URL) or None,
                        help="the writer now, as the master user (never echoed)")
    parser.add_argument("--target-database-url", type=database_url, metavar="URL",
                        default=os.environ.get(ENV_TARGET_URL) or None,
                        help="the replica to promote, as the master user (never echoed)")
    parser.add_argument("--writer-role", type=writer_role, action="append", metavar="ROLE",
                        help=f"a role whose logins the fence refuses (repeatable; default "
                             f"{APP_ROLE.name})")
    parser.add_argument("--catch-up-timeout", type=seconds(maximum=3600), metavar="S",
                        default=DEFAULT_CATCH_UP_SECONDS,
                        help="how long the replica may take to replay the final position "
                             "before the fence is rolled back (default "
                             f"{DEFAULT_CATCH_UP_SECONDS:g})")
    parser.add_argument("--terminate-timeout-ms", metavar="MS", default=DEFAULT_TERMINATE_MS,
                        type=integer(minimum=100, maximum=60000),
                        help="how long each client session may take to exit (default "
                             f"{DEFAULT_TERMINATE_MS})")
    parser.add_argument("--inventory", type=Path, metavar="FILE",
                        help="read the inventory JSON from FILE instead of SSM")
    add_timing_arguments(parser)
    return parser


def _fallback_report(args: argparse.Namespace | None, invocation: Invocation,
                     ending: Ending) -> dict[str, Any]:
    """The report of a run that ended before the engine wrote one (bad input, no inventory)."""
    mode = "run" if args is None else ("check" if args.check else
                                       "dry-run" if args.dry_run else "run")
    return {"operation": "switchover", "mode": mode, "stack": getattr(args, "stack", None),
            "to": getattr(args, "to", None),
            "outcome": "usage error" if ending.code == ExitCode.USAGE else
                       "refused" if ending.code == ExitCode.REFUSED else "failed",
            "exitCode": ending.code, "message": ending.message,
            "endedAt": datetime.now(UTC).isoformat()}


def _link(site: Site, url: str | None, inventory: Inventory,
          session: boto3.Session) -> DatabaseLink:
    """The URL given, else the master secret and endpoint parameter in the site's region."""
    if url:
        return databases.given(site, url)
    site_inventory = inventory.primary if site == "primary" else inventory.standby
    clients = RegionClients(AwsClients(site_inventory.region, STANDBY, session))
    return databases.from_secret(site, site_inventory, clients)


def _body(session: boto3.Session | None, stdin: TextIO | None, out: TextIO
          ) -> Callable[[argparse.Namespace, Invocation], int]:
    def body(args: argparse.Namespace, invocation: Invocation) -> int:
        if args.journal_file is None and args.report is None:
            args.journal_file = DEFAULT_JOURNAL_FILE
        options = options_from(args)
        roles = tuple(dict.fromkeys(args.writer_role or [APP_ROLE.name]))
        aws = session or boto3.Session()
        # Every AWS call goes through this session; --check and --dry-run block any change.
        recorder = ApiCallRecorder(block=options.mode != "run").install(aws)
        try:
            inventory, stack_settings = load_inventory(options, args.project_dir, aws)
            source: Site = "primary" if args.to == "standby" else "standby"
            settings = SwitchoverSettings(
                to=args.to,
                source_db=_link(source, args.source_database_url, inventory, aws),
                target_db=_link(args.to, args.target_database_url, inventory, aws),
                writer_roles=roles, catch_up_seconds=args.catch_up_timeout,
                terminate_ms=args.terminate_timeout_ms)
            if options.mode != "run":   # no statement of a check or dry run can write
                settings = replace(settings, source_db=databases.read_only(settings.source_db),
                                   target_db=databases.read_only(settings.target_db))
            ctx = SwitchoverContext(inventory, options, settings, session=aws)
            hooks = None
            if options.mode == "run":
                invocation.claim_report()      # the engine writes a run's report on every exit
                hooks = switchover_notifications(ctx, stack_settings)
            return SwitchoverOperation(ctx, out, stdin or sys.stdin, report_target=invocation,
                                       recorder=recorder, hooks=hooks).execute()
        finally:
            recorder.uninstall()

    return body


def run(argv: list[str] | None = None, session: boto3.Session | None = None,
        stdin: TextIO | None = None, out: TextIO | None = None) -> int:
    """Parse, load, run; every known failure becomes one clear line and its exit code, and
    every exit leaves the report it can (``--report``)."""
    return run_command(build_parser(), _body(session, stdin, out or sys.stdout), argv,
                       command="switchover", fallback=_fallback_report)


def main(argv: list[str] | None = None) -> int:
    return run_main(build_parser(), _body(None, None, sys.stdout), argv, command="switchover",
                    fallback=_fallback_report)

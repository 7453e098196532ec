"""``breach.py`` and ``rotate_db_credentials.py``: parse, resolve every input, run the operation.

Their commands (:mod:`caresync_dr.commands.breach`,
:mod:`caresync_dr.commands.rotate_db_credentials`) are thin fronts over :func:`breach_main` and
:func:`rotation_main`; tests and the drill call :func:`run_breach` / :func:`run_rotation`. The
order of every run: check the flags (exit 2 on bad input), find the account and which regions
answer, derive both sites' names from the stack files, resolve every input (an unknown
principal, instance or role is exit 2, nothing changed), then the engine: ``--check``,
``--dry-run`` (no change, proven), or a real run with its confirmation, lock, journal and
report.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TextIO

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from caresync_dr.arguments import integer
from caresync_dr.breach.context import BreachContext, BreachOptions
from caresync_dr.breach.inputs import incident_from
from caresync_dr.breach.notifications import breach_notifications
from caresync_dr.breach.operation import BreachOperation, RotationOperation
from caresync_dr.breach.resolve import resolve
from caresync_dr.breach.sites import STACKS, layout_from
from caresync_dr.cli import (
    CommandParser,
    ExitCode,
    Invocation,
    RefusedError,
    UsageError,
    command_parser,
    run_command,
    run_main,
)
from caresync_dr.cli.aws_problems import aws_problem
from caresync_dr.operations import ApiCallRecorder, EngineOptions
from caresync_dr.operations.run_setup import Mode, add_operation_arguments
from caresync_dr.settings import SettingsError, StackFileError, settings_from_stack_file

log = logging.getLogger(__name__)
SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")

BREACH_EXIT_CODES = [
    (ExitCode.OK, "contained and verified; also a passing --check, a dry run that would\n"
                  "proceed, and a rerun of an incident already contained"),
    (ExitCode.FAILED, "stopped part-way (a step failed, e.g. IAM's control plane in us-east-1\n"
                      "did not answer): what was done is in the report; continue with\n"
                      "--resume and the same inputs"),
    (ExitCode.USAGE, "bad input: a malformed flag, an unknown access key, user, role,\n"
                     "instance or database role; nothing was changed"),
    (ExitCode.REFUSED, "refused before any change (no region answers, the confirmation was\n"
                       "not given, an unfinished run needs --resume); nothing was changed"),
    (ExitCode.LOCKED, "another breach run holds the lock; nothing was changed"),
    (ExitCode.NOT_READY, "--check: a breach response could not act on everything named now"),
]
NOTES = """\
The seed's immediate actions, in its order: isolate (evidence snapshots first), revoke (IAM keys,
users' and roles' sessions, both database passwords with the old ones verified refused, the
sessions they opened), more logging (trails with data events on every PHI bucket, pgAudit all
for the named database roles), investigate (scope from CloudTrail and the database audit log,
written as evidence), notify (the security topics; the HIPAA clock in the report). Works with
either region alone (IAM changes need us-east-1: without it they wait for --resume).
Runbook: docs/runbooks/data-breach.md.

environment:
  AWS_ENDPOINT_URL   send every AWS call to this endpoint (emulator drills)
"""


def _common(parser: CommandParser) -> None:
    add_operation_arguments(
        parser, stack=None, journal_default=None,
        check_help="read-only: can every named thing be acted on now (exit 0 or 5)",
        yes_help="do not ask for confirmation (unattended runs)",
        project_dir_help="where Pulumi.prod.yaml and Pulumi.dr.yaml live")
    parser.add_argument("--db-sslmode", choices=SSL_MODES, default="require",
                        help="libpq sslmode for the database (default require: RDS enforces "
                        "TLS; verify-full with PGSSLROOTCERT = the RDS CA bundle)")
    parser.add_argument("--no-app-refresh", action="store_true",
                        help="do not replace the app instances after the rotation (they keep "
                        "the old password until they are replaced)")


def build_breach_parser() -> CommandParser:
    parser = command_parser("breach.py", "Contain, revoke, log, investigate and notify: the "
                            "data-breach response (the seed's scenario 3).", BREACH_EXIT_CODES,
                            notes=NOTES, report_help="write the run as JSON to PATH and a "
                            "Markdown timeline beside it")
    parser.add_argument("--incident", metavar="ID",
                        help="incident id (default breach-<discovery time>); tags, evidence "
                        "and the rotation versions carry it")
    parser.add_argument("--discovered", metavar="TIME",
                        help="when the breach was discovered (ISO 8601 with a zone; default "
                        "now): starts the HIPAA clock")
    parser.add_argument("--window-start", metavar="TIME",
                        help="investigate from (default: 7 days before discovery)")
    parser.add_argument("--window-end", metavar="TIME", help="investigate until (default now)")
    for flag, what in (("--access-key", "a leaked IAM access key id"),
                       ("--iam-user", "a compromised IAM user"),
                       ("--iam-role", "a compromised IAM role (its sessions are revoked)"),
                       ("--instance", "a compromised EC2 instance (isolated, with evidence)"),
                       ("--db-role", "a compromised database role (its sessions ended, audited "
                                     "in full; without a secret it loses LOGIN)"),
                       ("--phi-bucket", "a bucket with PHI besides the backup buckets")):
        parser.add_argument(flag, action="append", default=[], metavar="NAME",
                            help=f"{what}; repeat for more")
    parser.add_argument("--affected", type=integer(minimum=0), metavar="N",
                        help="individuals whose PHI may be involved (the HIPAA clock: HHS at "
                        "500 or more)")
    parser.add_argument("--largest-state", type=integer(minimum=0), metavar="N",
                        help="most affected residents of one State (the media at more than 500)")
    _common(parser)
    return parser


ROTATION_EXIT_CODES = [
    (ExitCode.OK, "rotated and verified (or already rotated today); a passing --check or dry run"),
    (ExitCode.FAILED, "stopped part-way (e.g. the app's other login still has sessions: the\n"
                      "last instance refresh did not finish): continue with --resume (the\n"
                      "pending passwords are kept)"),
    (ExitCode.USAGE, "bad flags or stack files; nothing was changed"),
    (ExitCode.REFUSED, "refused before any change; nothing was changed"),
    (ExitCode.LOCKED, "another rotation holds the lock; nothing was changed"),
    (ExitCode.NOT_READY, "--check: a rotation would not succeed now"),
]


def build_rotation_parser() -> CommandParser:
    parser = command_parser(
        "rotate_db_credentials.py", "Rotate the database passwords (master user, the app and "
        "every login with a secret) and their secrets, and replace the app instances so they "
        "boot with the new secret. The app's secret alternates between its two logins "
        "(caresync_app, caresync_app_clone): the previous one keeps working until the next "
        "rotation, so no app connection fails; every other old password is verified refused.",
        ROTATION_EXIT_CODES,
        notes="Scheduled by deploy/systemd/caresync-rotate-credentials.timer. Unlike breach.py "
        "it refuses neither app login: see docs/runbooks/data-breach.md, \"Scheduled "
        "rotation\".\n")
    parser.add_argument("--rotation-id", metavar="ID",
                        help="default rotation-<UTC date>: a second run the same day is a "
                        "no-op")
    _common(parser)
    return parser


def _account(session: boto3.Session, project_dir: Path) -> str:
    """The account, from whichever site's region answers STS first."""
    errors = []
    for stack in STACKS.values():
        try:
            region = settings_from_stack_file(stack, project_dir).region
        except (SettingsError, StackFileError) as exc:
            raise UsageError(str(exc)) from exc
        try:
            client = session.client("sts", region_name=region)
            return str(client.get_caller_identity()["Account"])
        except (ClientError, BotoCoreError) as exc:
            problem = aws_problem(exc)
            if problem is not None and problem.kind == "credentials":
                raise      # the command base names the operator role and how to assume it
            errors.append(f"{region}: {exc}")
    raise RefusedError(f"no region of either site answers ({'; '.join(errors)}); nothing was "
                       "changed")


def _body(kind: str, session: boto3.Session | None, stdin: TextIO | None, out: TextIO
          ) -> Callable[[argparse.Namespace, Invocation], int]:
    def body(args: argparse.Namespace, invocation: Invocation) -> int:
        if kind == "breach":
            incident = incident_from(
                incident_id=args.incident, discovered=args.discovered,
                window_start=args.window_start, window_end=args.window_end,
                access_keys=args.access_key, iam_users=args.iam_user, iam_roles=args.iam_role,
                instances=args.instance, db_roles=args.db_role, affected=args.affected,
                largest_state=args.largest_state, phi_buckets=args.phi_bucket)
        else:
            incident = incident_from(
                incident_id=args.rotation_id, discovered=None, window_start=None,
                window_end=None, access_keys=(), iam_users=(), iam_roles=(), instances=(),
                db_roles=(), affected=None, largest_state=None, require_compromised=False,
                id_flag="--rotation-id")
            if args.rotation_id is None:
                incident = replace(incident, incident_id=f"rotation-"
                                   f"{incident.discovered_at:%Y%m%d}")
        invocation.data["incident"] = incident.incident_id
        mode: Mode = "check" if args.check else "dry-run" if args.dry_run else "run"
        aws = session or boto3.Session()
        recorder = ApiCallRecorder(block=mode != "run").install(aws)
        try:
            layout = layout_from(args.project_dir, _account(aws, args.project_dir))
            journal_file = args.journal_file or (
                args.report.with_suffix(".journal.json") if args.report else None)
            ctx = BreachContext(incident, layout, BreachOptions(
                args.project_dir, db_sslmode=args.db_sslmode,
                refresh_app=not args.no_app_refresh, journal_file=journal_file), session=aws)
            ctx.read_only = mode != "run"
            resolve(ctx)
            options = EngineOptions(mode=mode, stack=incident.incident_id, yes=args.yes,
                                    resume=args.resume, report=args.report)
            hooks = None
            if mode == "run":
                invocation.claim_report()
                if kind == "breach":
                    hooks = breach_notifications(ctx)    # D7: every tier at once
            operation = (BreachOperation if kind == "breach" else RotationOperation)(
                ctx, options, out, stdin or sys.stdin, report_target=invocation,
                recorder=recorder, hooks=hooks)
            return operation.execute()
        finally:
            recorder.uninstall()

    return body


def run_breach(argv: list[str] | None = None, session: boto3.Session | None = None,
               stdin: TextIO | None = None, out: TextIO | None = None) -> int:
    return run_command(build_breach_parser(), _body("breach", session, stdin, out or sys.stdout),
                       argv, command="breach")


def run_rotation(argv: list[str] | None = None, session: boto3.Session | None = None,
                 stdin: TextIO | None = None, out: TextIO | None = None) -> int:
    return run_command(build_rotation_parser(),
                       _body("rotation", session, stdin, out or sys.stdout), argv,
                       command="rotate_db_credentials")


def breach_main(argv: list[str] | None = None) -> int:
    return run_main(build_breach_parser(), _body("breach", None, None, sys.stdout), argv,
                    command="breach")


def rotation_main(argv: list[str] | None = None) -> int:
    return run_main(build_rotation_parser(), _body("rotation", None, None, sys.stdout), argv,
                    command="rotate_db_credentials")

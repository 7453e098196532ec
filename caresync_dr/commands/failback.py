"""Re-protect after a failover: the site that lost the writer gets a new database generation
replicating from the promoted writer, backups replicate and copy towards it, the traffic
switch and health checks are verified for the new direction, the replaced generation is
retired (caresync-failback). The planned switchover then returns home."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from caresync_dr import arguments
from caresync_dr.aws import STANDBY, AwsClients
from caresync_dr.cli import (
    CommandParser,
    ExitCode,
    Invocation,
    RefusedError,
    UsageError,
    command_parser,
    run_main,
)
from caresync_dr.failback.context import (
    FAILBACK_JOURNAL_PARAMETER,
    FailbackContext,
    FailbackOptions,
)
from caresync_dr.failback.deploy import Deployer, PulumiCli
from caresync_dr.failback.notifications import failback_notifications
from caresync_dr.failback.operation import FailbackOperation
from caresync_dr.failover import probes
from caresync_dr.inventory import Inventory, InventoryError, parse_inventory
from caresync_dr.operations.recorder import ApiCallRecorder
from caresync_dr.operations.run_setup import (
    REPORT_HELP,
    Mode,
    add_operation_arguments,
    add_polling_arguments,
)
from caresync_dr.settings import (
    Settings,
    SettingsError,
    StackFileError,
    settings_from_stack_file,
)

NOTES = f"""\
what it does, in order (each step is skipped when reality already shows it done):
  1. writes activeSite (both stack files) and, for the site to re-protect, dbGeneration N+1
     and dbRetiring {{generation: N, role: writer}} into Pulumi.<stack>.yaml
  2. pulumi up of the writer's stack (--refresh): its backup bucket replicates, and its
     AWS Backup plan copies, into the other site
  3. pulumi up of the other stack (--refresh): the new generation, a cross-region read replica
     of the writer; the refresh also undoes failover.py's fencing there
  4. waits until the new generation is available, replicating, ReplicaLag within the RPO
  5. verifies the traffic switch, the four Route 53 health checks, the re-protected site's
     database ingress and app capacity
  6. retires generation N (removes dbRetiring, pulumi up; a writer leaves its final snapshot)
     unless --keep-old-generation
  7. pulumi up of dr again when the failover inventory (written by dr) does not yet name both
     sites' current generations: failover.py and the switchover read it
Then return home, when you choose, with the planned switchover, and run this command again to
re-protect the other site. Runbook: docs/runbooks/switchover-failback.md.

Which site writes is read from the traffic switch (FAILOVER: standby); that site's database
must be a standalone, available writer. Lock: the failover's ({'{'}lockParameter{'}'} of the
inventory); journal: {FAILBACK_JOURNAL_PARAMETER}; both in the standby region.
environment:
  AWS_ENDPOINT_URL    send every AWS call to this endpoint (emulator drills)
"""
EXIT_CODES = [
    (ExitCode.OK, "re-protected (also: already protected, a passing --check, a dry run that\n"
                  "would proceed)"),
    (ExitCode.FAILED, "stopped part-way (pulumi up failed, the new generation did not catch\n"
                      "up in time, not armed): continue with --resume"),
    (ExitCode.USAGE, "bad arguments, stack files or inventory; nothing was changed"),
    (ExitCode.REFUSED, "refused by the preflight (no standalone writer where the switch points,\n"
                       "the other region or the Pulumi CLI unavailable), at the prompt, or AWS\n"
                       "did not answer; nothing was changed"),
    (ExitCode.LOCKED, "a failover, switchover or failback run holds the lock; nothing was\n"
                      "changed"),
    (ExitCode.NOT_READY, "--check: the re-protection could not run now"),
]


def build_parser() -> CommandParser:
    parser = command_parser("failback.py", __doc__ or "", EXIT_CODES, notes=NOTES,
                            report_help=REPORT_HELP)
    add_operation_arguments(
        parser, check_help="readiness table only; exit 0 when the re-protection could run now",
        project_dir_help="where the Pulumi project and its stack files live (default: the "
                         "repository)")
    parser.add_argument("--keep-old-generation", action="store_true",
                        help="do not retire the replaced generation (retire it later)")
    parser.add_argument("--wait-timeout", type=arguments.seconds(maximum=48 * 3600),
                        default=6 * 3600.0, metavar="S",
                        help="how long the new generation may take to catch up (default "
                             "21600: RDS copies a large database for hours)")
    add_polling_arguments(parser, first=30.0, longest=False, heartbeat=False)
    return parser


def _inventory(session: boto3.Session, stack: str,
               project_dir: Path) -> tuple[Inventory, Settings]:
    try:
        settings = settings_from_stack_file(stack, project_dir)
    except (StackFileError, SettingsError) as exc:
        raise UsageError(str(exc)) from exc
    ssm = AwsClients(settings.standby_region, STANDBY, session).ssm()
    try:
        text = probes.read_parameter(ssm, settings.inventory_parameter)
    except (ClientError, BotoCoreError) as exc:
        raise RefusedError(f"cannot read the inventory {settings.inventory_parameter} in "
                           f"{settings.standby_region}: {exc}. Nothing was changed") from exc
    if text is None:
        raise UsageError(f"inventory parameter {settings.inventory_parameter} not found in "
                         f"{settings.standby_region}: is the dr stack deployed?")
    try:
        return parse_inventory(text), settings
    except InventoryError as exc:
        raise UsageError(f"ssm:{settings.standby_region}:{settings.inventory_parameter}: "
                         f"{exc}") from exc


def _options(args: argparse.Namespace) -> FailbackOptions:
    mode: Mode = "check" if args.check else "dry-run" if args.dry_run else "run"
    journal = args.journal_file or (args.report.with_suffix(".journal.json")
                                    if args.report else None)
    return FailbackOptions(mode=mode, stack=args.stack, project_dir=args.project_dir,
                           yes=args.yes, resume=args.resume, report=args.report,
                           journal_file=journal, keep_old_generation=args.keep_old_generation,
                           wait_timeout=args.wait_timeout, poll_seconds=args.poll_seconds)


def _body(session: boto3.Session | None, deployer: Deployer | None, stdin: TextIO | None,
          out: TextIO) -> Callable[[argparse.Namespace, Invocation], int]:
    def body(args: argparse.Namespace, invocation: Invocation) -> int:
        options = _options(args)
        if not (options.project_dir / "Pulumi.yaml").is_file():
            raise UsageError(f"--project-dir {options.project_dir} holds no Pulumi.yaml")
        aws = session or boto3.Session()
        # Every AWS call goes through this session and is recorded; --check and --dry-run
        # refuse any change before it is sent (the engine's proof).
        recorder = ApiCallRecorder(block=options.mode != "run").install(aws)
        try:
            inventory, settings = _inventory(aws, options.stack, options.project_dir)
            ctx = FailbackContext(inventory, options,
                                  deployer or PulumiCli(options.project_dir), aws,
                                  rpo_minutes=settings.rpo_minutes,
                                  inventory_parameter=settings.inventory_parameter)
            direction = ctx.direction      # reads only; refuses when nobody writes
            invocation.data["direction"] = {"activeSite": direction.active,
                                            "protectedSite": direction.protected}
            hooks = None
            if options.mode == "run":
                invocation.claim_report()  # the engine writes a run's report on every exit
                hooks = failback_notifications(ctx, settings)
            return FailbackOperation(ctx, out, stdin or sys.stdin, report_target=invocation,
                                     recorder=recorder, hooks=hooks).execute()
        finally:
            recorder.uninstall()

    return body


def main(argv: list[str] | None = None, *, session: boto3.Session | None = None,
         deployer: Deployer | None = None, stdin: TextIO | None = None,
         out: TextIO | None = None) -> int:
    """``deployer``: how ``pulumi up`` is run (default: the Pulumi CLI); drills pass theirs."""
    return run_main(build_parser(), _body(session, deployer, stdin, out or sys.stdout), argv,
                    command="failback")

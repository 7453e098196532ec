"""The failover command: parse arguments, load settings and inventory, pick the mode, run.

``scripts/failover.py`` is a thin front over :func:`main`; tests and drills call :func:`run`.
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from caresync_dr.cli import ExitCode, setup_logging, write_json_report
from caresync_dr.failover import readiness
from caresync_dr.failover.context import FailoverContext
from caresync_dr.failover.errors import (
    FailoverError,
    NotReadyError,
    RefusedError,
    UsageError,
)
from caresync_dr.failover.inputs import load_inventory, options_from, writable_file
from caresync_dr.failover.options import (
    ENV_HEALTH_URL,
    ENV_LOCK_HEARTBEAT,
    ENV_POLL,
    ENV_POLL_MAX,
    ENV_VERIFY_TIMEOUT,
    ENV_WAIT_TIMEOUT,
)
from caresync_dr.failover.realrun import RealRun
from caresync_dr.failover.signals import signals_interrupt
from caresync_dr.failover.views import plan_rows, render_plan

log = logging.getLogger(__name__)
PROJECT_DIR = Path(__file__).resolve().parents[2]

EPILOG = f"""\
exit codes:
  0  success; also "already failed over", a passing --check, a dry run that would proceed
  1  failed or stopped part-way: state is consistent, continue with --resume
  2  usage or configuration error (a bad flag, unknown stack, malformed settings or
     inventory); nothing was changed
  3  refused by a preflight check (replication, lag, a missing resource), at the
     confirmation prompt, or stopped before any change; nothing was changed
  4  another live run holds the lock (holder, start, heartbeat age shown); nothing was
     changed. A dead run's lock is stale 3 heartbeats after its last one: then it is
     taken over (by a plain run, or by --resume of that run's unfinished journal)
  5  --check: a failover would not succeed now
Every exit writes the report (--report) it can.

environment:
  AWS_ENDPOINT_URL                    send every AWS call to this endpoint (emulator drills)
  {ENV_POLL:<35} first interval between state reads while waiting (default 5)
  {ENV_POLL_MAX:<35} longest interval between reads (default 4 x the first)
  {ENV_WAIT_TIMEOUT:<35} limit for promotion and scale-up waits (default: the RTO)
  {ENV_VERIFY_TIMEOUT:<35} limit for the health URL verification (default 600)
  {ENV_HEALTH_URL:<35} health URL to verify instead of the inventory's publicHealthUrl
  {ENV_LOCK_HEARTBEAT:<35} lock lease renewal interval (default 10); a lock is
  {"":<35} stale after 3 missed renewals
"""


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="failover.py", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Promote the DR site (--scope region) or the primary's in-region replica "
                    "(--scope database), using nothing from the failed region.",
        epilog=EPILOG)
    parser.add_argument("--stack", default="dr", help="stack whose Pulumi.<stack>.yaml names "
                        "the standby region and inventory parameter (default: dr)")
    parser.add_argument("--scope", choices=("region", "database"), default="region",
                        help="region: fail over to the standby region (default); database: "
                        "promote the primary's in-region read replica")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true",
                      help="readiness table only; exit 0 when a failover would succeed now")
    mode.add_argument("--dry-run", action="store_true",
                      help="show every step, the state it sees and what it would change")
    parser.add_argument("--yes", action="store_true",
                        help="do not ask the operator to type the stack name")
    parser.add_argument("--resume", action="store_true",
                        help="continue a run that stopped part-way (from its journal)")
    parser.add_argument("--force", action="store_true",
                        help="go on although the replica lags beyond the RPO (data loss!)")
    parser.add_argument("--outage-started", metavar="TIME",
                        help="when the primary stopped taking writes (ISO 8601 with a time "
                        "zone, e.g. 2026-11-30T02:11Z, from the first alert): replication and "
                        "the data-loss exposure are judged as of then, so a replica that "
                        "stopped replicating because of the outage is not refused")
    parser.add_argument("--inventory", type=Path, metavar="FILE",
                        help="read the inventory JSON from FILE instead of SSM")
    parser.add_argument("--report", type=Path, metavar="PATH",
                        help="write the run as JSON to PATH and a Markdown timeline beside it")
    parser.add_argument("--journal-file", type=Path, metavar="PATH",
                        help="local journal copy (default: beside --report, else "
                             "./reports/failover-journal.json)")
    parser.add_argument("--health-url", metavar="URL",
                        help=f"override the public health URL ({ENV_HEALTH_URL})")
    parser.add_argument("--poll-seconds", type=float, metavar="S", help=f"see {ENV_POLL}")
    parser.add_argument("--poll-max-seconds", type=float, metavar="S", help=f"see {ENV_POLL_MAX}")
    parser.add_argument("--wait-timeout", type=float, metavar="S", help=f"see {ENV_WAIT_TIMEOUT}")
    parser.add_argument("--verify-timeout", type=float, metavar="S",
                        help=f"see {ENV_VERIFY_TIMEOUT}")
    parser.add_argument("--lock-heartbeat-seconds", type=float, metavar="S",
                        help=f"see {ENV_LOCK_HEARTBEAT}")
    parser.add_argument("--project-dir", type=Path, default=PROJECT_DIR, metavar="DIR",
                        help="where Pulumi.<stack>.yaml lives (default: the repository)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return parser.parse_args(argv)


class Command:
    """The read-only modes (``--check``, ``--dry-run``); the real run is :class:`RealRun`."""

    def __init__(self, ctx: FailoverContext, out: TextIO, stdin: TextIO) -> None:
        self.ctx = ctx
        self.out = out
        self.stdin = stdin

    def print(self, text: str = "") -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def check(self) -> ExitCode:
        checks = readiness.run_checks(self.ctx, daily=True)
        self.print(readiness.render_table(checks))
        failed = [c for c in checks if not c.ok]
        if self.ctx.options.report is not None:
            write_json_report(self.ctx.options.report, {
                "mode": "check", "stack": self.ctx.options.stack, "scope": self.ctx.options.scope,
                "ready": not failed, "exitCode": int(ExitCode.NOT_READY if failed else
                                                     ExitCode.OK),
                "checks": [asdict(c) for c in checks]})
        if failed:
            raise NotReadyError("not ready: " + "; ".join(f"{c.name}: {c.detail}"
                                                          for c in failed))
        self.print("ready: a failover would succeed now")
        return ExitCode.OK

    def dry_run(self) -> ExitCode:
        checks = readiness.run_checks(self.ctx, daily=False)
        self.print(readiness.render_table(checks))
        rows = plan_rows(self.ctx, live=True)
        self.print(render_plan(self.ctx, rows))
        refused = readiness.refusals(checks)
        if self.ctx.options.report is not None:
            write_json_report(self.ctx.options.report, {
                "mode": "dry-run", "stack": self.ctx.options.stack,
                "scope": self.ctx.options.scope, "wouldProceed": not refused,
                "exitCode": int(ExitCode.REFUSED if refused else ExitCode.OK),
                "checks": [asdict(c) for c in checks], "plan": rows})
        if refused:
            raise RefusedError("a real run would refuse: " + "; ".join(
                f"{c.name}: {c.detail}" for c in refused))
        self.print("dry run: nothing was changed; a real run would proceed")
        return ExitCode.OK


def _fallback_report(path: Path | None, args: argparse.Namespace, code: int,
                     message: str) -> None:
    """Every exit writes the report it can: when a mode did not write its own (it failed
    before it could), a short one says how the run ended. Never raises."""
    if path is None:
        return
    try:
        write_json_report(path, {
            "mode": "check" if args.check else "dry-run" if args.dry_run else "run",
            "stack": args.stack, "scope": args.scope, "outcome": "usage error"
            if code == ExitCode.USAGE else "refused" if code == ExitCode.REFUSED else "failed",
            "exitCode": code, "message": message, "endedAt": datetime.now(UTC).isoformat()})
    except OSError as exc:
        log.error("could not write the report %s: %s", path, exc)


def _report_path(args: argparse.Namespace) -> Path | None:
    if args.report is None:
        return None
    try:
        return writable_file("--report", args.report)
    except UsageError:
        return None


def run(argv: list[str] | None = None, session: boto3.Session | None = None,
        stdin: TextIO | None = None, out: TextIO | None = None) -> int:
    """Parse, load, run; every known failure becomes one clear line and its exit code, and
    every exit leaves the report it can (``--report``)."""
    args = parse_arguments(argv)
    out = out or sys.stdout
    reported = False     # the mode wrote its own report
    code: int = int(ExitCode.FAILED)
    message = "the run ended unexpectedly"
    try:
        options = options_from(args)
        inventory, webhook = load_inventory(options, args.project_dir, session)
        ctx = FailoverContext(inventory, options, session=session, webhook_url=webhook)
        if options.mode == "run":
            reported = True      # RealRun writes its report on every exit
            code = RealRun(ctx, out, stdin or sys.stdin).execute()
            return code
        command = Command(ctx, out, stdin or sys.stdin)
        reported = options.report is not None
        code = command.check() if options.mode == "check" else command.dry_run()
        return code
    except FailoverError as exc:
        code, message = int(exc.exit_code), str(exc)
        log.error("%s", exc)
        log.debug("details", exc_info=True)
        return code
    except (ClientError, BotoCoreError) as exc:
        reported = False
        code, message = int(ExitCode.FAILED), f"AWS call failed: {exc}; nothing was changed"
        log.error("%s", message)
        log.debug("details", exc_info=True)
        return code
    except KeyboardInterrupt:
        code, message = int(ExitCode.REFUSED), "interrupted; nothing was changed"
        log.error("%s", message)
        return code
    finally:
        if not reported:
            _fallback_report(_report_path(args), args, code, message)


def main(argv: list[str] | None = None) -> int:
    args_for_logging = argv if argv is not None else sys.argv[1:]
    setup_logging(verbose="-v" in args_for_logging or "--verbose" in args_for_logging)
    with signals_interrupt():
        return run(argv)

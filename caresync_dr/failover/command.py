"""The failover command: parse arguments, load settings and inventory, pick the mode, run.

``scripts/failover.py`` is a thin front over :func:`main`; tests and drills call :func:`run`.
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from caresync_dr.aws import STANDBY, AwsClients
from caresync_dr.cli import ExitCode, setup_logging, write_json_report
from caresync_dr.failover import probes, readiness, report
from caresync_dr.failover.context import FailoverContext
from caresync_dr.failover.errors import (
    FailoverError,
    LockedError,
    NotReadyError,
    RefusedError,
    StepFailedError,
    UsageError,
)
from caresync_dr.failover.journal import Journal
from caresync_dr.failover.lock import FailoverLock, LockHolder
from caresync_dr.failover.options import (
    ENV_HEALTH_URL,
    ENV_LOCK_HEARTBEAT,
    ENV_POLL,
    ENV_POLL_MAX,
    ENV_VERIFY_TIMEOUT,
    ENV_WAIT_TIMEOUT,
    RunOptions,
    timing_from,
)
from caresync_dr.failover.plan import all_steps, build_plan
from caresync_dr.failover.runner import Runner
from caresync_dr.inventory import Inventory, InventoryError, parse_inventory
from caresync_dr.settings import SettingsError, StackFileError, settings_from_stack_file

log = logging.getLogger(__name__)
PROJECT_DIR = Path(__file__).resolve().parents[2]
UNFINISHED = ("running", "failed", "interrupted")   # journal states --resume continues

EPILOG = f"""\
exit codes:
  0  success; also "already failed over", a passing --check, a dry run that would proceed
  1  failed part-way: state is consistent, continue with --resume
  2  usage or configuration error (unknown stack, malformed settings or inventory)
  3  refused by a preflight check or at the confirmation prompt; nothing was changed
  4  another run holds the lock (holder and start time are shown); nothing was changed
  5  --check: a failover would not succeed now

environment:
  AWS_ENDPOINT_URL                    send every AWS call to this endpoint (emulator drills)
  {ENV_POLL:<35} first interval between state reads while waiting (default 5)
  {ENV_POLL_MAX:<35} longest interval between reads (default 4 x the first)
  {ENV_WAIT_TIMEOUT:<35} limit for promotion and scale-up waits (default: the RTO)
  {ENV_VERIFY_TIMEOUT:<35} limit for the health URL verification (default 600)
  {ENV_HEALTH_URL:<35} health URL to verify instead of the inventory's publicHealthUrl
  {ENV_LOCK_HEARTBEAT:<35} lock lease renewal interval (default 10); --resume
  {"":<35} takes over a lock only after 3 missed renewals
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


def options_from(args: argparse.Namespace, environ: dict[str, str] | None = None) -> RunOptions:
    import os

    env = dict(os.environ) if environ is None else environ
    if args.report is not None:
        journal_file = args.report.with_suffix(".journal.json")
    else:
        journal_file = Path("reports") / "failover-journal.json"
    return RunOptions(
        stack=args.stack, scope=args.scope,
        mode="check" if args.check else "dry-run" if args.dry_run else "run",
        yes=args.yes, resume=args.resume, force=args.force, inventory_file=args.inventory,
        report=args.report, journal_file=args.journal_file or journal_file,
        health_url=args.health_url or env.get(ENV_HEALTH_URL) or None,
        timing=timing_from(args.poll_seconds, args.poll_max_seconds, args.wait_timeout,
                           args.verify_timeout, env, heartbeat=args.lock_heartbeat_seconds))


def load_inventory(options: RunOptions, project_dir: Path,
                   session: boto3.Session | None) -> tuple[Inventory, str | None]:
    """(inventory, the settings' webhook URL). Every problem is a UsageError naming it."""
    try:
        settings = settings_from_stack_file(options.stack, project_dir)
    except (StackFileError, SettingsError) as exc:
        raise UsageError(str(exc)) from exc
    if options.inventory_file is not None:
        try:
            text = options.inventory_file.read_text()
        except OSError as exc:
            raise UsageError(f"cannot read --inventory {options.inventory_file}: "
                             f"{exc.strerror}") from exc
        where = str(options.inventory_file)
    else:
        ssm = AwsClients(settings.standby_region, STANDBY, session).ssm()
        try:
            found = probes.read_parameter(ssm, settings.inventory_parameter)
        except (ClientError, BotoCoreError) as exc:
            raise UsageError(f"cannot read the inventory {settings.inventory_parameter} in "
                             f"{settings.standby_region}: {exc}") from exc
        if found is None:
            raise UsageError(f"inventory parameter {settings.inventory_parameter} not found in "
                             f"{settings.standby_region}: is the dr stack deployed? (or pass "
                             "--inventory FILE)")
        text = found
        where = f"ssm:{settings.standby_region}:{settings.inventory_parameter}"
    try:
        inventory = parse_inventory(text)
    except InventoryError as exc:
        raise UsageError(f"{where}: {exc}") from exc
    if inventory.standby.region != settings.standby_region:
        raise UsageError(f"{where} describes standby region {inventory.standby.region}, but "
                         f"Pulumi.{options.stack}.yaml says {settings.standby_region}")
    log.info("inventory from %s: %s -> %s", where, inventory.primary.region,
             inventory.standby.region)
    return inventory, settings.webhook_url


def confirm(ctx: FailoverContext, stdin: TextIO, prompt_out: TextIO) -> None:
    stack = ctx.options.stack
    prompt_out.write(f"\nThis promotes {ctx.target_database} in {ctx.target.region} and "
                     f"moves traffic. Type the stack name ({stack}) to go on: ")
    prompt_out.flush()
    answer = stdin.readline()
    if not answer:
        raise RefusedError("no confirmation: stdin is closed or not a terminal; run from a "
                           "terminal, or pass --yes to run unattended. Nothing was changed")
    if answer.strip() != stack:
        raise RefusedError(f"confirmation {answer.strip()!r} does not match the stack name "
                           f"{stack!r}; nothing was changed")


def plan_rows(ctx: FailoverContext, live: bool) -> list[dict[str, Any]]:
    """The steps in order. ``live``: also each step's check of the state it sees now (dry run);
    a real run skips that, so an unreachable region does not delay it before it starts."""
    rows: list[dict[str, Any]] = []
    for stage in build_plan(ctx.options.scope):
        for step in stage.steps:
            row: dict[str, Any] = {
                "step": step.name, "title": step.title, "bestEffort": step.best_effort,
                "concurrent": len(stage.steps) > 1, "background": stage.background,
                "expectedSeconds": step.expected_seconds}
            if live:
                try:
                    verdict = step.check(ctx)
                    row["sees"], row["sentence"] = verdict.kind, verdict.sentence
                except (ClientError, BotoCoreError) as exc:
                    row["sees"], row["sentence"] = "unknown", f"cannot read state: {exc}"
            rows.append(row)
    return rows


def render_plan(ctx: FailoverContext, rows: list[dict[str, Any]]) -> str:
    lines = [f"Plan ({ctx.options.scope} failover, stack {ctx.options.stack}):"]
    for number, row in enumerate(rows, 1):
        flags = ("best effort" if row["bestEffort"] else "required")
        flags += " | concurrently" if row["concurrent"] else ""
        flags += " | background, never waited on" if row["background"] else ""
        lines.append(f"  {number}. {row['title']} [{flags}; ~{row['expectedSeconds']:.0f} s]")
        if "sees" in row:
            lines.append(f"       {row['sees']}: {row['sentence']}")
    return "\n".join(lines)


def already_failed_over(ctx: FailoverContext) -> str | None:
    """A sentence when the steps that define "failed over" (promotion; the traffic switch or
    the app's endpoint) all find their target state. Scale-up and refresh may fluctuate later
    and do not count."""
    sentences = []
    # Last step first: it is the one most likely not done yet, which ends the search early.
    for step in reversed(all_steps(build_plan(ctx.options.scope))):
        if not step.marks_failover:
            continue
        try:
            verdict = step.check(ctx)
        except (ClientError, BotoCoreError):
            return None
        if verdict.kind != "done":
            return None
        sentences.append(verdict.sentence)
    return "; ".join(reversed(sentences))


class Command:
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
                "ready": not failed, "checks": [asdict(c) for c in checks]})
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
                "checks": [asdict(c) for c in checks], "plan": rows})
        if refused:
            raise RefusedError("a real run would refuse: " + "; ".join(
                f"{c.name}: {c.detail}" for c in refused))
        self.print("dry run: nothing was changed; a real run would proceed")
        return ExitCode.OK

    def real_run(self) -> ExitCode:
        ctx = self.ctx
        inv = ctx.inventory
        journal = Journal(ctx.standby.ssm(), inv.journal_parameter, ctx.options.journal_file)
        lock = FailoverLock(ctx.standby.ssm(), inv.lock_parameter)
        previous = journal.load()
        unfinished = previous is not None and previous.get("status") in UNFINISHED
        if unfinished and ctx.options.resume and previous is not None \
                and previous.get("scope") != ctx.options.scope:
            raise UsageError(f"the unfinished run {previous.get('runId')} is a --scope "
                             f"{previous.get('scope')} failover; resume it with that scope")
        if previous is not None and previous.get("scope") == ctx.options.scope:
            # When the last promotion was requested tells a later instance refresh from an
            # older one (RDS does not report a promotion time).
            requested = (previous.get("facts") or {}).get("promotion_requested_at")
            if requested:
                ctx.facts["promotion_requested_at"] = requested
        if not unfinished:
            done = already_failed_over(ctx)
            if done is not None:
                self.print(f"already failed over: {done}. Nothing to do.")
                self._print_follow_ups()
                return ExitCode.OK
            if ctx.options.resume:
                log.info("nothing to resume (no unfinished run in %s); starting a new run",
                         inv.journal_parameter)
        elif not ctx.options.resume:
            holder = lock.holder()
            started = previous.get("startedAt") if previous else "?"
            run_id = previous.get("runId") if previous else "?"
            if holder is not None:
                raise LockedError(f"another failover run holds the lock {inv.lock_parameter}: "
                                  f"{holder.describe()}; if that run crashed, continue it with "
                                  "--resume")
            raise RefusedError(f"run {run_id} (started {started}) did not finish (status "
                               f"{previous.get('status') if previous else '?'}); continue it "
                               "with --resume. Nothing was changed")
        take_over = previous.get("runId") if (unfinished and ctx.options.resume
                                              and previous) else None
        if take_over:
            ctx.run_id = str(take_over)
        me = LockHolder.me(ctx.run_id, ctx.options.timing.lock_heartbeat_seconds)
        lock.acquire(me, take_over_run=take_over)
        lock.start_heartbeat(me, on_lost=ctx.stop.set)   # every wait then ends at its next poll
        try:
            try:
                code = self._locked_run(journal, previous if take_over else None)
            except (ClientError, BotoCoreError) as exc:   # e.g. the journal could not be saved
                if journal.data:
                    journal.data["status"] = "failed"   # local copy at least; SSM may be down
                raise StepFailedError(f"AWS call failed: {exc}; continue with --resume") from exc
        except (FailoverError, KeyboardInterrupt) as exc:
            # A crash (kill -9, power loss, a bug) leaves lock and journal behind on purpose:
            # --resume of the same run takes both over.
            if isinstance(exc, KeyboardInterrupt) and journal.data:
                journal.finish("interrupted")
            lock.release(me)
            raise
        finally:
            # Whatever ends this process (even a bug) ends the lease: the lock stays behind
            # for --resume, and goes stale after 3 heartbeats.
            lock.stop_heartbeat()
        lock.release(me)
        return code

    def _locked_run(self, journal: Journal, resumed: dict[str, Any] | None) -> ExitCode:
        ctx = self.ctx
        checks = readiness.run_checks(ctx, daily=False)
        self.print(readiness.render_table(checks))
        refused = readiness.refusals(checks)
        if refused:
            raise RefusedError("preflight refused: " + "; ".join(
                f"{c.name}: {c.detail}" for c in refused) + ". Nothing was changed")
        for c in checks:
            if c.overridden:
                log.warning("--force: %s failed (%s); going on as asked", c.name, c.detail)
        self.print(render_plan(ctx, plan_rows(ctx, live=False)))
        if not ctx.options.yes:
            confirm(ctx, self.stdin, self.out)
        if resumed is not None:
            ctx.started_at = datetime.fromisoformat(str(resumed["startedAt"]))
            ctx.facts.update(resumed.get("facts") or {})
            data = dict(resumed)
            data["status"] = "running"
            data.setdefault("resumedAt", []).append(datetime.now().astimezone().isoformat())
        else:
            data = {"runId": ctx.run_id, "scope": ctx.options.scope, "stack": ctx.options.stack,
                    "status": "running", "startedAt": ctx.started_at.isoformat(),
                    "forced": ctx.options.force}
        journal.begin(data)
        for key, value in ctx.facts.items():
            journal.fact(key, value)
        ctx.journal = journal
        runner = Runner(ctx, build_plan(ctx.options.scope))
        try:
            runner.run()
        except FailoverError as exc:
            journal.finish("failed", error=str(exc))
            self._write_report(runner, "failed", exc.exit_code, str(exc))
            raise
        journal.finish("completed")
        rep = self._write_report(runner, "completed", ExitCode.OK,
                                 f"{ctx.options.scope} failover completed")
        self.print(f"\nFAILOVER COMPLETE: {ctx.target_database} in {ctx.target.region} is the "
                   f"writer; RTO {rep['rtoSeconds']} s; data-loss exposure "
                   f"{rep['dataLossExposureSeconds']} s; old primary {rep['fenced']}.")
        self._print_follow_ups()
        return ExitCode.OK

    def _write_report(self, runner: Runner, outcome: str, code: int,
                      message: str) -> dict[str, Any]:
        ctx = self.ctx
        rep = report.build_report(ctx, runner.records, outcome, int(code), message)
        markdown = report.render_timeline(rep)
        uploaded = report.upload_timeline(ctx, rep, markdown)
        rep["timelineUploaded"] = uploaded is not None
        if ctx.options.report is not None:
            timeline = report.write_local(ctx.options.report, rep, markdown)
            log.info("report %s, timeline %s", ctx.options.report, timeline)
        if uploaded:
            log.info("incident timeline uploaded to %s", uploaded)
        return rep

    def _print_follow_ups(self) -> None:
        self.print("\nFollow-ups:")
        for i, text in enumerate(report.follow_ups(self.ctx), 1):
            self.print(f"  {i}. {text}")


def run(argv: list[str] | None = None, session: boto3.Session | None = None,
        stdin: TextIO | None = None, out: TextIO | None = None) -> int:
    """Parse, load, run; every known failure becomes one clear line and its exit code."""
    args = parse_arguments(argv)
    out = out or sys.stdout
    try:
        options = options_from(args)
        inventory, webhook = load_inventory(options, args.project_dir, session)
        ctx = FailoverContext(inventory, options, session=session, webhook_url=webhook)
        command = Command(ctx, out, stdin or sys.stdin)
        if options.mode == "check":
            return command.check()
        if options.mode == "dry-run":
            return command.dry_run()
        return command.real_run()
    except FailoverError as exc:
        log.error("%s", exc)
        log.debug("details", exc_info=True)
        return int(exc.exit_code)
    except (ClientError, BotoCoreError) as exc:
        log.error("AWS call failed: %s", exc)
        log.debug("details", exc_info=True)
        return int(ExitCode.FAILED)
    except KeyboardInterrupt:
        log.error("interrupted; the journal (if any) says where; continue with --resume")
        return int(ExitCode.FAILED)


def main(argv: list[str] | None = None) -> int:
    args_for_logging = argv if argv is not None else sys.argv[1:]
    setup_logging(verbose="-v" in args_for_logging or "--verbose" in args_for_logging)
    return run(argv)

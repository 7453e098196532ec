"""A real failover run: decide from journal and lock, take the lock, preflight, ask, run, report.

Every way out of :meth:`RealRun.execute` -- success, refusal, a failed step, an AWS error, Ctrl-C,
SIGTERM/SIGHUP, even a bug -- leaves a truthful record: the report (``--report`` and, once a
change may have been made, the incident timeline in the standby bucket) is written in one
``finally`` from what the run knows, and the journal says how the run ended. The lock is
released on every exit this process lives through; when that fails, or the process is killed,
the lock goes stale and the next run takes it over (``lock.py``).

What a later run does, from the journal (SSM) and the lock it finds:

=====================  ===============  =====================================================
journal                lock             plain run / ``--resume``
=====================  ===============  =====================================================
none or completed      none             already failed over: nothing to do; else a new run
none or completed      live             exit 4, the holder named (it is running)
none or completed      stale            taken over (reported); a new run
unfinished (run R)     live             exit 4 / exit 4 ("still alive")
unfinished (run R)     none or stale    exit 3 "continue with --resume" / R resumed
=====================  ===============  =====================================================
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TextIO

from botocore.exceptions import BotoCoreError, ClientError

from caresync_dr.cli import ExitCode
from caresync_dr.cli.signals import Interrupted
from caresync_dr.failover import readiness, report
from caresync_dr.failover.context import FailoverContext
from caresync_dr.failover.errors import (
    FailoverError,
    LockedError,
    RefusedError,
    StepFailedError,
    UsageError,
)
from caresync_dr.failover.journal import Journal, JournalUnavailableError
from caresync_dr.failover.lock import FailoverLock, LockHolder
from caresync_dr.failover.plan import all_steps, build_plan
from caresync_dr.failover.runner import Runner
from caresync_dr.failover.views import confirm, plan_rows, render_plan

log = logging.getLogger(__name__)
UNFINISHED = ("running", "failed", "interrupted")   # journal states --resume continues
OUTCOMES = {ExitCode.OK: "completed", ExitCode.FAILED: "failed", ExitCode.USAGE: "usage error",
            ExitCode.REFUSED: "refused", ExitCode.LOCKED: "locked"}


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


class RealRun:
    def __init__(self, ctx: FailoverContext, out: TextIO, stdin: TextIO) -> None:
        self.ctx = ctx
        self.out = out
        self.stdin = stdin
        inv = ctx.inventory
        self.journal = Journal(ctx.standby.ssm(), inv.journal_parameter,
                               ctx.options.journal_file)
        self.lock = FailoverLock(ctx.standby.ssm(), inv.lock_parameter)
        self.lock_state = LockState(inv.lock_parameter)
        self.me: LockHolder | None = None
        self.runner: Runner | None = None
        self.began = False          # the journal was (maybe) written: changes may follow

    def print(self, text: str = "") -> None:
        self.out.write(text + "\n")
        self.out.flush()

    # --- the one way out ----------------------------------------------------------------------
    def execute(self) -> ExitCode:
        ending = Ending()
        try:
            ending.code = self._decide_and_run(ending)
            ending.handled = True
            return ending.code
        except FailoverError as exc:
            self._end(ending, exc, "failed")
            raise
        except (ClientError, BotoCoreError) as exc:
            converted = self._aws_failure(exc)
            self._end(ending, converted, "failed")
            raise converted from exc
        except KeyboardInterrupt as exc:
            converted = self._interrupted(exc)
            self._end(ending, converted, "interrupted")
            raise converted from exc
        except Exception as exc:       # a bug: say so in the report, then show the traceback
            ending.handled = True
            ending.outcome, ending.message = "crashed", f"{type(exc).__name__}: {exc}"
            if self.began:
                self._settle_journal("failed", error=ending.message)
            raise
        finally:
            self.lock.stop_heartbeat()
            if self.lock_state.held and ending.handled:
                self._release()
            self._write_report(ending)
            for line in ending.lines:
                self.print(line)

    def _end(self, ending: Ending, exc: FailoverError, status: str) -> None:
        ending.handled = True
        ending.code, ending.message = exc.exit_code, str(exc)
        ending.outcome = OUTCOMES.get(exc.exit_code, "failed")
        if self.began:
            self._settle_journal(status, error=ending.message)

    def _aws_failure(self, exc: ClientError | BotoCoreError) -> FailoverError:
        if not self.began:
            return RefusedError(f"AWS call failed before any change: {exc}. Nothing was changed")
        return StepFailedError(f"AWS call failed: {exc}; continue with --resume")

    def _interrupted(self, exc: KeyboardInterrupt) -> FailoverError:
        why = f"stopped by {exc.signal_name}" if isinstance(exc, Interrupted) else "interrupted"
        if not self.began:
            return RefusedError(f"{why} before any change: nothing was changed")
        return StepFailedError(f"{why} (the run was interrupted); the journal says where it "
                               "was: continue with --resume")

    def _settle_journal(self, status: str, **extra: Any) -> None:
        """The journal says how the run ended: SSM if it answers, the local copy always."""
        if not self.journal.data:
            return
        try:
            self.journal.finish(status, **extra)
        except JournalUnavailableError as exc:
            log.warning("%s", exc)
            self.journal.save_local(status, **extra)

    def _release(self) -> None:
        assert self.me is not None
        result = self.lock.release(self.me)
        self.lock_state.released = result.released
        self.lock_state.release_error = result.error

    # --- decisions before the lock --------------------------------------------------------------
    def _decide_and_run(self, ending: Ending) -> ExitCode:
        ctx = self.ctx
        inv = ctx.inventory
        previous = self.journal.load()
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
        holder = self.lock.holder()
        if not unfinished:
            done = already_failed_over(ctx)
            if done is not None:
                self._remove_stale(holder)
                ending.outcome, ending.message = "already failed over", done
                self.print(f"already failed over: {done}. Nothing to do.")
                self._print_follow_ups()
                return ExitCode.OK
            if ctx.options.resume:
                log.info("nothing to resume (no unfinished run in %s); starting a new run",
                         inv.journal_parameter)
        elif not ctx.options.resume:
            assert previous is not None
            run_id, started = previous.get("runId", "?"), previous.get("startedAt", "?")
            if holder is not None and not holder.is_stale():
                raise LockedError(f"another failover run holds the lock {inv.lock_parameter}: "
                                  f"{holder.describe()}; if that run crashed, continue it with "
                                  "--resume once its heartbeat is stale")
            gone = (f"; its lock is stale ({holder.describe()}): that process is gone"
                    if holder is not None else "")
            raise RefusedError(f"run {run_id} (started {started}) did not finish (status "
                               f"{previous.get('status')}){gone}; continue it with --resume. "
                               "Nothing was changed")
        resuming = str(previous["runId"]) if unfinished and previous else None
        if resuming:
            ctx.run_id = resuming
        self.me = LockHolder.me(ctx.run_id, ctx.options.timing.lock_heartbeat_seconds)
        taken = self.lock.acquire(self.me, resuming_run=resuming)
        self.lock_state.held = True
        if taken is not None:
            self.lock_state.taken_over = taken.summary()
            ctx.facts["lock_taken_over"] = taken.summary()
        self.lock.start_heartbeat(self.me, on_lost=ctx.stop.set)  # waits end at their next poll
        try:
            return self._locked_run(previous if resuming else None, ending)
        except FailoverError as exc:
            if self.lock.lost:
                raise StepFailedError(f"this run lost its lock ({self.lock.lost_reason}): "
                                      f"{exc}") from exc
            raise

    def _remove_stale(self, holder: LockHolder | None) -> None:
        """Nothing to do, and a dead run's lock is still there: remove it, so --check's "lock
        free" row and the next failover do not have to wait for anything."""
        if holder is None or not holder.is_stale():
            return
        result = self.lock.remove_stale(holder)
        if result.released:
            log.info("removed the stale lock %s of run %s (%s)", self.lock.name,
                     holder.run_id, holder.describe())
            self.lock_state.removed_stale = holder.summary()

    # --- under the lock -------------------------------------------------------------------------
    def _locked_run(self, resumed: dict[str, Any] | None, ending: Ending) -> ExitCode:
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
        self.began = True
        self.journal.begin(data)
        for key, value in ctx.facts.items():
            self.journal.fact(key, value)
        ctx.journal = self.journal
        self.runner = Runner(ctx, build_plan(ctx.options.scope))
        self.runner.run()
        self.journal.finish("completed")
        ending.code, ending.outcome = ExitCode.OK, "completed"
        ending.message = f"{ctx.options.scope} failover completed"
        ending.lines += self._completion_lines()
        return ExitCode.OK

    def _completion_lines(self) -> list[str]:
        ctx = self.ctx
        lines: list[str] = []
        rep = report.build_report(ctx, self.runner.records if self.runner else {},
                                  "completed", 0, "")
        lines.append(f"\nFAILOVER COMPLETE: {ctx.target_database} in {ctx.target.region} is "
                     f"the writer; RTO {rep['rtoSeconds']} s; data-loss exposure "
                     f"{rep['dataLossExposureSeconds']} s; old primary {rep['fenced']}.")
        lines.append("\nFollow-ups:")
        lines += [f"  {i}. {text}" for i, text in enumerate(report.follow_ups(ctx), 1)]
        return lines

    def _print_follow_ups(self) -> None:
        self.print("\nFollow-ups:")
        for i, text in enumerate(report.follow_ups(self.ctx), 1):
            self.print(f"  {i}. {text}")

    # --- the record -----------------------------------------------------------------------------
    def _write_report(self, ending: Ending) -> None:
        """Never raises: the report is what is left when everything else failed."""
        ctx = self.ctx
        if self.lock_state.held and self.lock_state.released is False:
            ending.lines.append(
                f"\nWARNING: the lock {self.lock.name} could not be released "
                f"({self.lock_state.release_error}); it goes stale "
                f"{self.me.stale_after if self.me else 0:.0f} s after this run's last "
                "heartbeat, and the next run takes it over.")
        try:
            records = self.runner.records if self.runner is not None else {}
            rep = report.build_report(ctx, records, ending.outcome, int(ending.code),
                                      ending.message)
            rep["lock"] = self.lock_state.as_report()
            markdown = report.render_timeline(rep)
            # The standby bucket keeps the timeline of every run that may have changed
            # something; a refusal before any change is only written locally.
            uploaded = report.upload_timeline(ctx, rep, markdown) if self.began else None
            rep["timelineUploaded"] = uploaded is not None
            if ctx.options.report is not None:
                timeline = report.write_local(ctx.options.report, rep, markdown)
                log.info("report %s, timeline %s", ctx.options.report, timeline)
            if uploaded:
                log.info("incident timeline uploaded to %s", uploaded)
        except Exception as exc:
            log.error("could not write the report: %s: %s", type(exc).__name__, exc)

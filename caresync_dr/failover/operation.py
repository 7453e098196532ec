"""A failover as an operation of the engine (:mod:`caresync_dr.operations`).

The engine owns the lock, the journal, the step runner, the confirmation, the report and the
incident timeline on every exit, ``--check``/``--dry-run`` without a single change, and the
notification hook; see its docstring for what a later run does with the journal and lock it
finds. This module says what is failover-specific: the plan (by ``--scope``), the readiness
checks and preflight (``readiness.py``), what "already failed over" means (the steps marked
``marks_done``: promotion and the traffic switch or the app's endpoint), what a resumed run
takes from the journal (when the promotion was requested), and the report's RTO, data-loss
exposure, fencing and follow-ups (``report.py``).
"""

from __future__ import annotations

from concurrent.futures import Executor, Future
from typing import Any, TextIO

from caresync_dr.failover import readiness, report, steps
from caresync_dr.failover.context import FailoverContext
from caresync_dr.failover.plan import FailoverPlan, build_plan
from caresync_dr.operations.checks import Check
from caresync_dr.operations.engine import Operation
from caresync_dr.operations.hooks import OperationHooks
from caresync_dr.operations.journal import StepRecord
from caresync_dr.operations.recorder import ApiCallRecorder
from caresync_dr.operations.run_setup import Bookkeeping, Ending, EngineOptions, ReportTarget
from caresync_dr.operations.steps import all_steps


def bookkeeping(ctx: FailoverContext) -> Bookkeeping:
    """Lock, journal and incidents, all in the region being promoted: the standby region, or
    the primary region for a reversed failover (after a failback). A reversed inventory
    without ``primaryBackupBucket`` is refused by the preflight (readiness "bookkeeping
    region"); until then its timeline would go to the standby bucket, best effort."""
    inv = ctx.inventory
    books = ctx.books
    return Bookkeeping(ssm=books.ssm(), lock_parameter=inv.lock_parameter,
                       journal_parameter=inv.journal_parameter,
                       journal_file=ctx.options.journal_file,
                       incident_bucket=ctx.incident_bucket or inv.backup_bucket,
                       incident_s3=books.s3 if ctx.incident_bucket else ctx.standby.s3)


def engine_options(ctx: FailoverContext) -> EngineOptions:
    return EngineOptions.requested(ctx.options, ctx.options.timing.lock_heartbeat_seconds)


class FailoverOperation(Operation[FailoverContext]):
    name = "failover"
    done_outcome = "already failed over"

    def __init__(self, ctx: FailoverContext, out: TextIO, stdin: TextIO, *,
                 report_target: ReportTarget | None = None,
                 hooks: OperationHooks | None = None,
                 recorder: ApiCallRecorder | None = None) -> None:
        super().__init__(ctx, engine_options(ctx), bookkeeping(ctx), out=out, stdin=stdin,
                         session=ctx.session, hooks=hooks, report=report_target,
                         recorder=recorder)

    def plan(self) -> FailoverPlan:
        return build_plan(self.ctx.options.scope, self.ctx.reversed)

    def title(self) -> str:
        return f"{self.ctx.options.scope} failover, stack {self.ctx.options.stack}"

    def checks(self, daily: bool) -> list[Check]:
        return readiness.run_checks(self.ctx, daily=daily)

    def already_done(self) -> str | None:
        """Also names an unfinished failback or switchover (their journals are in the standby
        region, beside this one's): while one is unfinished the standby still writes, and
        "nothing to do" alone would hide that the way home stopped part-way."""
        done = super().already_done()
        if done is None or self.ctx.reversed:
            return done
        # Here, not at the top: a run on its way to the promotion does not need it.
        from caresync_dr.failback.unfinished import unfinished_reverse_runs

        return "; ".join([done, *unfinished_reverse_runs(self.books.ssm)])

    def prefetch(self, pool: Executor) -> dict[str, Future[Any]]:
        """The traffic switch, which "already failed over?" reads first (the plan's last
        step that marks the run done), read beside the journal and the lock."""
        marked = [step for step in all_steps(self.plan()) if step.marks_done]
        if not marked or not isinstance(marked[-1], steps.SwitchTraffic):
            return {}
        return {steps.SWITCH_READ: pool.submit(steps.read_switch, self.ctx)}

    def question(self) -> str:
        return (f"This promotes {self.ctx.target_database} in {self.ctx.target.region} and "
                "moves traffic.")

    def identity(self) -> dict[str, Any]:
        return {"stack": self.ctx.options.stack, "scope": self.ctx.options.scope}

    def refuse_resume(self, previous: dict[str, Any]) -> str | None:
        if previous.get("scope") != self.ctx.options.scope:
            return (f"the unfinished run {previous.get('runId')} is a --scope "
                    f"{previous.get('scope')} failover; resume it with that scope")
        return None

    def adopt(self, previous: dict[str, Any]) -> None:
        """When the last promotion was requested tells a later instance refresh from an older
        one (RDS does not report a promotion time)."""
        if previous.get("scope") == self.ctx.options.scope:
            requested = (previous.get("facts") or {}).get("promotion_requested_at")
            if requested:
                self.ctx.facts["promotion_requested_at"] = requested

    def journal_fields(self) -> dict[str, Any]:
        return {"forced": self.ctx.options.force,
                "adoptedPromotion": self.ctx.facts.get("adopted_promotion")}

    def completed_message(self) -> str:
        return f"{self.ctx.options.scope} failover completed"

    def completion_lines(self) -> list[str]:
        ctx = self.ctx
        rep = report.build_report(ctx, self.runner.records if self.runner else {},
                                  "completed", 0, "")
        lines = [f"\nFAILOVER COMPLETE: {ctx.target_database} in {ctx.target.region} is "
                 f"the writer; RTO {rep['rtoSeconds']} s; data-loss exposure "
                 f"{rep['dataLossExposureSeconds']} s; old primary {rep['fenced']}.",
                 "\nFollow-ups:"]
        return lines + [f"  {i}. {text}" for i, text in enumerate(report.follow_ups(ctx), 1)]

    def follow_up_lines(self) -> list[str]:
        return ["\nFollow-ups:"] + [f"  {i}. {text}" for i, text in
                                    enumerate(report.follow_ups(self.ctx), 1)]

    def build_report(self, records: dict[str, StepRecord], ending: Ending) -> dict[str, Any]:
        return report.build_report(self.ctx, records, ending.outcome, int(ending.code),
                                   ending.message)

    def render_timeline(self, document: dict[str, Any]) -> str:
        return report.render_timeline(document)

"""A planned switchover as an operation of the engine (:mod:`caresync_dr.operations`).

The plan (stages run in order, each waits for the one before):

1. scale the target site's app tier to production capacity (before the fence: not in the
   write-unavailability window);
2. fence the writer (every role's logins refused but the master user's, every session
   ended) and read its final WAL position;
3. wait until the replica has replayed it (else roll the fence back and stop);
4. promote the replica (the failover's step);
5. let the app log in on the new writer;
6. move traffic (the failover's switch step, with the target's switch value);
7. observe Route 53 (background, best effort) and verify the public health URL.

"Already switched over" (a rerun with nothing to do) is the promotion and the traffic switch
both found done. Lock: the failover's in the standby region (they exclude each other); a
reversed failover holds it in the primary region, which the preflight reads too; journal: its
own.
"""

from __future__ import annotations

from typing import Any, TextIO, cast

from caresync_dr.failover import steps as failover_steps
from caresync_dr.failover.context import FailoverContext
from caresync_dr.names import SWITCHOVER_JOURNAL_PARAMETER
from caresync_dr.operations import timeline
from caresync_dr.operations.checks import Check
from caresync_dr.operations.engine import UNFINISHED, Operation
from caresync_dr.operations.hooks import OperationHooks
from caresync_dr.operations.journal import StepRecord
from caresync_dr.operations.recorder import ApiCallRecorder
from caresync_dr.operations.run_setup import Bookkeeping, Ending, EngineOptions, ReportTarget
from caresync_dr.operations.steps import Stage, Step
from caresync_dr.switchover import readiness, report
from caresync_dr.switchover import steps as switchover_steps
from caresync_dr.switchover.context import SwitchoverContext

SwitchoverPlan = tuple[Stage[SwitchoverContext], ...]


def reused(step: Step[FailoverContext]) -> Step[SwitchoverContext]:
    """A failover step in a switchover plan. A step only consumes its context (check, apply,
    touches), and a :class:`SwitchoverContext` is a :class:`FailoverContext`; ``Step`` is
    declared invariant in its context, hence the cast."""
    return cast(Step[SwitchoverContext], step)


def build_plan() -> SwitchoverPlan:
    return (
        Stage((reused(failover_steps.ScaleStandbyApp()),)),
        Stage((switchover_steps.FenceWrites(),)),
        Stage((switchover_steps.WaitForReplay(),)),
        Stage((reused(failover_steps.PromoteDatabase()),)),
        Stage((switchover_steps.OpenNewWriter(),)),
        Stage((reused(failover_steps.SwitchTraffic()),)),
        Stage((reused(failover_steps.ObserveRoute53()),), background=True),
        Stage((reused(failover_steps.VerifyService()),)),
    )


def bookkeeping(ctx: SwitchoverContext) -> Bookkeeping:
    """Lock (the failover's), journal and incidents in the standby region."""
    inv = ctx.inventory
    return Bookkeeping(ssm=ctx.standby.ssm(), lock_parameter=inv.lock_parameter,
                       journal_parameter=SWITCHOVER_JOURNAL_PARAMETER,
                       journal_file=ctx.options.journal_file,
                       incident_bucket=inv.backup_bucket, incident_s3=ctx.standby.s3)


class SwitchoverOperation(Operation[SwitchoverContext]):
    name = "switchover"
    done_outcome = "already switched over"

    def __init__(self, ctx: SwitchoverContext, out: TextIO, stdin: TextIO, *,
                 report_target: ReportTarget | None = None,
                 hooks: OperationHooks | None = None,
                 recorder: ApiCallRecorder | None = None) -> None:
        super().__init__(ctx, EngineOptions.requested(
            ctx.options, ctx.options.timing.lock_heartbeat_seconds),
            bookkeeping(ctx), out=out, stdin=stdin, session=ctx.session, hooks=hooks,
            report=report_target, recorder=recorder)

    def plan(self) -> SwitchoverPlan:
        return build_plan()

    def title(self) -> str:
        s = self.ctx.settings
        return f"planned switchover to the {s.to} site, stack {self.options.stack}"

    def checks(self, daily: bool) -> list[Check]:
        return readiness.run_checks(self.ctx, self.plan(), daily)

    def question(self) -> str:
        ctx = self.ctx
        return (f"This stops writes on {ctx.source_database} in {ctx.source.region} until "
                f"{ctx.target_database} in {ctx.target.region} has replayed them, promotes it "
                "and moves traffic.")

    def identity(self) -> dict[str, Any]:
        return {"stack": self.options.stack, "to": self.ctx.settings.to}

    def refuse_resume(self, previous: dict[str, Any]) -> str | None:
        if previous.get("to") != self.ctx.settings.to:
            return (f"the unfinished run {previous.get('runId')} is a switchover to the "
                    f"{previous.get('to')} site; resume it with --to {previous.get('to')}")
        return None

    def adopt(self, previous: dict[str, Any]) -> None:
        """Before the preflight of a resumed run: what the unfinished run had reached (the
        engine restores the rest of its facts after the preflight)."""
        if previous.get("to") != self.ctx.settings.to or previous.get("status") not in UNFINISHED:
            return
        facts = previous.get("facts") or {}
        for key in ("fenced_at", "fenced_roles", "final_lsn", "final_next_xid", "caught_up_at",
                    "promotion_requested_at"):
            if facts.get(key):
                self.ctx.facts[key] = facts[key]

    def completed_message(self) -> str:
        sw = report.section(self.ctx)
        return (f"switchover to the {sw['to']} site completed; writes were unavailable for "
                f"{sw['writeUnavailableSeconds']} s; acknowledged writes lost: "
                f"{sw['acknowledgedWritesLost']}")

    def completion_lines(self) -> list[str]:
        ctx = self.ctx
        sw = report.section(ctx)
        return [f"\nSWITCHOVER COMPLETE: {ctx.target_database} in {ctx.target.region} is the "
                f"writer; final position {sw['finalLsn']} replayed before promotion; writes "
                f"unavailable {sw['writeUnavailableSeconds']} s.",
                f"\nThe old writer {ctx.source_database} stays fenced (every role the fence "
                "closed NOLOGIN, the app's included) and no longer replicates: "
                "reconcile the stacks (activeSite) and re-protect (docs/runbooks/"
                "switchover-failback.md)."]

    def build_report(self, records: dict[str, StepRecord], ending: Ending) -> dict[str, Any]:
        document = super().build_report(records, ending)
        document["switchover"] = report.section(self.ctx)
        return document

    def render_timeline(self, document: dict[str, Any]) -> str:
        return "\n".join([timeline.render_timeline(document), *report.timeline_lines(document)])

"""Re-protection as an operation of the engine (:mod:`caresync_dr.operations`): lock (the
failover's, so a failover, a switchover and a failback never run at once), journal, preflight
that reads every resource before the first change, confirmation, report on every exit."""

from __future__ import annotations

from typing import Any, TextIO

from caresync_dr.failback.context import FAILBACK_JOURNAL_PARAMETER, FailbackContext
from caresync_dr.failback.plan import FailbackPlan, build_plan
from caresync_dr.operations.checks import Check, guard, resource_checks
from caresync_dr.operations.engine import Operation
from caresync_dr.operations.hooks import OperationHooks
from caresync_dr.operations.journal import StepRecord
from caresync_dr.operations.recorder import ApiCallRecorder
from caresync_dr.operations.run_setup import Bookkeeping, Ending, EngineOptions, ReportTarget


def bookkeeping(ctx: FailbackContext) -> Bookkeeping:
    """Lock, journal and incidents in the standby region, beside the failover's."""
    inv = ctx.inventory
    standby = ctx.clients["standby"]
    return Bookkeeping(ssm=standby.ssm(), lock_parameter=inv.lock_parameter,
                       journal_parameter=FAILBACK_JOURNAL_PARAMETER,
                       journal_file=ctx.options.journal_file,
                       incident_bucket=inv.backup_bucket, incident_s3=standby.s3)


def engine_options(ctx: FailbackContext) -> EngineOptions:
    return EngineOptions.requested(ctx.options, ctx.options.heartbeat_seconds)


class FailbackOperation(Operation[FailbackContext]):
    name = "failback"
    done_outcome = "already protected"

    def __init__(self, ctx: FailbackContext, out: TextIO, stdin: TextIO, *,
                 report_target: ReportTarget | None = None,
                 hooks: OperationHooks | None = None,
                 recorder: ApiCallRecorder | None = None) -> None:
        super().__init__(ctx, engine_options(ctx), bookkeeping(ctx), out=out, stdin=stdin,
                         session=ctx.session, hooks=hooks, report=report_target,
                         recorder=recorder)

    def plan(self) -> FailbackPlan:
        return build_plan()

    def title(self) -> str:
        d = self.ctx.direction
        return (f"re-protect the {d.protected} site from the {d.active} writer "
                f"(generation {d.target_generation})")

    def checks(self, daily: bool) -> list[Check]:
        d = self.ctx.direction
        rows = [Check("direction", True, f"{d.active} writes ({d.writer_identifier}); "
                                         f"{d.protected} gets {d.target_identifier}")]
        rows += resource_checks(self.plan(), self.ctx)
        rows.append(guard("other region answers", True, lambda: self._answers(d.protected)))
        return rows

    def _answers(self, site: str) -> Check:
        clients = self.ctx.clients[site]
        clients.rds().describe_db_instances(MaxRecords=20)
        return Check("other region answers", True, f"{self.ctx.region(site)} RDS answers")

    def question(self) -> str:
        d = self.ctx.direction
        old = ("" if d.retiring is None else
               f" and retires generation {d.retiring.generation} of the {d.protected} site")
        return (f"This runs pulumi up on both stacks, builds {d.target_identifier} in "
                f"{self.ctx.region(d.protected)} from {d.writer_identifier}{old}.")

    def identity(self) -> dict[str, Any]:
        d = self.ctx.direction
        return {"stack": self.ctx.options.stack, "activeSite": d.active,
                "protectedSite": d.protected, "targetGeneration": d.target_generation}

    def refuse_resume(self, previous: dict[str, Any]) -> str | None:
        d = self.ctx.direction
        if previous.get("targetGeneration") not in (None, d.target_generation):
            return (f"the unfinished run {previous.get('runId')} built generation "
                    f"{previous.get('targetGeneration')}, this one would build "
                    f"{d.target_generation}")
        return None

    def completed_message(self) -> str:
        d = self.ctx.direction
        return (f"the {d.protected} site is protected again: {d.target_identifier} "
                f"replicates from {d.writer_identifier}")

    def completion_lines(self) -> list[str]:
        d = self.ctx.direction
        back = ("return home with the planned switchover when you choose (docs/runbooks/"
                "switchover-failback.md)" if d.active == "standby" else
                "the original region is primary and protected")
        return [f"\nRE-PROTECTED: {d.target_identifier} in {self.ctx.region(d.protected)} "
                f"replicates from {d.writer_identifier}. Commit Pulumi.prod.yaml and "
                f"Pulumi.dr.yaml; {back}."]

    def build_report(self, records: dict[str, StepRecord], ending: Ending) -> dict[str, Any]:
        document = super().build_report(records, ending)
        d = self.ctx._direction
        if d is not None:
            document["direction"] = {
                "activeSite": d.active, "protectedSite": d.protected,
                "writer": d.writer_identifier, "newGeneration": d.target_generation,
                "newIdentifier": d.target_identifier,
                "retiring": None if d.retiring is None else
                {"generation": d.retiring.generation, "role": d.retiring.role}}
        return document

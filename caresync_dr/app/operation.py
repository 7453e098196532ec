"""``app.py restart|deploy|rollback`` as operations of the engine (:mod:`caresync_dr.operations`).

The engine owns the lock, journal, confirmation, report and timeline on every exit, and a dry
run without a single change. This module decides what the run does - which template version,
which plan - from what the preflight reads, and refuses (exit 3, nothing changed) what would
fail or do harm:

- a refresh already in progress (restart, deploy; a rollback rolls it back instead);
- deploy: a group on ``$Latest``/``$Default`` (Auto Scaling could not roll back: pin a version
  first with ``rollback --to-version``), a version that does not exist, one Auto Scaling rolled
  back before (unless ``--force``), the deploy alarms missing or already in ALARM;
- rollback: a version that does not exist or is the one running, an AMI that does not exist,
  no earlier good version to go back to.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TextIO

from botocore.exceptions import ClientError

from caresync_dr.app import probes, rollout
from caresync_dr.app.context import AppContext
from caresync_dr.app.probes import ROLLED_BACK_STATUSES, GroupState, RefreshState
from caresync_dr.app.steps import (
    NewTemplateVersion,
    ReplaceInstances,
    RollBackActiveRefresh,
    WaitHealthy,
    rolled_back_sentence,
)
from caresync_dr.cli import ExitCode
from caresync_dr.names import backup_bucket_name
from caresync_dr.operations.checks import Check, guard
from caresync_dr.operations.engine import (
    UNFINISHED,
    Bookkeeping,
    EngineOptions,
    Operation,
    ReportTarget,
)
from caresync_dr.operations.hooks import OperationHooks
from caresync_dr.operations.steps import Stage
from caresync_dr.retention import INCIDENT_PREFIX


def previous_good_version(current: int, versions: list[int],
                          history: list[RefreshState]) -> int | None:
    """The newest version before ``current`` that Auto Scaling never rolled back."""
    bad = {int(str(r.desired_version)) for r in history
           if r.status in ROLLED_BACK_STATUSES and rollout.is_numbered(r.desired_version)}
    earlier = [v for v in versions if v < current and v not in bad]
    return max(earlier) if earlier else None


@dataclass
class Decision:
    """What the preflight read and decided; the plan follows from it."""

    checks: list[Check] = field(default_factory=list)
    group: GroupState | None = None
    active: RefreshState | None = None
    roll_back_active: bool = False


def bookkeeping(ctx: AppContext) -> Bookkeeping:
    """Lock, journal and incident timeline in the site's own region (its backup bucket,
    ``caresync-<site>-backups-<account>``; the account from STS, which needs no permission)."""
    account = ctx.session.client("sts", region_name=ctx.region).get_caller_identity()
    return Bookkeeping(ssm=ctx.clients.ssm(), lock_parameter=ctx.lock_parameter(),
                       journal_parameter=ctx.journal_parameter(),
                       journal_file=ctx.options.journal_file,
                       incident_bucket=backup_bucket_name(ctx.site, account["Account"]),
                       incident_s3=ctx.clients.s3, incident_prefix=INCIDENT_PREFIX)


def engine_options(ctx: AppContext) -> EngineOptions:
    return EngineOptions.requested(ctx.options, ctx.options.heartbeat_seconds)


class AppOperation(Operation[AppContext]):
    name = "app"
    done_outcome = "already done"

    def __init__(self, ctx: AppContext, out: TextIO, stdin: TextIO, *,
                 report_target: ReportTarget | None = None,
                 hooks: OperationHooks | None = None) -> None:
        super().__init__(ctx, engine_options(ctx), bookkeeping(ctx), out=out, stdin=stdin,
                         session=ctx.session, hooks=hooks, report=report_target)
        self._decision: Decision | None = None

    # --- what the run is --------------------------------------------------------------------
    def title(self) -> str:
        ctx = self.ctx
        target = ctx.facts.get("target_version")
        what = {"restart": "restart", "deploy": f"deploy of template version {target}",
                "rollback": "rollback" + (f" to template version {target}" if target else
                                          f" to {ctx.options.to_ami}" if ctx.options.to_ami
                                          else " of the refresh in progress")}
        return f"app {what[ctx.options.action]}, {ctx.group} ({ctx.region})"

    def question(self) -> str:
        return f"This replaces the app instances of {self.ctx.group} in {self.ctx.region}."

    def identity(self) -> dict[str, Any]:
        return {"stack": self.ctx.options.stack, "action": self.ctx.options.action,
                "site": self.ctx.site, "group": self.ctx.group}

    def plan(self) -> tuple[Stage[AppContext], ...]:
        decision = self.decide()
        if decision.roll_back_active:
            return (Stage((RollBackActiveRefresh(),)), Stage((WaitHealthy(),)))
        first: tuple[Stage[AppContext], ...] = ()
        if self.ctx.options.action == "rollback" and self.ctx.options.to_ami:
            first = (Stage((NewTemplateVersion(),)),)
        return (*first, Stage((ReplaceInstances(),)), Stage((WaitHealthy(),)))

    def checks(self, daily: bool) -> list[Check]:
        return self.decide().checks

    def adopt(self, previous: dict[str, Any]) -> None:
        """A resumed run keeps the versions and the refresh its first run chose (a finished
        run leaves nothing to a new one)."""
        if previous.get("action") == self.ctx.options.action and \
                previous.get("status") in UNFINISHED:
            for key in ("template_id", "current_version", "target_version", "refresh_id",
                        "refresh_requested_at", "rollback_of"):
                value = (previous.get("facts") or {}).get(key)
                if value is not None:
                    self.ctx.facts[key] = value

    def refuse_resume(self, previous: dict[str, Any]) -> str | None:
        rolled = (previous.get("facts") or {}).get("rolled_back")
        if rolled:
            return (f"run {previous.get('runId')} ended with Auto Scaling's rollback of version "
                    f"{rolled.get('version')} ({rolled.get('reason')}): nothing to resume; "
                    "deploy a fixed release")
        return None

    def completed_message(self) -> str:
        rolled = self.ctx.facts.get("rolled_back")
        if rolled:
            return rolled_back_sentence(rolled, self.ctx.group)
        return f"{self.title()} completed"

    def build_report(self, records: Any, ending: Any) -> dict[str, Any]:
        report = super().build_report(records, ending)
        rolled = self.ctx.facts.get("rolled_back")
        if rolled and report.get("outcome") == "completed":
            report.update(outcome="rolled back", exitCode=int(ExitCode.FAILED))
        report["rolledBack"] = rolled
        report["targetVersion"] = self.ctx.facts.get("target_version")
        report["refreshId"] = self.ctx.facts.get("refresh_id")
        return report

    # --- the preflight ------------------------------------------------------------------------
    def decide(self) -> Decision:
        if self._decision is None:
            decision = Decision()
            decision.checks = self._read(decision)
            self._decision = decision
        return self._decision

    def _read(self, decision: Decision) -> list[Check]:
        ctx = self.ctx
        rows: list[Check] = []

        def group_row() -> Check:
            decision.group = probes.describe_group(ctx.clients.autoscaling(), ctx.group)
            group = decision.group
            if group is None:
                return Check("app group", False, f"{ctx.group} not found in {ctx.region}")
            if group.template_id is None:
                return Check("app group", False, f"{ctx.group} uses no launch template")
            ctx.facts.setdefault("template_id", group.template_id)
            if rollout.is_numbered(group.template_version):
                ctx.facts.setdefault("current_version", int(str(group.template_version)))
            return Check("app group", True, f"{ctx.group}: {group.in_service} of "
                         f"{group.desired} in service, template {group.template_id} version "
                         f"{group.template_version}")

        rows.append(guard("app group", True, group_row))
        group = decision.group
        if group is None or group.template_id is None:
            return rows
        history = probes.instance_refreshes(ctx.clients.autoscaling(), ctx.group)
        mine = ctx.facts.get("refresh_id") or ctx.facts.get("rollback_of")
        decision.active = next((r for r in history if r.active), None)
        active = decision.active
        action = ctx.options.action
        if action == "rollback" and active is not None and active.refresh_id != mine \
                and not ctx.options.to_version and not ctx.options.to_ami:
            decision.roll_back_active = True
            rows.append(Check("refresh in progress", True,
                              f"{active.refresh_id} ({active.status}, deploying version "
                              f"{active.desired_version}): it is rolled back"))
            return rows
        if active is not None and active.refresh_id != mine:
            rows.append(Check("refresh in progress", False,
                              f"{active.refresh_id} is {active.status} (started "
                              f"{active.started}); wait for it, or roll it back with "
                              "`app.py rollback`"))
        else:
            rows.append(Check("refresh in progress", True, "none" if active is None
                              else f"{active.refresh_id}: this run's, resumed"))
        versions = [v.version for v in probes.template_versions(ctx.clients.ec2(),
                                                                group.template_id)]
        if action == "deploy":
            rows += self._deploy_rows(group, versions, history)
        elif action == "rollback":
            rows += self._rollback_rows(group, versions, history)
        return rows

    def _deploy_rows(self, group: GroupState, versions: list[int],
                     history: list[RefreshState]) -> list[Check]:
        ctx = self.ctx
        rows: list[Check] = []
        if not rollout.is_numbered(group.template_version):
            rows.append(Check(
                "rollback possible", False,
                f"{ctx.group} runs launch template version {group.template_version}: Auto "
                "Scaling cannot roll back from it. Pin the release running now first: "
                "`python scripts/app.py rollback --stack "
                f"{ctx.options.stack} --to-version N` (`app.py status` shows N)"))
        else:
            rows.append(Check("rollback possible", True,
                              f"{ctx.group} runs numbered version {group.template_version}"))
        wanted = ctx.options.version or (max(versions) if versions else None)
        if wanted is None or wanted not in versions:
            rows.append(Check("version", False, f"launch template {group.template_id} has "
                              f"versions {_span(versions)}; version {wanted} does not exist"))
            return rows
        ctx.facts["target_version"] = wanted
        rows.append(Check("version", True, f"deploy version {wanted} (latest "
                          f"{max(versions)})"))
        bad = next((r for r in history if r.desired_version == str(wanted)
                    and r.status in ROLLED_BACK_STATUSES), None)
        if bad is not None:
            rows.append(Check("version not rolled back before", False,
                              f"refresh {bad.refresh_id} of version {wanted} was rolled back "
                              f"({bad.status_reason}); deploy a fixed release, or --force",
                              overridden=ctx.options.force))
        states = probes.alarm_states(ctx.clients.cloudwatch(),
                                     rollout.rollout_alarm_names(ctx.site))
        missing = [n for n, s in states.items() if s == "missing"]
        firing = [n for n, s in states.items() if s == "ALARM"]
        rows.append(Check(
            "deploy alarms", not missing and not firing,
            f"missing: {', '.join(missing)}" if missing else
            f"already in ALARM: {', '.join(firing)} (the refresh would fail at once; restart "
            "or roll back first)" if firing else
            ", ".join(f"{n} {s}" for n, s in states.items())))
        return rows

    def _rollback_rows(self, group: GroupState, versions: list[int],
                       history: list[RefreshState]) -> list[Check]:
        ctx = self.ctx
        options = ctx.options
        current = (int(str(group.template_version))
                   if rollout.is_numbered(group.template_version) else None)
        if options.to_ami:
            return [self._image_row(options.to_ami),
                    Check("source version", current is not None,
                          f"the new version copies version {current}" if current is not None
                          else f"{ctx.group} runs {group.template_version}: name the version "
                          "to copy with --to-version instead")]
        if options.to_version is not None:
            wanted: int | None = options.to_version
            if wanted not in versions:
                return [Check("version", False, f"launch template {group.template_id} has "
                              f"versions {_span(versions)}; version {wanted} does not exist")]
        else:
            wanted = (previous_good_version(current, versions, history)
                      if current is not None else None)
            if wanted is None:
                return [Check("version", False, f"no earlier good version than "
                              f"{group.template_version} (versions {_span(versions)}); name "
                              "one with --to-version or an AMI with --to-ami")]
        ctx.facts["target_version"] = wanted
        if current == wanted and not ctx.facts.get("refresh_id"):
            return [Check("version", True, f"{ctx.group} already runs version {wanted}")]
        return [Check("version", True, f"back to version {wanted} (running "
                      f"{group.template_version})")]

    def _image_row(self, image: str) -> Check:
        def read() -> Check:
            try:
                found = self.ctx.clients.ec2().describe_images(ImageIds=[image])["Images"]
            except ClientError as exc:
                if probes.error_code(exc) in ("InvalidAMIID.NotFound", "InvalidAMIID.Malformed"):
                    found = []
                else:
                    raise
            return Check("image", bool(found), f"{image} exists" if found
                         else f"{image} not found in {self.ctx.region}")
        return guard("image", True, read)


def _span(versions: list[int]) -> str:
    if not versions:
        return "(none)"
    return f"{min(versions)}-{max(versions)}" if len(versions) > 1 else str(versions[0])

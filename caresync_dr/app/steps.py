"""The steps of ``app.py``: replace the instances (one instance refresh), roll an active one
back, make a template version from another AMI, and wait until the targets are healthy.

Each ``check`` re-reads real state; each ``apply`` saves in the journal what it is about to ask
before it asks (a resumed run waits for the refresh it started instead of starting another),
waits with bounded polling and returns one sentence.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import ClassVar

from botocore.exceptions import BotoCoreError, ClientError

from caresync_dr.app import actions, probes
from caresync_dr.app.context import AppContext
from caresync_dr.app.probes import ROLLED_BACK_STATUSES, RefreshState
from caresync_dr.app.rollout import TemplateVersion, refresh_request
from caresync_dr.estimates import DEFAULT_ESTIMATES
from caresync_dr.operations.errors import StepFailedError
from caresync_dr.operations.polling import wait_until
from caresync_dr.operations.steps import Step, Verdict, blocked, done, run

log = logging.getLogger(__name__)
TERMINAL = frozenset({"Successful", "Failed", "Cancelled", *ROLLED_BACK_STATUSES})


def target_version(ctx: AppContext) -> int | None:
    """The template version this run goes to (decided by the preflight, or by the step that
    made it), None for a restart."""
    value = ctx.facts.get("target_version")
    return None if value is None else int(value)


def refresh_by_id(ctx: AppContext, refresh_id: str) -> RefreshState | None:
    found = probes.instance_refreshes(ctx.clients.autoscaling(), ctx.group, [refresh_id])
    return found[0] if found else None


def active_refresh(ctx: AppContext) -> RefreshState | None:
    return next((r for r in probes.instance_refreshes(ctx.clients.autoscaling(), ctx.group)
                 if r.active), None)


def _ended(state: RefreshState | None) -> str | None:
    if state is None:
        return "the refresh is not visible"
    if state.status in TERMINAL:
        return None
    return f"{state.status}, {state.percentage or 0}% replaced"


def wait_for_refresh(ctx: AppContext, refresh_id: str) -> RefreshState:
    final = wait_until(f"instance refresh {refresh_id} of {ctx.group}",
                       lambda: refresh_by_id(ctx, refresh_id), _ended, ctx.options.policy(),
                       ctx.stop)
    assert final is not None
    return final


def rolled_back_sentence(rolled: Mapping[str, object], group: str) -> str:
    return (f"ROLLED BACK by Auto Scaling ({rolled.get('status')}): "
            f"{rolled.get('reason') or 'no reason'}; {group} runs template version "
            f"{rolled.get('runningVersion')} again, version {rolled.get('version')} is not "
            "deployed")


def _rolled_back(ctx: AppContext, state: RefreshState) -> str:
    """Auto Scaling undid the release: the run's job is over (the journal says completed, so
    nothing waits for a --resume), and the command exits 1 (``command.py``)."""
    group = probes.describe_group(ctx.clients.autoscaling(), ctx.group)
    running = group.template_version if group is not None else "?"
    rolled = {"refreshId": state.refresh_id, "status": state.status,
              "reason": state.status_reason, "version": state.desired_version,
              "runningVersion": running}
    ctx.fact("rolled_back", rolled, save=True)
    log.error("%s", rolled_back_sentence(rolled, ctx.group))
    return rolled_back_sentence(rolled, ctx.group)


class ReplaceInstances(Step[AppContext]):
    """One instance refresh in the run's mode (``caresync_dr.app.rollout.MODES``)."""

    name = "replace-instances"
    title = "Replace the app instances (instance refresh, capacity kept)"
    expected_seconds: ClassVar[float] = DEFAULT_ESTIMATES.deploy_seconds
    marks_done = True

    def check(self, ctx: AppContext) -> Verdict:
        previous = ctx.facts.get("refresh_id")
        if previous:
            state = refresh_by_id(ctx, str(previous))
            if state is not None and state.status == "Successful":
                return done(f"refresh {previous} of {ctx.group} succeeded")
            if state is not None and state.status == "RollbackSuccessful":
                return done(f"refresh {previous} was rolled back by Auto Scaling")
            if state is not None and state.active:
                return run(f"refresh {previous} is {state.status}; will wait for it")
            if state is not None and state.status in ROLLED_BACK_STATUSES:
                return blocked(f"refresh {previous} was rolled back by Auto Scaling "
                               f"({state.status_reason}); deploy a fixed release")
        group = probes.describe_group(ctx.clients.autoscaling(), ctx.group)
        if group is None:
            return blocked(f"{ctx.group} does not exist in {ctx.region}")
        version = target_version(ctx)
        if version is not None and group.template_version == str(version) and not previous:
            return done(f"{ctx.group} already runs template version {version}")
        what = ("the same release on fresh instances" if version is None
                else f"template version {version} (now {group.template_version})")
        return run(f"would replace the {len(group.instances)} instance(s) of {ctx.group} with "
                   f"{what}, keeping {group.desired} in service "
                   f"({ctx.refresh_mode.summary})")

    def apply(self, ctx: AppContext) -> str:
        started = time.monotonic()
        refresh_id = ctx.facts.get("refresh_id")
        state = refresh_by_id(ctx, str(refresh_id)) if refresh_id else None
        if state is None or state.status in TERMINAL:
            version = target_version(ctx)
            target = (None if version is None else
                      TemplateVersion(str(ctx.facts["template_id"]), version))
            request = refresh_request(ctx.refresh_mode, ctx.site, ctx.group, target)
            ctx.fact("refresh_requested_at", datetime.now(UTC).isoformat(), save=True)
            try:
                refresh_id = actions.start_refresh(ctx.clients.autoscaling(), request)
            except (ClientError, BotoCoreError) as exc:
                refresh_id = self._accepted_anyway(ctx, exc)
            ctx.fact("refresh_id", refresh_id, save=True)
            log.info("instance refresh %s of %s started (%s)", refresh_id, ctx.group,
                     ctx.options.action)
        final = wait_for_refresh(ctx, str(refresh_id))
        if final.status == "RollbackSuccessful":
            return _rolled_back(ctx, final)
        if final.status != "Successful":
            raise StepFailedError(f"instance refresh {refresh_id} of {ctx.group} ended "
                                  f"{final.status}: {final.status_reason or 'no reason given'}")
        version = target_version(ctx)
        now = "" if version is None else f"; {ctx.group} now runs template version {version}"
        return (f"instance refresh {refresh_id} of {ctx.group} successful after "
                f"{time.monotonic() - started:.1f} s{now}")

    @staticmethod
    def _accepted_anyway(ctx: AppContext, exc: ClientError | BotoCoreError) -> str:
        """The start failed or its answer was lost; a refresh that started since this run
        asked is ours (Auto Scaling runs one at a time), anything else is a real failure."""
        asked = datetime.fromisoformat(str(ctx.facts["refresh_requested_at"]))
        current = active_refresh(ctx)
        if current is None or current.started is None or current.started < asked:
            raise exc
        log.warning("the answer to StartInstanceRefresh was lost (%s), but refresh %s started "
                    "at %s: waiting for it", exc, current.refresh_id, current.started)
        return current.refresh_id


class RollBackActiveRefresh(Step[AppContext]):
    """``RollbackInstanceRefresh``: undo the refresh in progress (a deploy under way)."""

    name = "roll-back-refresh"
    title = "Roll back the instance refresh in progress"
    expected_seconds: ClassVar[float] = DEFAULT_ESTIMATES.instance_refresh_seconds
    marks_done = True

    def check(self, ctx: AppContext) -> Verdict:
        mine = ctx.facts.get("rollback_of")
        state = active_refresh(ctx)
        if mine and state is None:
            return done(f"refresh {mine} was rolled back")
        if state is None:
            return done("no instance refresh is in progress")
        if state.status == "RollbackInProgress":
            return run(f"refresh {state.refresh_id} is already rolling back; will wait")
        if state.desired_version is None:
            return blocked(f"refresh {state.refresh_id} has no desired configuration: Auto "
                           "Scaling cannot roll it back (use --to-version)")
        return run(f"would roll back refresh {state.refresh_id} (deploying version "
                   f"{state.desired_version}, {state.percentage or 0}% done)")

    def apply(self, ctx: AppContext) -> str:
        state = active_refresh(ctx)
        if state is None:
            return "no instance refresh was in progress any more"
        if state.status != "RollbackInProgress":
            ctx.fact("rollback_of", state.refresh_id, save=True)
            actions.rollback_refresh(ctx.clients.autoscaling(), ctx.group)
        final = wait_for_refresh(ctx, state.refresh_id)
        if final.status != "RollbackSuccessful":
            raise StepFailedError(f"the rollback of refresh {state.refresh_id} ended "
                                  f"{final.status}: {final.status_reason or 'no reason'}")
        group = probes.describe_group(ctx.clients.autoscaling(), ctx.group)
        return (f"refresh {state.refresh_id} rolled back; {ctx.group} runs template version "
                f"{group.template_version if group else '?'}")


class NewTemplateVersion(Step[AppContext]):
    """``--to-ami``: a new launch template version, the running one with another AMI."""

    name = "new-template-version"
    title = "Make a launch template version with the AMI asked for"
    expected_seconds: ClassVar[float] = DEFAULT_ESTIMATES.api_call_seconds

    def check(self, ctx: AppContext) -> Verdict:
        made = ctx.facts.get("target_version")
        if made is not None:
            return done(f"version {made} with {ctx.options.to_ami} exists")
        return run(f"would copy template version {ctx.facts.get('current_version')} of "
                   f"{ctx.facts.get('template_id')} with image {ctx.options.to_ami}")

    def apply(self, ctx: AppContext) -> str:
        assert ctx.options.to_ami is not None
        version = actions.create_template_version(
            ctx.clients.ec2(), str(ctx.facts["template_id"]),
            int(ctx.facts["current_version"]), ctx.options.to_ami,
            f"app.py rollback run {ctx.run_id}: {ctx.options.to_ami}")
        ctx.fact("target_version", version, save=True)
        return (f"template version {version} made from version "
                f"{ctx.facts['current_version']} with {ctx.options.to_ami}")


class WaitHealthy(Step[AppContext]):
    """Every desired instance in service and healthy behind the load balancer."""

    name = "wait-healthy"
    title = "Wait until the group's targets are healthy"
    expected_seconds: ClassVar[float] = DEFAULT_ESTIMATES.health_check_grace_seconds

    def _pending(self, ctx: AppContext) -> str | None:
        group = probes.describe_group(ctx.clients.autoscaling(), ctx.group)
        if group is None:
            return f"{ctx.group} is not visible"
        if group.in_service < group.desired:
            return f"{group.in_service} of {group.desired} instances in service"
        if not group.target_group_arns:
            return None  # no load balancer: in service is all there is to wait for
        targets = probes.target_counts(ctx.clients.elbv2(), group.target_group_arns)
        ours = {i.instance_id for i in group.instances}
        healthy = sum(1 for i, s in targets.states.items() if i in ours and s == "healthy")
        if healthy < group.desired:
            states = sorted(f"{i}: {s}" for i, s in targets.states.items() if i in ours)
            return f"{healthy} of {group.desired} targets healthy ({', '.join(states)})"
        return None

    def check(self, ctx: AppContext) -> Verdict:
        pending = self._pending(ctx)
        return (done(f"{ctx.group}: every desired instance in service and healthy")
                if pending is None else run(f"would wait: {pending}"))

    def apply(self, ctx: AppContext) -> str:
        started = time.monotonic()
        wait_until(f"healthy targets of {ctx.group}", lambda: self._pending(ctx),
                   lambda pending: pending, ctx.options.policy(), ctx.stop)
        return (f"{ctx.group}: every desired instance in service and healthy after "
                f"{time.monotonic() - started:.1f} s")

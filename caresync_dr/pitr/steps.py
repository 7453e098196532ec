"""The steps of a point-in-time restore and cut-over, in the order that loses nothing:

1. restore the writer at T into a new instance (the damaged one keeps serving meanwhile);
2. verify the restored database with the operator's checks, as the app's login: a restore
   that fails them is never cut over to;
3. fence the damaged writer (its own group is the restored one's too, so it moves into the
   site's no-access group): from here no write can reach it;
4. repoint the endpoint parameter the app reads at boot (SecureString, the site key);
5. replace the app instances (capacity kept), so each boots with the restored endpoint;
6. with ``--health-url``, verify the service answers writable.

The damaged instance is kept for forensics (and for the rows written after T).
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime
from typing import Any, ClassVar

import requests

from caresync_dr.app import actions as app_actions
from caresync_dr.app import probes as app_probes
from caresync_dr.app.rollout import MODES, refresh_request
from caresync_dr.estimates import DEFAULT_ESTIMATES
from caresync_dr.failover.actions import put_parameter
from caresync_dr.names import app_name
from caresync_dr.operations.errors import StepFailedError
from caresync_dr.operations.polling import wait_until
from caresync_dr.operations.steps import Step, Verdict, blocked, done, run
from caresync_dr.pitr import actions, probes
from caresync_dr.pitr.context import PitrContext
from caresync_dr.pitr.request import restore_request, restored_tags
from caresync_dr.pitr.verify import conninfo, run_checks
from caresync_dr.pitr.window import iso

log = logging.getLogger(__name__)


def unknown(ctx: PitrContext) -> Verdict | None:
    """A step cannot be judged when the preflight could not decide what it acts on."""
    plan = ctx.plan
    missing = [name for name, value in (("the damaged writer", plan.damaged),
                                        ("the restore target", plan.target),
                                        ("a restorable window", plan.window),
                                        ("the fence group", plan.fence_group)) if value is None]
    return blocked(f"not known ({', '.join(missing)}): see the preflight") if missing else None


def _target(ctx: PitrContext) -> probes.InstanceDetail | None:
    assert ctx.plan.target is not None
    return probes.describe_instance(ctx.clients.rds(), ctx.plan.target)


class RestoreInstance(Step[PitrContext]):
    name = "restore"
    title = "Restore the writer as of T into a new instance"
    expected_seconds: ClassVar[float] = DEFAULT_ESTIMATES.pitr_restore_seconds
    marks_done = True

    def check(self, ctx: PitrContext) -> Verdict:
        if (verdict := unknown(ctx)) is not None:
            return verdict
        plan = ctx.plan
        found = _target(ctx)
        if found is not None and found.status == "available":
            when = found.tags.get("caresync:restore-time")
            return done(f"{plan.target} exists, restored to {when}")
        if found is not None:
            return run(f"{plan.target} is {found.status}; will wait until it is available")
        assert plan.window is not None and plan.damaged is not None
        return run(f"would restore {plan.damaged.identifier} as of "
                   f"{iso(ctx.options.restore_time)} into {plan.target} from "
                   f"{plan.window.label}, with its subnet group, security group, parameter "
                   f"group and class, Multi-AZ {plan.damaged.multi_az}, not public")

    def apply(self, ctx: PitrContext) -> str:
        plan = ctx.plan
        assert plan.target is not None and plan.window is not None and plan.damaged is not None
        started = time.monotonic()
        if _target(ctx) is None:
            tags = restored_tags(ctx.site, int(plan.generation or 2), plan.damaged.identifier,
                                 ctx.options.restore_time, ctx.run_id)
            request = restore_request(plan.window, plan.target, ctx.options.restore_time,
                                      plan.damaged, tags)
            ctx.fact("restore_requested_at", datetime.now(UTC).isoformat(), save=True)
            status = actions.restore_to_point_in_time(ctx.clients.rds(), request)
            log.info("restore of %s into %s requested (%s)", plan.damaged.identifier,
                     plan.target, status)

        def pending(found: probes.InstanceDetail | None) -> str | None:
            if found is None:
                return f"{plan.target} is not visible yet"
            if found.status in ("failed", "incompatible-restore", "incompatible-parameters"):
                raise StepFailedError(f"the restore of {plan.target} failed: RDS reports "
                                      f"{found.status}")
            return None if found.status == "available" else f"{plan.target} is {found.status}"

        final = wait_until(f"the restore of {plan.target}", lambda: _target(ctx), pending,
                           ctx.options.policy(ctx.options.restore_timeout), ctx.stop)
        assert final is not None
        problems = []
        if final.publicly_accessible:
            problems.append("it is publicly accessible")
        if not final.storage_encrypted:
            problems.append("its storage is not encrypted")
        elif plan.site_key_arn and final.kms_key_id != plan.site_key_arn:
            problems.append(f"it is encrypted with {final.kms_key_id}, not the site key")
        if final.vpc_id != plan.damaged.vpc_id:
            problems.append(f"it is in {final.vpc_id}, not the site's {plan.damaged.vpc_id}")
        if problems:
            raise StepFailedError(f"{plan.target} was restored but {'; '.join(problems)}: not "
                                  "cutting over (delete it and look at the request)")
        ctx.fact("restored_endpoint", final.endpoint)
        return (f"{plan.target} restored as of {iso(ctx.options.restore_time)} and available "
                f"after {time.monotonic() - started:.1f} s ({final.endpoint})")


def _results(ctx: PitrContext, host: str, port: int) -> list[dict[str, Any]]:
    assert ctx.plan.secret is not None
    info = conninfo(host, port, ctx.plan.secret)
    return [{"name": r.name, "ok": r.ok, "value": r.value, "error": r.error}
            for r in run_checks(info, list(ctx.options.checks))]


class VerifyRestored(Step[PitrContext]):
    name = "verify-restored"
    title = "Verify the restored database (the operator's checks, as the app's login)"
    expected_seconds: ClassVar[float] = 10
    converges = False

    def check(self, ctx: PitrContext) -> Verdict:
        if (verdict := unknown(ctx)) is not None:
            return verdict
        names = ", ".join(c.name for c in ctx.options.checks)
        return run(f"would check {ctx.plan.target}: {names}; and compare the counts with "
                   f"{ctx.plan.damaged.identifier if ctx.plan.damaged else 'the damaged writer'}")

    def apply(self, ctx: PitrContext) -> str:
        restored = _target(ctx)
        assert restored is not None and restored.address is not None
        results = _results(ctx, restored.address, restored.port or 5432)
        ctx.fact("checks_restored", results)
        damaged = ctx.plan.damaged
        if damaged is not None and damaged.address and not ctx.facts.get("fenced"):
            ctx.fact("checks_damaged", _results(ctx, damaged.address, damaged.port or 5432))
        failed = [r for r in results if not r["ok"]]
        shown = "; ".join(f"{r['name']}: {r['value'] if r['error'] is None else r['error']}"
                          for r in results)
        if failed:
            raise StepFailedError(f"the restored database fails its checks ({shown}); nothing "
                                  f"was cut over: the damaged writer still serves")
        return f"{ctx.plan.target} passes every check: {shown}"


class FenceDamaged(Step[PitrContext]):
    name = "fence-damaged"
    title = "Fence the damaged writer (no-access security group; kept for forensics)"
    expected_seconds: ClassVar[float] = DEFAULT_ESTIMATES.security_group_change_seconds

    def check(self, ctx: PitrContext) -> Verdict:
        if (verdict := unknown(ctx)) is not None:
            return verdict
        damaged = ctx.plan.damaged
        assert damaged is not None and ctx.plan.fence_group is not None
        now = probes.describe_instance(ctx.clients.rds(), damaged.identifier)
        if now is None:
            return blocked(f"{damaged.identifier} no longer exists")
        if list(now.security_groups) == [ctx.plan.fence_group]:
            return done(f"{damaged.identifier} is in {ctx.plan.fence_group} only: fenced")
        return run(f"would move {damaged.identifier} from {', '.join(now.security_groups)} "
                   f"into {ctx.plan.fence_group} (no ingress), now")

    def apply(self, ctx: PitrContext) -> str:
        damaged = ctx.plan.damaged
        assert damaged is not None and ctx.plan.fence_group is not None
        group = ctx.plan.fence_group
        actions.fence_instance(ctx.clients.rds(), damaged.identifier, group)

        def pending(now: probes.InstanceDetail | None) -> str | None:
            if now is None:
                return f"{damaged.identifier} is not visible"
            return None if list(now.security_groups) == [group] else \
                f"{damaged.identifier} is still in {', '.join(now.security_groups)}"

        wait_until(f"the fence of {damaged.identifier}",
                   lambda: probes.describe_instance(ctx.clients.rds(), damaged.identifier),
                   pending, ctx.options.policy(300), ctx.stop)
        ctx.fact("fenced", True, save=True)
        return f"{damaged.identifier} moved into {group}: nothing reaches it (kept, not deleted)"


class RepointEndpoint(Step[PitrContext]):
    name = "repoint-endpoint"
    title = "Repoint the app's endpoint parameter to the restored writer"
    expected_seconds: ClassVar[float] = DEFAULT_ESTIMATES.api_call_seconds
    marks_done = True

    def _wanted(self, ctx: PitrContext) -> str:
        restored = _target(ctx)
        if restored is None or restored.address is None:
            raise StepFailedError(f"{ctx.plan.target} has no endpoint yet")
        return restored.endpoint

    def check(self, ctx: PitrContext) -> Verdict:
        if (verdict := unknown(ctx)) is not None:
            return verdict
        found = probes.read_endpoint(ctx.clients.ssm(), ctx.endpoint_parameter)
        restored = _target(ctx)
        if found is not None and restored is not None and restored.address is not None \
                and f"{found[0]}:{found[1]}" == restored.endpoint:
            return done(f"{ctx.endpoint_parameter} names {ctx.plan.target}")
        return run(f"would write the restored endpoint into {ctx.endpoint_parameter} "
                   f"(SecureString, {ctx.key_alias})")

    def apply(self, ctx: PitrContext) -> str:
        value = self._wanted(ctx)
        put_parameter(ctx.clients.ssm(), ctx.endpoint_parameter, value, key_id=ctx.key_alias)
        ctx.fact("repointed_at", datetime.now(UTC).isoformat(), save=True)
        return f"{ctx.endpoint_parameter} = {value}"


class RefreshApp(Step[PitrContext]):
    name = "refresh-app"
    title = "Replace the app instances so they boot with the restored endpoint"
    expected_seconds: ClassVar[float] = DEFAULT_ESTIMATES.instance_refresh_seconds

    def check(self, ctx: PitrContext) -> Verdict:
        if (verdict := unknown(ctx)) is not None:
            return verdict
        refresh_id = ctx.facts.get("app_refresh_id")
        if refresh_id:
            found = app_probes.instance_refreshes(ctx.clients.autoscaling(),
                                                  app_name(ctx.site), [str(refresh_id)])
            if found and found[0].status == "Successful":
                return done(f"refresh {refresh_id} of {app_name(ctx.site)} succeeded")
        return run(f"would replace the instances of {app_name(ctx.site)} (capacity kept)")

    def apply(self, ctx: PitrContext) -> str:
        group = app_name(ctx.site)
        autoscaling = ctx.clients.autoscaling()
        refresh_id = ctx.facts.get("app_refresh_id")
        current = (app_probes.instance_refreshes(autoscaling, group, [str(refresh_id)])
                   if refresh_id else [])
        if not current or not current[0].active:
            request = refresh_request(MODES["restart"], ctx.site, group)
            refresh_id = app_actions.start_refresh(autoscaling, request)
            ctx.fact("app_refresh_id", refresh_id, save=True)

        def pending(found: list[app_probes.RefreshState]) -> str | None:
            if not found:
                return "the refresh is not visible"
            state = found[0]
            if state.active:
                return f"{state.status}, {state.percentage or 0}%"
            if state.status != "Successful":
                raise StepFailedError(f"refresh {refresh_id} of {group} ended {state.status}: "
                                      f"{state.status_reason}; the endpoint names the restored "
                                      "writer, instances that did not boot again still use "
                                      "the fenced one: `app.py restart`")
            return None

        started = time.monotonic()
        wait_until(f"the refresh of {group}",
                   lambda: app_probes.instance_refreshes(autoscaling, group, [str(refresh_id)]),
                   pending, ctx.options.policy(ctx.options.refresh_timeout), ctx.stop)
        return (f"{group}'s instances replaced after {time.monotonic() - started:.1f} s: they "
                "use the restored writer")


class VerifyService(Step[PitrContext]):
    name = "verify-service"
    title = "Verify the service answers, writable"
    expected_seconds: ClassVar[float] = DEFAULT_ESTIMATES.verification_seconds
    converges = False

    def check(self, ctx: PitrContext) -> Verdict:
        return run(f"would GET {ctx.options.health_url} until it answers writable")

    def apply(self, ctx: PitrContext) -> str:
        url = str(ctx.options.health_url)

        def read() -> str | None:
            try:
                answer = requests.get(url, timeout=(3.0, 5.0))
                body = answer.json()
            except (requests.RequestException, json.JSONDecodeError, ValueError) as exc:
                return f"no answer ({type(exc).__name__})"
            database = body.get("database") or {} if isinstance(body, dict) else {}
            if answer.status_code == 200 and database.get("writable") is True:
                return None
            return f"HTTP {answer.status_code}, writable {database.get('writable')}"

        wait_until(f"{url} writable", read, lambda pending: pending, ctx.options.policy(600),
                   ctx.stop)
        return f"{url} answers 200 with a writable database"

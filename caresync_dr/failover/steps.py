"""The failover's steps: small idempotent units, each a read-only ``check`` and an ``apply``.

``check`` re-reads real state and returns a :class:`Verdict`: ``run`` (saying what it would
change), ``done`` (why it needn't run) or ``blocked`` (why it can't). ``apply`` makes the change,
waits for it with bounded polling, and returns one sentence saying what it did.
"""

from __future__ import annotations

import logging
import time
from abc import ABC
from datetime import UTC, datetime

from botocore.exceptions import BotoCoreError, ClientError

from caresync_dr.estimates import DEFAULT_ESTIMATES as ESTIMATES
from caresync_dr.failover import actions, probes
from caresync_dr.failover.context import FailoverContext
from caresync_dr.failover.errors import StepFailedError
from caresync_dr.failover.resources import Resource
from caresync_dr.names import site_key_alias
from caresync_dr.operations.polling import wait_until
from caresync_dr.operations.steps import Step as OpStep
from caresync_dr.operations.steps import Verdict, blocked, done, run
from caresync_dr.settings import Capacity

log = logging.getLogger(__name__)


class Step(OpStep[FailoverContext], ABC):
    """A failover step: the engine's :class:`~caresync_dr.operations.steps.Step` over the
    failover's context. ``touches`` declares :class:`~caresync_dr.failover.resources.Resource`s;
    ``marks_done`` steps define "failed over" (the no-op rerun)."""


def endpoint_value(db: probes.DbState) -> str:
    """What an endpoint parameter holds: ``address:port`` of the writer."""
    return f"{db.endpoint}:{db.port or 5432}"


# --- fencing the old primary (best effort, never waited on) ---------------------------------

def _unreachable(ctx: FailoverContext, exc: BotoCoreError) -> Verdict:
    """No answer at all (connection refused, timeout): a second call would only wait again."""
    return blocked(f"{ctx.writer_clients.region} is unreachable ({type(exc).__name__}); "
                   "not fenced, not confirmed")


class FencePrimaryApp(Step):
    name = "fence-primary-app"
    title = "Fence the old primary: scale its app tier to zero"
    expected_seconds = ESTIMATES.api_call_seconds
    best_effort = True

    def check(self, ctx: FailoverContext) -> Verdict:
        app = ctx.writer.app
        try:
            asg = probes.describe_asg(ctx.writer_clients.autoscaling(),
                                      app.auto_scaling_group_name)
        except BotoCoreError as exc:
            return _unreachable(ctx, exc)
        except ClientError as exc:
            return run(f"{ctx.writer_clients.region} refused the read ({probes.error_code(exc)}); "
                       f"will try to scale {app.auto_scaling_group_name} to 0 anyway")
        if asg is None:
            return done(f"{app.auto_scaling_group_name} does not exist in "
                        f"{ctx.writer_clients.region}")
        if asg.desired == 0 and asg.min == 0:
            return done(f"{asg.name} is already scaled to 0")
        return run(f"would scale {asg.name} from {asg.desired} to 0 instances")

    def apply(self, ctx: FailoverContext) -> str:
        app = ctx.writer.app
        actions.set_capacity(ctx.writer_clients.autoscaling(), app.auto_scaling_group_name,
                             Capacity(min=0, desired=0, max=app.production_capacity.max))
        return f"scaled {app.auto_scaling_group_name} in {ctx.writer_clients.region} to 0"


class FencePrimaryDatabase(Step):
    name = "fence-primary-database"
    title = "Fence the old primary: revoke its database security group ingress"
    expected_seconds = ESTIMATES.api_call_seconds
    best_effort = True

    def check(self, ctx: FailoverContext) -> Verdict:
        group = ctx.writer.database.security_group_id
        try:
            found = ctx.writer_clients.ec2().describe_security_groups(GroupIds=[group])
        except BotoCoreError as exc:
            return _unreachable(ctx, exc)
        except ClientError as exc:
            return run(f"{ctx.writer_clients.region} refused the read ({probes.error_code(exc)}); "
                       f"will try to revoke the ingress of {group} anyway")
        rules = sum(len(g.get("IpPermissions", [])) for g in found["SecurityGroups"])
        if rules == 0:
            return done(f"{group} has no ingress rules left")
        return run(f"would revoke {rules} ingress rule(s) of {group}")

    def apply(self, ctx: FailoverContext) -> str:
        group = ctx.writer.database.security_group_id
        revoked = actions.revoke_all_ingress(ctx.writer_clients.ec2(), group)
        return f"revoked {revoked} ingress rule(s) of {group} in {ctx.writer_clients.region}"


class FenceOldPrimaryDatabase(FencePrimaryDatabase):
    """--scope database: the primary region is healthy, so fencing is required, not best
    effort. Until the refresh has replaced every app instance, the old ones keep writing to
    the old primary; cutting its ingress first stops writes that the new writer would never
    see. Needs the in-region replicas on a security group of their own (the stack's)."""

    title = ("Fence the old primary database: revoke its security group ingress (before the "
             "app is repointed)")
    best_effort = False

    def touches(self, ctx: FailoverContext) -> tuple[Resource, ...]:
        return (Resource("security-group", ctx.inventory.primary.database.security_group_id,
                         ctx.primary, "old primary security group"),)


# --- the standby site ------------------------------------------------------------------------

def record_exposure(ctx: FailoverContext) -> None:
    """At promotion: the replica was ``seconds`` behind when last measured; if it received
    nothing since (replication stopped) and the old primary kept taking writes, up to
    ``seconds`` + the time since that measurement is lost. Both go into the report."""
    lag = ctx.facts.get("replica_lag") or {}
    seconds, at = lag.get("seconds"), lag.get("at")
    ctx.fact("data_loss_exposure_seconds", seconds)
    if seconds is not None and at:
        since = (datetime.now(UTC) - datetime.fromisoformat(str(at))).total_seconds()
        ctx.fact("data_loss_exposure_max_seconds", round(float(seconds) + max(0.0, since), 1))


# RDS statuses while a promotion it accepted is under way (it modifies, reboots, then backs up).
PROMOTING_STATUSES = ("modifying", "rebooting", "backing-up")


class PromoteDatabase(Step):
    name = "promote-database"
    title = "Promote the read replica to a standalone writer"
    expected_seconds = ESTIMATES.replica_promotion_seconds
    marks_done = True
    critical = True    # everything after it waits for the promotion: ask RDS first

    def check(self, ctx: FailoverContext) -> Verdict:
        db_id = ctx.target_database
        db = ctx.target_database_state()     # the preflight's read, when no change came since
        if db is None:
            return blocked(f"{db_id} does not exist in {ctx.target_clients.region}")
        if db.is_promoted:
            adoption = ctx.facts.get("adopted_promotion")
            if isinstance(adoption, dict) and adoption.get("database") == db_id:
                return done(f"{db_id} was promoted by hand; adopted with --adopt-promoted by "
                            f"{adoption.get('operator')} at {adoption.get('at')}")
            return done(f"{db_id} is already a standalone, available instance")
        if db.is_replica and db.status == "available":
            return run(f"would promote {db_id} (replica of {db.source}) with "
                       f"{ctx.backup_retention_days} days of backups")
        return run(f"{db_id} is {db.status} (promotion under way?); will wait for it")

    def write_ahead(self, ctx: FailoverContext) -> None:
        """The promotion is about to be asked for: its exposure and ``promotion_requested_at``
        go into the step's write-ahead record (one journal write, not two)."""
        db = ctx.target_database_state()     # the check's read
        if db is not None and db.is_replica and db.status == "available":
            record_exposure(ctx)
            ctx.fact("promotion_requested_at", datetime.now(UTC).isoformat())
            ctx.promotion_request_journaled = True

    def apply(self, ctx: FailoverContext) -> str:
        rds = ctx.target_clients.rds()
        db_id = ctx.target_database
        db = ctx.target_database_state(applying=True)   # the check's read, just made
        journaled, ctx.promotion_request_journaled = ctx.promotion_request_journaled, False
        lost = ""
        if db is not None and db.is_replica and db.status == "available":
            if not journaled:
                record_exposure(ctx)
                # Saved before RDS is asked: a crash during the promotion is resumable only
                # when the journal says the promotion was requested.
                ctx.fact("promotion_requested_at", datetime.now(UTC).isoformat(), save=True)
            try:
                status = actions.promote_replica(rds, db_id, ctx.backup_retention_days)
                log.info("promotion of %s requested (status %s)", db_id, status)
            except (ClientError, BotoCoreError) as exc:
                lost = self._accepted_anyway(ctx, exc)
        ctx.critical_sent.set()   # asked (or under way already): what waited may start now
        started = time.monotonic()

        def pending(state: probes.DbState | None) -> str | None:
            if state is None:
                return f"{db_id} is not visible"
            if state.is_promoted:
                return None
            link = f"still replicating from {state.source}" if state.is_replica else "detached"
            return f"{db_id} is {state.status}, {link}"

        final = wait_until(f"promotion of {db_id}", lambda: probes.describe_database(rds, db_id),
                           pending, ctx.options.timing.policy(ctx.wait_timeout), ctx.stop)
        assert final is not None
        ctx.fact("promoted_endpoint", endpoint_value(final))
        return (f"{db_id} promoted and available after {time.monotonic() - started:.1f} s "
                f"(backups kept {final.backup_retention_days} days){lost}")

    @staticmethod
    def _accepted_anyway(ctx: FailoverContext, exc: ClientError | BotoCoreError) -> str:
        """The request failed or its answer was lost. RDS may have accepted it all the same
        (it then shows the replica modifying, or no longer linked, and refuses a second
        request): read again and wait for that promotion instead of asking twice."""
        db = probes.describe_database(ctx.target_clients.rds(), ctx.target_database)
        under_way = db is not None and (not db.is_replica or db.status in PROMOTING_STATUSES)
        if not under_way:
            raise exc
        assert db is not None
        log.warning("the answer to the promotion request was lost (%s), but RDS accepted it: "
                    "%s is %s; waiting for it", exc, db.identifier, db.status)
        return (f"; the answer to the promotion request was lost ({type(exc).__name__}) but "
                "RDS had accepted it")


class ScaleStandbyApp(Step):
    """The app tier of the site being promoted (``ctx.target``): the standby site for a
    regional failover, either site for a planned switchover."""

    name = "scale-standby-app"
    title = "Scale the standby app tier to production capacity"
    expected_seconds = ESTIMATES.scale_up_seconds

    def _ready(self, ctx: FailoverContext, asg: probes.AsgState | None) -> str | None:
        want = ctx.target.app.production_capacity
        if asg is None:
            return "the Auto Scaling group is not visible"
        if asg.desired < want.desired or asg.min < want.min:
            return f"desired {asg.desired}, production needs {want.desired}"
        if asg.in_service < want.desired:
            return f"{asg.in_service} of {want.desired} instances in service"
        health = probes.target_health(ctx.target_clients.elbv2(),
                                      ctx.target.app.target_group_arn)
        if health.healthy < want.desired:
            return f"{health.healthy} of {want.desired} targets healthy"
        return None

    def touches(self, ctx: FailoverContext) -> tuple[Resource, ...]:
        app = ctx.target.app
        return (Resource("auto-scaling-group", app.auto_scaling_group_name, ctx.target_clients,
                         "app tier"),
                Resource("target-group", app.target_group_arn, ctx.target_clients,
                         "target group"))

    def check(self, ctx: FailoverContext) -> Verdict:
        app = ctx.target.app
        asg = probes.describe_asg(ctx.target_clients.autoscaling(), app.auto_scaling_group_name)
        if asg is None:
            return blocked(f"{app.auto_scaling_group_name} does not exist in "
                           f"{ctx.target_clients.region}")
        pending = self._ready(ctx, asg)
        if pending is None:
            return done(f"{asg.name} runs {asg.in_service} healthy instances "
                        f"(production {app.production_capacity.desired})")
        return run(f"would scale {asg.name} from {asg.desired} to "
                   f"{app.production_capacity.desired} instances ({pending})")

    def apply(self, ctx: FailoverContext) -> str:
        app = ctx.target.app
        autoscaling = ctx.target_clients.autoscaling()
        asg = probes.describe_asg(autoscaling, app.auto_scaling_group_name)
        want = app.production_capacity
        started = time.monotonic()
        if asg is not None and (asg.desired < want.desired or asg.min < want.min):
            actions.set_capacity(autoscaling, asg.name, Capacity(
                min=want.min, desired=want.desired, max=max(want.max, asg.max)))
            log.info("%s set to min %d, desired %d", asg.name, want.min, want.desired)
        wait_until(f"{app.auto_scaling_group_name} at production capacity",
                   lambda: probes.describe_asg(autoscaling, app.auto_scaling_group_name),
                   lambda state: self._ready(ctx, state),
                   ctx.options.timing.policy(ctx.wait_timeout),
                   ctx.stop)
        return (f"{app.auto_scaling_group_name} serves {want.desired} healthy instances after "
                f"{time.monotonic() - started:.1f} s")


# The key of the switch's read made before the lock (FailoverOperation.prefetch).
SWITCH_READ = "traffic-switch"


def read_switch(ctx: FailoverContext) -> str | None:
    """The traffic switch's value in the standby region (None: no object)."""
    sw = ctx.inventory.traffic_switch
    return probes.read_switch(ctx.standby.s3(), sw.bucket, sw.key)


class SwitchTraffic(Step):
    name = "switch-traffic"
    title = ("Move traffic: write the promoted site's value (FAILOVER, or PRIMARY when reversed) "
             "into the standby-region switch (S3, data plane)")
    expected_seconds = ESTIMATES.api_call_seconds
    marks_done = True

    def check(self, ctx: FailoverContext) -> Verdict:
        sw = ctx.inventory.traffic_switch
        early = ctx.pre_lock_reads.pop(SWITCH_READ, None)   # before the lock only
        try:
            value = read_switch(ctx) if early is None else early.result()
        except (ClientError, BotoCoreError) as exc:
            if not ctx.reversed:
                raise
            return done(_switch_unreachable(ctx, exc))
        if value == ctx.switch_value:
            return done(f"s3://{sw.bucket}/{sw.key} already holds {ctx.switch_value}")
        return run(f"would change s3://{sw.bucket}/{sw.key} from {value} to "
                   f"{ctx.switch_value}; Route 53 then moves the record to the "
                   f"{ctx.target_site} site")

    def apply(self, ctx: FailoverContext) -> str:
        sw = ctx.inventory.traffic_switch
        s3 = ctx.standby.s3()
        try:
            actions.put_object(s3, sw.bucket, sw.key, ctx.switch_value, "text/plain")
        except (ClientError, BotoCoreError) as exc:
            if not ctx.reversed:
                raise
            ctx.fact("switch_unreachable", True)
            return _switch_unreachable(ctx, exc)
        seen = probes.read_switch(s3, sw.bucket, sw.key)
        if seen != ctx.switch_value:
            raise StepFailedError(f"wrote {ctx.switch_value} to s3://{sw.bucket}/{sw.key} "
                                  f"but read back {seen!r}")
        ctx.fact("switched_at", datetime.now(UTC).isoformat())
        return f"s3://{sw.bucket}/{sw.key} = {ctx.switch_value}"


def _switch_unreachable(ctx: FailoverContext, exc: ClientError | BotoCoreError) -> str:
    """A reversed failover: the switch lives in the standby region, the one that failed.
    Route 53's checkers read an unanswered (or erroring) switch as "FAILOVER not found", which
    the inverted check turns into healthy: the PRIMARY record serves once the primary site's
    endpoint check passes (components/traffic_switch.py). The verify step proves it: it
    accepts only an answer from the promoted region."""
    sw = ctx.inventory.traffic_switch
    what = (probes.error_code(exc) if isinstance(exc, ClientError)
            else type(exc).__name__)
    return (f"s3://{sw.bucket}/{sw.key} in {sw.region} did not answer ({what}): Route 53 "
            f"reads an unreachable switch as {sw.primary_value} (inverted check), so the "
            "primary site serves; the verify step confirms it. Write "
            f"{sw.primary_value} into it once {sw.region} is back")


class PinPrimaryRecord(Step):
    """Reversed only (the standby region failed after a failback). The PRIMARY record's
    calculated check needs both the primary endpoint check and the inverted switch check; the
    switch in the failed region still holds FAILOVER, so the moment that region answers again
    Route 53 would send users back to the old writer's site, which nothing could fence while
    it was down. Route 53's control plane is in us-east-1, the region being promoted: make the
    calculated check follow the primary endpoint check alone (HealthThreshold 1), so a
    recovered standby region cannot take traffic back. Best effort: the verify step proves
    who serves now, and the next ``pulumi up -s dr --refresh`` restores the check (a plain
    ``pulumi up`` compares with its state, not the live check, and leaves it pinned; write
    PRIMARY into the switch first: docs/failover-reference.md, "The reverse direction")."""

    name = "pin-primary-record"
    title = ("Pin DNS to the primary site: its record's calculated check stops reading the "
             "switch (Route 53 control plane, best effort)")
    expected_seconds = ESTIMATES.api_call_seconds
    best_effort = True

    def check(self, ctx: FailoverContext) -> Verdict:
        sw = ctx.inventory.traffic_switch
        endpoint = ctx.inventory.primary.health_check_id
        try:
            config = ctx.route53.route53().get_health_check(
                HealthCheckId=sw.primary_health_check_id)["HealthCheck"]["HealthCheckConfig"]
        except BotoCoreError as exc:
            return blocked(f"Route 53's API did not answer ({type(exc).__name__}); not pinned: "
                           f"write {sw.primary_value} into s3://{sw.bucket}/{sw.key} before "
                           f"{sw.region} answers again")
        except ClientError as exc:
            return run(f"Route 53 refused the read ({probes.error_code(exc)}); will try to pin "
                       f"{sw.primary_health_check_id} anyway")
        children = list(config.get("ChildHealthChecks") or [])
        threshold = config.get("HealthThreshold")
        if children == [endpoint] and threshold == 1:
            return done(f"{sw.primary_health_check_id} already follows only {endpoint}")
        return run(f"would make {sw.primary_health_check_id} (children {children}, threshold "
                   f"{threshold}) follow only the primary endpoint check {endpoint}: a "
                   f"recovered {sw.region} cannot take traffic back through its switch")

    def apply(self, ctx: FailoverContext) -> str:
        sw = ctx.inventory.traffic_switch
        endpoint = ctx.inventory.primary.health_check_id
        ctx.route53.route53().update_health_check(
            HealthCheckId=sw.primary_health_check_id, ChildHealthChecks=[endpoint],
            HealthThreshold=1)
        return (f"{sw.primary_health_check_id} follows only {endpoint}: the switch in "
                f"{sw.region} no longer moves traffic (`pulumi up -s dr --refresh` restores it)")


class ObserveRoute53(Step):
    name = "observe-route53"
    title = "Observe Route 53 checkers on the switch (control plane, best effort)"
    expected_seconds = ESTIMATES.api_call_seconds
    best_effort = True
    converges = False

    def check(self, ctx: FailoverContext) -> Verdict:
        return run("would read the switch health check status from Route 53 (us-east-1)")

    def apply(self, ctx: FailoverContext) -> str:
        check_id = ctx.inventory.traffic_switch.health_check_id
        status = probes.route53_check_status(ctx.route53.route53(), check_id)
        return f"switch health check {check_id}: {status}"


class VerifyService(Step):
    name = "verify"
    title = "Verify the public health URL answers from the new writer"
    expected_seconds = ESTIMATES.verification_seconds
    converges = False

    def check(self, ctx: FailoverContext) -> Verdict:
        return run(f"would GET {ctx.health_url} until it reports status ok and a writable "
                   f"database{self._region_hint(ctx)}")

    @staticmethod
    def _region_hint(ctx: FailoverContext) -> str:
        return f" from {ctx.target.region}" if ctx.options.scope == "region" else ""

    def apply(self, ctx: FailoverContext) -> str:
        url = ctx.health_url
        expected_region = ctx.target.region
        started = time.monotonic()
        # A regional failover must see the standby region named: an answer without it may
        # come from the old site. Inside one region (--scope database) it is optional.
        require_region = ctx.options.scope == "region"
        reading = wait_until(f"{url} to report a writable database",
                             lambda: probes.health_of(url, expected_region,
                                                      require_region=require_region),
                             lambda r: None if r.ok else r.detail,
                             ctx.options.timing.policy(ctx.options.timing.verify_timeout_seconds),
                             ctx.stop)
        ctx.fact("serving_at", datetime.now(UTC).isoformat())
        return f"{url}: {reading.detail} after {time.monotonic() - started:.1f} s"


# --- --scope database: repoint the app in the primary region --------------------------------

class PointAppAtDatabase(Step):
    name = "point-app-at-database"
    title = "Repoint the app: write the new writer's endpoint into its endpoint parameter"
    expected_seconds = ESTIMATES.api_call_seconds
    marks_done = True

    def _endpoint(self, ctx: FailoverContext) -> str | None:
        db = probes.describe_database(ctx.target_clients.rds(), ctx.target_database)
        return None if db is None or db.endpoint is None else endpoint_value(db)

    def touches(self, ctx: FailoverContext) -> tuple[Resource, ...]:
        return (Resource("parameter", ctx.target.database.endpoint_parameter,
                         ctx.target_clients, "endpoint parameter"),)

    def check(self, ctx: FailoverContext) -> Verdict:
        parameter = ctx.target.database.endpoint_parameter
        endpoint = self._endpoint(ctx)
        if endpoint is None:
            return blocked(f"{ctx.target_database} has no endpoint yet")
        current = probes.read_parameter(ctx.target_clients.ssm(), parameter)
        if current == endpoint:
            return done(f"{parameter} already names {endpoint}")
        return run(f"would change {parameter} from {current} to {endpoint}")

    def apply(self, ctx: FailoverContext) -> str:
        parameter = ctx.target.database.endpoint_parameter
        endpoint = self._endpoint(ctx)
        if endpoint is None:
            raise StepFailedError(f"{ctx.target_database} has no endpoint")
        # A SecureString with the site key, as the stack created it (caresync_dr/site_keys.py).
        actions.put_parameter(ctx.target_clients.ssm(), parameter, endpoint,
                              key_id=site_key_alias(ctx.target_site))
        return f"{parameter} = {endpoint}"


class RefreshApp(Step):
    name = "refresh-app"
    title = "Replace the app instances so each boots reading the new endpoint"
    expected_seconds = ESTIMATES.instance_refresh_seconds

    def touches(self, ctx: FailoverContext) -> tuple[Resource, ...]:
        return (Resource("auto-scaling-group", ctx.target.app.auto_scaling_group_name,
                         ctx.target_clients, "app tier"),)

    def check(self, ctx: FailoverContext) -> Verdict:
        asg = ctx.target.app.auto_scaling_group_name
        requested = ctx.facts.get("promotion_requested_at")
        since = datetime.fromisoformat(requested) if requested else ctx.started_at
        started = probes.refresh_started_since(ctx.target_clients.autoscaling(), asg, since)
        if started is not None:
            return done(started)
        return run(f"would start a rolling instance refresh of {asg}")

    def apply(self, ctx: FailoverContext) -> str:
        asg = ctx.target.app.auto_scaling_group_name
        refresh_id = actions.start_instance_refresh(ctx.target_clients.autoscaling(), asg)
        ctx.fact("instance_refresh_id", refresh_id)
        return f"instance refresh {refresh_id} of {asg} started"

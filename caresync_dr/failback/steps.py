"""The failback's steps: each a read-only ``check`` and an ``apply`` (the engine's contract).

Order (``plan.py``): write the stack settings, converge the writer's stack (backups now
replicate and copy *from* the active site), converge the re-protected stack (a new generation
replicating from the writer; the refresh also undoes failover.py's fencing), wait until it
replicates within the RPO, verify that the traffic switch and health checks are armed for the
new direction, then retire the generation it replaces (a final snapshot is kept).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from caresync_dr.failback.context import FailbackContext, same_source
from caresync_dr.failback.deploy import DeployFailedError
from caresync_dr.failback.stack_files import (
    GenerationSettings,
    read_generation_settings,
    write_generation_settings,
)
from caresync_dr.failover import actions, probes
from caresync_dr.inventory import parse_inventory
from caresync_dr.names import db_identifier
from caresync_dr.operations.errors import StepFailedError
from caresync_dr.operations.polling import PollPolicy, wait_until
from caresync_dr.operations.steps import Found, Step, Verdict, blocked, done, run
from caresync_dr.settings import SettingsError

log = logging.getLogger(__name__)
DEPLOY_SECONDS = 600.0


def _progress(line: str) -> None:
    log.info("%s %s", datetime.now(UTC).strftime("%H:%M:%SZ"), line)


@dataclass(frozen=True)
class Writer:
    """The active writer: the preflight refuses the run when it is not there."""

    ctx: FailbackContext

    @property
    def label(self) -> str:
        return "active writer"

    @property
    def key(self) -> tuple[str, str]:
        return ("rds", self.ctx.direction.writer_identifier)

    def read(self) -> Found:
        d = self.ctx.direction
        db = probes.describe_database(self.ctx.clients[d.active].rds(), d.writer_identifier)
        ok = db is not None and not db.is_replica and db.status == "available"
        return Found(ok, f"{d.writer_identifier} in {self.ctx.region(d.active)}: "
                         f"{'not found' if db is None else db.status}")


@dataclass(frozen=True)
class Bucket:
    ctx: FailbackContext
    site: str

    @property
    def label(self) -> str:
        return f"{self.site} backup bucket"

    @property
    def key(self) -> tuple[str, str]:
        return ("s3", self.ctx.bucket(self.site))

    def read(self) -> Found:
        name = self.ctx.bucket(self.site)
        try:
            self.ctx.clients[self.site].s3().head_bucket(Bucket=name)
        except ClientError as exc:
            return Found(False, f"{name}: {probes.error_code(exc)}")
        return Found(True, f"{name} in {self.ctx.region(self.site)}")


@dataclass(frozen=True)
class DeployTool:
    ctx: FailbackContext

    @property
    def label(self) -> str:
        return "pulumi up"

    @property
    def key(self) -> str:
        return "deployer"

    def read(self) -> Found:
        why = self.ctx.deployer.unavailable()
        return Found(why is None, why or self.ctx.deployer.command_line(
            self.ctx.direction.protected_stack))


def replicates_to(ctx: FailbackContext, source: str, target: str) -> bool:
    """The source site's backup bucket has a replication rule into the target's bucket."""
    try:
        config = ctx.clients[source].s3().get_bucket_replication(Bucket=ctx.bucket(source))
    except ClientError as exc:
        if probes.error_code(exc) == "ReplicationConfigurationNotFoundError":
            return False
        raise
    wanted = f"arn:aws:s3:::{ctx.bucket(target)}"
    return any(r.get("Status") == "Enabled" and r.get("Destination", {}).get("Bucket") == wanted
               for r in config["ReplicationConfiguration"].get("Rules", []))


class WriteStackSettings(Step[FailbackContext]):
    name = "write-stack-settings"
    title = "Write the stack settings: the active site, the new generation, the one retiring"
    expected_seconds = 1.0

    def _wanted(self, ctx: FailbackContext) -> list[tuple[str, Any]]:
        d = ctx.direction
        active = read_generation_settings(d.active_stack, ctx.options.project_dir)
        return [(d.active_stack, GenerationSettings(d.active, active.generation,
                                                    active.retiring)),
                (d.protected_stack, d.wanted(retiring=d.retiring is not None))]

    def check(self, ctx: FailbackContext) -> Verdict:
        todo = [f"Pulumi.{stack}.yaml: {wanted.describe()}" for stack, wanted in self._wanted(ctx)
                if read_generation_settings(stack, ctx.options.project_dir) != wanted]
        if not todo:
            return done("both stack files already say so")
        return run("would write " + "; ".join(todo))

    def apply(self, ctx: FailbackContext) -> str:
        written = []
        for stack, wanted in self._wanted(ctx):
            try:
                if write_generation_settings(stack, ctx.options.project_dir, wanted):
                    written.append(f"Pulumi.{stack}.yaml: {wanted.describe()}")
            except SettingsError as exc:
                raise StepFailedError(f"Pulumi.{stack}.yaml refused: {exc}") from exc
        return ("wrote " + "; ".join(written) + " (commit them)") if written else \
            "the stack files already said so"


class DeployActiveStack(Step[FailbackContext]):
    name = "deploy-active-stack"
    title = "pulumi up the writer's stack: backups replicate and copy towards the other site"
    expected_seconds = DEPLOY_SECONDS

    def touches(self, ctx: FailbackContext) -> tuple[Any, ...]:
        d = ctx.direction
        return (Writer(ctx), Bucket(ctx, d.active), Bucket(ctx, d.protected), DeployTool(ctx))

    def _done(self, ctx: FailbackContext) -> str | None:
        d = ctx.direction
        if not replicates_to(ctx, d.active, d.protected):
            return (f"{ctx.bucket(d.active)} does not replicate into "
                    f"{ctx.bucket(d.protected)}")
        if d.active_stack == "dr" and ctx.inventory.active_site != d.active:
            return f"the failover inventory still says activeSite {ctx.inventory.active_site}"
        return None

    def check(self, ctx: FailbackContext) -> Verdict:
        pending = self._done(ctx)
        if pending is None:
            return done(f"{ctx.bucket(ctx.direction.active)} already replicates into "
                        f"{ctx.bucket(ctx.direction.protected)}")
        return run(f"would run `{ctx.deployer.command_line(ctx.direction.active_stack)}` "
                   f"({pending})")

    def apply(self, ctx: FailbackContext) -> str:
        stack = ctx.direction.active_stack
        ctx.deployer.up(stack, _progress)
        if not replicates_to(ctx, ctx.direction.active, ctx.direction.protected):
            raise DeployFailedError(f"after `pulumi up -s {stack}` "
                                    f"{ctx.bucket(ctx.direction.active)} still does not "
                                    "replicate to the other site")
        return (f"pulumi up -s {stack}: {ctx.bucket(ctx.direction.active)} replicates into "
                f"{ctx.bucket(ctx.direction.protected)}, recovery points copy into the other "
                "site's vault")


class DeployProtectedStack(Step[FailbackContext]):
    name = "deploy-protected-stack"
    title = "pulumi up the other stack: a new database generation replicating from the writer"
    expected_seconds = DEPLOY_SECONDS
    marks_done = True

    def touches(self, ctx: FailbackContext) -> tuple[Any, ...]:
        return (Writer(ctx), DeployTool(ctx))

    def _replica(self, ctx: FailbackContext) -> probes.DbState | None:
        d = ctx.direction
        return probes.describe_database(ctx.clients[d.protected].rds(), d.target_identifier)

    def check(self, ctx: FailbackContext) -> Verdict:
        d = ctx.direction
        db = self._replica(ctx)
        if db is not None and same_source(db.source, d.writer_arn):
            return done(f"{d.target_identifier} replicates from {d.writer_identifier}")
        if db is not None:
            return blocked(f"{d.target_identifier} exists but is not a replica of "
                           f"{d.writer_identifier} (source {db.source}): a generation is "
                           "never reused; set dbGeneration higher by hand")
        return run(f"would run `{ctx.deployer.command_line(d.protected_stack)}`: creates "
                   f"{d.target_identifier}, a replica of {d.writer_identifier}")

    def apply(self, ctx: FailbackContext) -> str:
        d = ctx.direction
        ctx.fact("new_generation_built_at", datetime.now(UTC).isoformat(), save=True)
        ctx.deployer.up(d.protected_stack, _progress)
        db = self._replica(ctx)
        if db is None or not same_source(db.source, d.writer_arn):
            raise DeployFailedError(f"after `pulumi up -s {d.protected_stack}` "
                                    f"{d.target_identifier} is not a replica of "
                                    f"{d.writer_identifier}")
        return (f"pulumi up -s {d.protected_stack}: {d.target_identifier} created in "
                f"{ctx.region(d.protected)}, replicating from {d.writer_identifier}")


class WaitForReplica(Step[FailbackContext]):
    name = "wait-for-new-generation"
    title = "Wait until the new generation is available and replicates within the RPO"
    expected_seconds = 3600.0   # RDS: hours for a large database (a snapshot copy, then WAL)

    def _pending(self, ctx: FailbackContext) -> str | None:
        d = ctx.direction
        clients = ctx.clients[d.protected]
        db = probes.describe_database(clients.rds(), d.target_identifier)
        if db is None:
            return f"{d.target_identifier} not found"
        if db.status != "available":
            return f"{d.target_identifier} is {db.status}"
        if db.replication_status not in (None, probes.REPLICATING):
            return f"read replication is {db.replication_status}"
        lag = probes.replica_lag(clients.cloudwatch(), d.target_identifier, 60)
        rpo = ctx.rpo_minutes * 60
        if not lag.replication_active:
            return f"ReplicaLag: {lag.describe()}"
        bound = lag.bound()
        if bound is None or bound > rpo:
            return f"ReplicaLag {lag.describe()}; the RPO is {rpo} s"
        ctx.facts["new_generation_lag"] = lag.as_fact()
        return None

    def check(self, ctx: FailbackContext) -> Verdict:
        pending = self._pending(ctx)
        if pending is None:
            return done(f"{ctx.direction.target_identifier} replicates within the RPO")
        return run(f"would wait: {pending}")

    def apply(self, ctx: FailbackContext) -> str:
        policy = PollPolicy(interval=ctx.options.poll_seconds,
                            max_interval=max(ctx.options.poll_seconds, 30.0),
                            timeout=ctx.options.wait_timeout)
        started = time.monotonic()
        wait_until(f"{ctx.direction.target_identifier} to replicate",
                   lambda: self._pending(ctx), lambda pending: pending, policy, ctx.stop)
        return (f"{ctx.direction.target_identifier} available and replicating within the RPO "
                f"after {time.monotonic() - started:.1f} s")


class RefreshProtectedApp(Step[FailbackContext]):
    """The re-protected site's app instances read the database endpoint at boot; the endpoint
    parameter now names the new generation, so replace them (a rolling instance refresh, as
    failover.py does after repointing)."""

    name = "refresh-protected-app"
    title = "Replace the re-protected site's app instances so they boot on the new generation"
    expected_seconds = 600.0

    def check(self, ctx: FailbackContext) -> Verdict:
        d = ctx.direction
        asg = ctx.site(d.protected).app.auto_scaling_group_name
        built = ctx.facts.get("new_generation_built_at")
        since = datetime.fromisoformat(built) if built else ctx.started_at
        started = probes.refresh_started_since(ctx.clients[d.protected].autoscaling(), asg,
                                               since)
        if started is not None:
            return done(started)
        return run(f"would start a rolling instance refresh of {asg}")

    def apply(self, ctx: FailbackContext) -> str:
        d = ctx.direction
        asg = ctx.site(d.protected).app.auto_scaling_group_name
        refresh_id = actions.start_instance_refresh(ctx.clients[d.protected].autoscaling(), asg)
        return f"instance refresh {refresh_id} of {asg} started"


class VerifyArmed(Step[FailbackContext]):
    name = "verify-armed"
    title = "Verify the traffic switch, health checks and re-protected site are armed"
    expected_seconds = 5.0
    converges = False

    def problems(self, ctx: FailbackContext) -> tuple[list[str], list[str]]:
        """(problems, what was seen) for the new direction."""
        d = ctx.direction
        inv = ctx.inventory
        seen: list[str] = []
        problems: list[str] = []
        switch = probes.read_switch(ctx.clients["standby"].s3(), inv.traffic_switch.bucket,
                                    inv.traffic_switch.key)
        wanted = (inv.traffic_switch.failover_value if d.active == "standby"
                  else inv.traffic_switch.primary_value)
        (seen if switch == wanted else problems).append(f"traffic switch {switch}")
        group = ctx.site(d.protected).database.security_group_id
        rules = sum(len(g.get("IpPermissions", [])) for g in ctx.clients[d.protected].ec2()
                    .describe_security_groups(GroupIds=[group])["SecurityGroups"])
        (seen if rules else problems).append(
            f"{d.protected} database group {group}: {rules} ingress rule(s)"
            + ("" if rules else " (still fenced)"))
        app = ctx.site(d.protected).app
        asg = probes.describe_asg(ctx.clients[d.protected].autoscaling(),
                                  app.auto_scaling_group_name)
        desired = 0 if asg is None else asg.desired
        (seen if desired > 0 else problems).append(
            f"{d.protected} app {app.auto_scaling_group_name}: {desired} instance(s)")
        route53 = ctx.clients["primary"].route53()
        for label, check_id in (("primary record", inv.traffic_switch.primary_health_check_id),
                                ("switch", inv.traffic_switch.health_check_id),
                                ("primary site", inv.primary.health_check_id),
                                ("standby site", inv.standby.health_check_id)):
            try:
                route53.get_health_check(HealthCheckId=check_id)
                seen.append(f"{label} health check {check_id}")
            except ClientError as exc:
                problems.append(f"{label} health check {check_id}: {probes.error_code(exc)}")
        try:
            pinned = probes.switch_pin(route53, inv.traffic_switch.primary_health_check_id,
                                       inv.traffic_switch.health_check_id)
        except ClientError:
            pinned = None       # named above: the check itself is missing
        if pinned is not None:
            problems.append(f"primary record pinned by a reversed failover: {pinned} "
                            "(`pulumi up -s dr --refresh` restores it)")
        if replicates_to(ctx, d.protected, d.active):
            problems.append(f"{ctx.bucket(d.protected)} still replicates into the writer's "
                            "bucket")
        return problems, seen

    def check(self, ctx: FailbackContext) -> Verdict:
        return run("would verify the traffic switch, the four health checks, the re-protected "
                   "site's database ingress and app capacity")

    def apply(self, ctx: FailbackContext) -> str:
        problems, seen = self.problems(ctx)
        if problems:
            raise StepFailedError("not armed for the new direction: " + "; ".join(problems))
        return "armed: " + "; ".join(seen)


class RefreshInventory(Step[FailbackContext]):
    """The dr stack writes the failover inventory from both stacks' outputs; after prod got a
    new generation it still names the old one until dr is deployed again. failover.py and the
    switchover read it, so the run ends with it naming both sites' current databases."""

    name = "refresh-inventory"
    title = "pulumi up dr: the failover inventory names both sites' current databases"
    expected_seconds = DEPLOY_SECONDS
    marks_done = True

    def _pending(self, ctx: FailbackContext) -> str | None:
        d = ctx.direction
        text = probes.read_parameter(ctx.clients["standby"].ssm(), ctx.inventory_parameter)
        if text is None:
            return f"{ctx.inventory_parameter} not found"
        inventory = parse_inventory(text)
        wanted = {d.active: d.writer_identifier, d.protected: d.target_identifier}
        seen = {site: (inventory.primary if site == "primary" else inventory.standby)
                .database.identifier for site in wanted}
        if inventory.active_site != d.active or seen != wanted:
            return (f"it says activeSite {inventory.active_site}, databases "
                    + ", ".join(f"{k} {v}" for k, v in seen.items()))
        ctx.inventory = inventory
        return None

    def check(self, ctx: FailbackContext) -> Verdict:
        pending = self._pending(ctx)
        if pending is None:
            return done("the failover inventory names both sites' current databases")
        return run(f"would run `{ctx.deployer.command_line('dr')}` ({pending})")

    def apply(self, ctx: FailbackContext) -> str:
        ctx.deployer.up("dr", _progress)
        pending = self._pending(ctx)
        if pending is not None:
            raise DeployFailedError(f"after `pulumi up -s dr` the failover inventory: {pending}")
        return "pulumi up -s dr: the failover inventory names both sites' current databases"


class RetireOldGeneration(Step[FailbackContext]):
    name = "retire-old-generation"
    title = "Retire the replaced generation (a writer leaves its final snapshot)"
    expected_seconds = DEPLOY_SECONDS

    def check(self, ctx: FailbackContext) -> Verdict:
        d = ctx.direction
        settings = read_generation_settings(d.protected_stack, ctx.options.project_dir)
        old = d.retiring
        if old is None and settings.retiring is None:
            return done("no generation is retiring")
        if ctx.options.keep_old_generation:
            return done("kept on request (--keep-old-generation): retire it later with "
                        f"`pulumi config rm dbRetiring -s {d.protected_stack}` and `pulumi up`")
        name = db_identifier(d.protected, old.generation) if old else "the old generation"
        snapshot = (f" with the final snapshot {name}-final"
                    if old is not None and old.role == "writer" else "")
        return run(f"would remove dbRetiring from Pulumi.{d.protected_stack}.yaml and run "
                   f"`{ctx.deployer.command_line(d.protected_stack)}`: deletes {name}"
                   f"{snapshot}")

    def apply(self, ctx: FailbackContext) -> str:
        d = ctx.direction
        try:
            write_generation_settings(d.protected_stack, ctx.options.project_dir,
                                      d.wanted(retiring=False))
        except SettingsError as exc:
            raise StepFailedError(f"Pulumi.{d.protected_stack}.yaml refused: {exc}") from exc
        ctx.deployer.up(d.protected_stack, _progress)
        old = d.retiring
        if old is None:
            return "nothing was retiring"
        name = db_identifier(d.protected, old.generation)
        db = probes.describe_database(ctx.clients[d.protected].rds(), name)
        if db is not None and db.status != "deleting":
            raise DeployFailedError(f"after `pulumi up -s {d.protected_stack}` {name} is still "
                                    f"{db.status}")
        return (f"retired {name} (Pulumi.{d.protected_stack}.yaml without dbRetiring)"
                + (f"; final snapshot {name}-final" if old.role == "writer" else ""))

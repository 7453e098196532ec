"""Readiness checks: the ``--check`` table, and the (smaller) preflight a real run must pass.

Each check reads state only. ``blocks`` marks what a real run refuses on; the others (e.g.
"is replicating", which is expected to be false once the primary region is gone) only make a
daily ``--check`` fail, so the team hears about it before the disaster.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from botocore.exceptions import BotoCoreError, ClientError

from caresync_dr.failover import probes
from caresync_dr.failover.context import FailoverContext
from caresync_dr.failover.lock import FailoverLock
from caresync_dr.inventory import INVENTORY_VERSION

# RDS statuses while a promotion it accepted is under way (it modifies, reboots, then backs up).
PROMOTING_STATUSES = ("modifying", "rebooting", "backing-up")
# How far back to look for the last non-negative ReplicaLag: RDS reports -1 every minute once
# the source is gone, and a failover may start hours into the outage. One request at a 60 s
# period returns at most 1,440 datapoints, hence the limit.
LAG_LOOKBACK_MINUTES = 180
LAG_LOOKBACK_LIMIT_MINUTES = 1440


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    blocks: bool = True        # a real run refuses when this fails
    overridden: bool = False   # failed, but --force told us to go on

    @property
    def result(self) -> str:
        return "OVERRIDE" if self.overridden else ("ok" if self.ok else "FAIL")


def _guard(name: str, blocks: bool, body: Callable[[], Check]) -> Check:
    """A probe that errors is a failed check naming the error, never a crash."""
    try:
        return body()
    except (ClientError, BotoCoreError) as exc:
        return Check(name, False, f"could not read: {exc}", blocks)


def run_checks(ctx: FailoverContext, daily: bool) -> list[Check]:
    """All checks for the run's scope. ``daily``: the --check set (stricter, no resume)."""
    clients = ctx.target_clients
    db_id = ctx.target_database
    checks: list[Check] = [_inventory(ctx)]
    state: list[probes.DbState | None] = []

    def exists() -> Check:
        db = probes.describe_database(clients.rds(), db_id)
        state.append(db)
        if db is None:
            return Check("replica exists", False,
                         f"{db_id} not found in {clients.region}")
        return Check("replica exists", True, f"{db_id} in {clients.region}")

    checks.append(_guard("replica exists", True, exists))
    db = state[0] if state else None
    resuming = ctx.options.resume and not daily
    # A resumed run whose promotion RDS already accepted: the promote step waits for it.
    requested = ctx.facts.get("promotion_requested_at") if resuming else None
    if db is not None:
        checks.append(_is_replica(ctx, db, resuming))
        checks.append(_available(db, requested))
        if daily:
            checks.append(Check(
                "replica replicating", db.replication_status == "replicating"
                and db.replication_normal is True,
                f"read replication status {db.replication_status or 'not reported'}",
                blocks=False))
        checks.append(_guard("replica lag within RPO", True, lambda: _lag(ctx, db, daily)))
    site = ctx.target
    if daily:
        # A real run finds a missing group in its scale step; the launch template and target
        # reads stay out of its way (the EC2 client alone costs a noticeable start-up time).
        checks.append(_guard("app tier", True, lambda: _app(ctx)))
    if ctx.options.scope == "region":
        if daily:
            checks.append(_guard("load balancer targets", False, lambda: _targets(ctx)))
        checks.append(_guard("traffic switch", True, lambda: _switch(ctx, daily)))
        if daily:
            checks.append(_guard("replica follows the writer", False,
                                 lambda: _follows_writer(ctx)))
    else:
        checks.append(_guard("endpoint parameter", True, lambda: Check(
            "endpoint parameter",
            probes.read_parameter(ctx.primary.ssm(), site.database.endpoint_parameter)
            is not None, f"{site.database.endpoint_parameter} in {ctx.primary.region}")))
    if daily:
        checks.append(_guard("lock free", False, lambda: _lock(ctx)))
    return checks


def _inventory(ctx: FailoverContext) -> Check:
    """The document must describe the stack asked for (its version was checked on parsing:
    another version is a usage error before any check runs)."""
    inv = ctx.inventory
    detail = (f"version {inv.version} (this tool reads {INVENTORY_VERSION}), stack {inv.stack}, "
              f"{inv.primary.region} -> {inv.standby.region}")
    if inv.stack != ctx.options.stack:
        return Check("inventory", False, f"the document is the {inv.stack!r} stack's, not "
                     f"--stack {ctx.options.stack!r}: {detail}")
    return Check("inventory", True, detail)


def _same_source(reported: str | None, expected: str) -> bool:
    """RDS reports a replica's source by identifier or by ARN (the stack names even in-region
    sources by ARN, as the provider requires with a subnet group); both name one instance."""
    if reported is None:
        return False
    if reported == expected:
        return True
    if expected.startswith("arn:") and reported.startswith("arn:"):
        return False
    return reported.rsplit(":", 1)[-1] == expected.rsplit(":", 1)[-1]


def _is_replica(ctx: FailoverContext, db: probes.DbState, resuming: bool) -> Check:
    name = "is a read replica"
    source = ctx.target_source
    if db.is_replica:
        if not _same_source(db.source, source):
            return Check(name, False, f"replicates from {db.source}, the inventory expects "
                         f"{source}")
        return Check(name, True, f"of {db.source}")
    if resuming:
        return Check(name, True, "already promoted (resuming)")
    return Check(name, False, f"{db.identifier} is not a read replica (no "
                 "ReadReplicaSourceDBInstanceIdentifier); if it was promoted on purpose, "
                 "continue with --resume")


def _available(db: probes.DbState, promotion_requested: str | None) -> Check:
    name = "replica available"
    if db.status == "available":
        return Check(name, True, f"status {db.status}")
    if promotion_requested and db.status in PROMOTING_STATUSES:
        return Check(name, True, f"status {db.status}: the promotion requested at "
                     f"{promotion_requested} is under way; the promote step waits for it")
    return Check(name, False, f"status {db.status}")


def _lag(ctx: FailoverContext, db: probes.DbState, daily: bool) -> Check:
    name = "replica lag within RPO"
    rpo_s = ctx.inventory.objectives.rpo_minutes * 60
    if not db.is_replica and not daily:
        return Check(name, True, "already promoted; lag no longer applies")
    requested = ctx.facts.get("promotion_requested_at")
    if ctx.options.resume and not daily and requested:
        return Check(name, True, f"promotion already requested at {requested}; the exposure "
                     "was recorded then")
    objectives = ctx.inventory.objectives
    reading = probes.replica_lag(ctx.target_clients.cloudwatch(), db.identifier,
                                 window_minutes=min(LAG_LOOKBACK_LIMIT_MINUTES, max(
                                     LAG_LOOKBACK_MINUTES, objectives.rpo_minutes,
                                     objectives.rto_minutes)))
    ctx.facts.setdefault("replica_lag", {"seconds": reading.seconds,
                                         "at": reading.at.isoformat() if reading.at else None,
                                         "replication_active": reading.replication_active})
    ok = reading.seconds is not None and reading.seconds <= rpo_s
    detail = f"{reading.describe()}, RPO {rpo_s} s"
    if not ok and ctx.options.force and not daily:
        return Check(name, False, detail + "; overridden by --force", overridden=True)
    return Check(name, ok, detail)


def _follows_writer(ctx: FailoverContext) -> Check:
    """After a --scope database failover the app writes to the promoted in-region replica,
    while the standby replica still follows the old primary: a region failover would lose
    every write since. The app's endpoint parameter (primary region) names the writer."""
    name = "replica follows the writer"
    primary = ctx.inventory.primary
    writer = probes.read_parameter(ctx.primary.ssm(), primary.database.endpoint_parameter)
    source = probes.describe_database(ctx.primary.rds(), primary.database.identifier)
    if source is None:
        return Check(name, False, f"the replica's source {primary.database.identifier} is "
                     f"not found in {primary.region}", blocks=False)
    source_endpoint = f"{source.endpoint}:{source.port or 5432}"
    if writer is None:
        return Check(name, False, f"{primary.database.endpoint_parameter} not found in "
                     f"{primary.region}: cannot tell which database the app writes to",
                     blocks=False)
    if writer != source_endpoint:
        return Check(name, False, f"the app writes to {writer.split('.')[0]} ({writer}), but "
                     f"{ctx.inventory.standby.database.identifier} replicates from "
                     f"{primary.database.identifier}: rebuild the dr replica from the new "
                     "writer (a region failover now would lose data)", blocks=False)
    return Check(name, True, f"{primary.database.identifier} is the app's writer "
                 f"({writer})", blocks=False)


def _app(ctx: FailoverContext) -> Check:
    site = ctx.target
    clients = ctx.target_clients
    asg = probes.describe_asg(clients.autoscaling(), site.app.auto_scaling_group_name)
    if asg is None:
        return Check("app tier", False, f"Auto Scaling group {site.app.auto_scaling_group_name} "
                     f"not found in {clients.region}")
    template = asg.launch_template_id or "(none)"
    if asg.launch_template_id is None or not probes.launch_template_exists(
            clients.ec2(), asg.launch_template_id):
        return Check("app tier", False, f"{asg.name}: launch template {template} not found")
    want = site.app.production_capacity
    return Check("app tier", True, f"{asg.name} {asg.in_service} in service, desired "
                 f"{asg.desired} (production {want.desired}), template {template}")


def _targets(ctx: FailoverContext) -> Check:
    site = ctx.inventory.standby
    health = probes.target_health(ctx.standby.elbv2(), site.app.target_group_arn)
    expected = min(site.app.capacity.desired, 1)
    return Check("load balancer targets", health.healthy >= expected,
                 f"{health.healthy} of {health.total} targets healthy", blocks=False)


def _switch(ctx: FailoverContext, daily: bool) -> Check:
    sw = ctx.inventory.traffic_switch
    value = probes.read_switch(ctx.standby.s3(), sw.bucket, sw.key)
    where = f"s3://{sw.bucket}/{sw.key}"
    if value is None:
        return Check("traffic switch", False, f"{where} does not exist")
    if value not in (sw.primary_value, sw.failover_value):
        return Check("traffic switch", False, f"{where} holds {value[:40]!r}, expected "
                     f"{sw.primary_value} or {sw.failover_value}")
    if daily and value != sw.primary_value:
        return Check("traffic switch", False, f"{where} = {value}: traffic is already on the "
                     "standby site")
    return Check("traffic switch", True, f"{where} = {value}")


def _lock(ctx: FailoverContext) -> Check:
    holder = FailoverLock(ctx.standby.ssm(), ctx.inventory.lock_parameter).holder()
    if holder is None:
        return Check("lock free", True, ctx.inventory.lock_parameter, blocks=False)
    return Check("lock free", False, f"held by {holder.describe()}", blocks=False)


def refusals(checks: list[Check]) -> list[Check]:
    return [c for c in checks if c.blocks and not c.ok and not c.overridden]


def render_table(checks: list[Check]) -> str:
    width = max(len(c.name) for c in checks)
    lines = [f"{'CHECK'.ljust(width)}  RESULT    DETAIL"]
    lines += [f"{c.name.ljust(width)}  {c.result.ljust(8)}  {c.detail}" for c in checks]
    return "\n".join(lines)

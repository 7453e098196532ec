"""Readiness checks: the ``--check`` table, and the preflight a real run (and a dry run) must
pass.

Each check reads state only. ``blocks`` marks what a real run refuses on; the others only make
the daily ``--check`` fail, so the team hears about it before the disaster. The preflight reads
every resource the plan will change (each step's :meth:`~steps.Step.touches`), so a missing
one refuses the run before anything has changed.

Replication (issue 9, fault 10): a replica that is up but no longer replicating -- RDS's read
replication status other than "replicating", a newest ReplicaLag of -1, or no datapoint for
longer than the RPO -- is not called "within the RPO": the most a promotion now can lose is the
last known lag plus the time since it was measured. A real run refuses on either row unless
``--force`` (the operator accepts the exposure, which the report records).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from concurrent.futures import Future
from datetime import UTC, datetime

from botocore.exceptions import BotoCoreError, ClientError

from caresync_dr.aws import RegionClients
from caresync_dr.failover import probes
from caresync_dr.failover.context import FailoverContext
from caresync_dr.failover.plan import build_plan
from caresync_dr.failover.steps import PROMOTING_STATUSES
from caresync_dr.inventory import INVENTORY_VERSION
from caresync_dr.operations.checks import Check, refusals, render_table, resource_checks
from caresync_dr.operations.checks import guard as _guard
from caresync_dr.operations.lock import LeaseLock
from caresync_dr.operations.pools import ReadPool
from caresync_dr.operations.run_setup import operator_name

# How far back to look for the last non-negative ReplicaLag: RDS reports -1 every minute once
# the source is gone, and a failover may start hours into the outage. One request at a 60 s
# period returns at most 1,440 datapoints, hence the limit.
LAG_LOOKBACK_MINUTES = 180
LAG_LOOKBACK_LIMIT_MINUTES = 1440
REPLICATING_ROW = "replica replicating"
LAG_ROW = "replica lag within RPO"
# How long before the stated outage start a ReplicaLag datapoint still shows replication was
# active then (RDS publishes one a minute; CloudWatch may deliver a few minutes late).
OUTAGE_MARGIN_MIN = 5


def run_checks(ctx: FailoverContext, daily: bool) -> list[Check]:
    """All checks for the run's scope. ``daily``: the --check set (stricter, no resume)."""
    clients = ctx.target_clients
    db_id = ctx.target_database
    checks: list[Check] = [_inventory(ctx)]
    if ctx.reversed:
        checks.append(_bookkeeping(ctx))
        if not daily:
            checks.append(_standby_region_lock(ctx))
    state: list[probes.DbState | None] = []

    def exists() -> Check:
        db = ctx.target_database_state(fresh=True)   # the promote step reuses this read
        state.append(db)
        if db is None:
            return Check("replica exists", False,
                         f"{db_id} not found in {clients.region}")
        return Check("replica exists", True, f"{db_id} in {clients.region}")

    # The traffic switch and the plan's resources read state independent of the database:
    # read concurrently with it (each waits on the network); the replication rows need the
    # database's read. Rows are listed in this order whatever finishes first.
    independent: list[Callable[[], list[Check]]] = []
    if ctx.options.scope == "region":
        independent.append(lambda: [_guard("traffic switch", True, lambda: _switch(ctx, daily))])
    independent.append(lambda: _plan_resources(ctx))
    # Only a run that continues an unfinished journal (the engine sets resumed_run): a
    # --resume with nothing to resume is a new run, judged as one. Otherwise a --resume run
    # in one direction took the other direction's promoted (stale) writer for its own.
    resuming = ctx.resumed_run is not None and not daily
    # A resumed run whose promotion RDS already accepted: the promote step waits for it.
    requested = ctx.facts.get("promotion_requested_at") if resuming else None
    # The independent reads and the lag run in the pool; the database is read on this thread.
    with ReadPool(max_workers=len(independent) + 1, thread_name_prefix="preflight") as pool:
        pending = [pool.submit(read) for read in independent]
        # The replica's lag (CloudWatch) needs only its name: read beside the database; used
        # once the database's read says a replica is there (else the reading is not used).
        lag = None if _lag_settled(ctx, daily) else pool.submit(_read_lag, ctx)
        checks.append(_guard("replica exists", True, exists))
        db = state[0] if state else None
        if db is not None:
            checks.append(_is_replica(ctx, db, resuming))
            checks.append(_available(db, requested))
            checks += _replication(ctx, db, daily, lag)
        for rows in pending:
            checks += rows.result()
    if daily:
        if ctx.options.scope == "region":
            checks.append(_guard("load balancer targets", False, lambda: _targets(ctx)))
            checks.append(_guard("replica follows the writer", False,
                                 lambda: _follows_writer(ctx)))
            checks.append(_guard("DNS follows the switch", False, lambda: _dns_pin(ctx)))
        checks.append(_guard("lock free", False, lambda: _lock(ctx)))
    return checks


def _bookkeeping(ctx: FailoverContext) -> Check:
    """A reversed failover keeps its lock, journal and incident timeline in the region it
    promotes (the primary's): the inventory must name the bucket there."""
    name = "bookkeeping region"
    bucket = ctx.incident_bucket
    if bucket is None:
        return Check(name, False, "the inventory has no primaryBackupBucket: it predates "
                     "reversed failovers; run `pulumi up -s dr` (activeSite standby) so the "
                     f"inventory names the incident bucket in {ctx.books.region}")
    return Check(name, True, f"lock {ctx.inventory.lock_parameter}, journal "
                 f"{ctx.inventory.journal_parameter} and s3://{bucket} in {ctx.books.region}, "
                 "the region being promoted")


def _standby_region_lock(ctx: FailoverContext) -> Check:
    """A reversed run locks in the primary region, but a switchover (or a failover in the
    usual direction) locks in the standby region: while that region answers, a live holder
    there refuses this run (two operations moving one writer). Unreachable is the outage."""
    return other_region_lock(ctx, ctx.standby)


def other_region_lock(ctx: FailoverContext, other: RegionClients) -> Check:
    """The failover lock (``lockParameter``) in ``other``, the region this run does not lock
    in. A failover locks where it keeps its books (the standby region; the primary region
    when reversed) and a switchover in the standby region, so the one lock does not exclude
    them by itself: each run also reads the other region's copy, and a live holder there
    refuses it (two operations moving one writer). A region that does not answer has failed
    (or cannot host a run): the row passes and says so."""
    site = "standby" if other.region == ctx.inventory.standby.region else "primary"
    name = f"no run in the {site} region"
    where = f"{ctx.inventory.lock_parameter} in {other.region}"
    try:
        holder = LeaseLock(other.ssm(), ctx.inventory.lock_parameter).holder()
    except (ClientError, BotoCoreError) as exc:
        return Check(name, True, f"{where} does not answer ({type(exc).__name__}): the region "
                     "that failed")
    if holder is None or holder.is_stale():
        return Check(name, True, f"{where} is free" if holder is None
                     else f"{where}: a stale lock of a gone run ({holder.describe()})")
    return Check(name, False, f"{where} is held by {holder.describe()}: finish or stop that "
                 "run first (switchover.py/failover.py --resume there)")


def _dns_pin(ctx: FailoverContext) -> Check:
    """The PRIMARY record's calculated check still reads the switch: a reversed failover
    pins it (steps.PinPrimaryRecord) until ``pulumi up -s dr --refresh`` restores it."""
    sw = ctx.inventory.traffic_switch
    pinned = probes.switch_pin(ctx.route53.route53(), sw.primary_health_check_id,
                               sw.health_check_id)
    if pinned is None:
        return Check("DNS follows the switch", True,
                     f"{sw.primary_health_check_id} reads the switch check {sw.health_check_id}",
                     blocks=False)
    return Check("DNS follows the switch", False,
                 f"pinned by a reversed failover: {pinned}; writing the switch would not move "
                 "traffic. Write the value for the site that serves into the switch, then "
                 "`pulumi up -s dr --refresh` (a plain `pulumi up` does not see the change)",
                 blocks=False)


def _plan_resources(ctx: FailoverContext) -> list[Check]:
    """One row per resource the plan's steps declare, each read once."""
    return resource_checks(build_plan(ctx.options.scope, ctx.reversed), ctx)


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
    adopt = ctx.options.adopt_promoted
    if adopt is not None:
        return _adopted(ctx, db, adopt)
    if db.is_replica:
        if not _same_source(db.source, source):
            return Check(name, False, f"replicates from {db.source}, the inventory expects "
                         f"{source}")
        return Check(name, True, f"of {db.source}")
    if resuming:
        return Check(name, True, f"already promoted (resuming run {ctx.resumed_run})")
    return Check(name, False, f"{db.identifier} is not a read replica (no "
                 "ReadReplicaSourceDBInstanceIdentifier) and no unfinished run in "
                 f"{ctx.inventory.journal_parameter} ({ctx.books.region}) promoted it: a "
                 "writer of its own (after a failback or another direction's run, the stale "
                 "old one?). Check the inventory's direction (activeSite); --resume continues "
                 "only a run journaled there. If you promoted it by hand (RDS console or "
                 f"CLI) for this failover, rerun with --adopt-promoted {db.identifier}")


def _adopted(ctx: FailoverContext, db: probes.DbState, adopt: str) -> Check:
    """``--adopt-promoted``: the operator promoted the target by hand. Accepted only for the
    database the inventory names for this run's direction, once it is a standalone writer
    (available); recorded (who, what, when) in the journal's facts and the report."""
    name = "is a read replica"
    flag = f"--adopt-promoted {adopt}"
    if adopt.lower() != db.identifier.lower():
        return Check(name, False, f"{flag} does not name this run's target: the inventory's "
                     f"{ctx.target_site} site database for this direction is {db.identifier} "
                     f"in {ctx.target_clients.region}; nothing to adopt")
    if db.is_replica:
        return Check(name, False, f"{flag}: {db.identifier} is still a read replica of "
                     f"{db.source}, not promoted; run without --adopt-promoted to promote it")
    if db.status != "available":
        return Check(name, False, f"{flag}: {db.identifier} is a standalone instance but "
                     f"{db.status}, not available: wait until its promotion finishes")
    adoption = ctx.facts.get("adopted_promotion")
    if not isinstance(adoption, dict) or adoption.get("database") != db.identifier:
        adoption = {"database": db.identifier, "region": ctx.target_clients.region,
                    "operator": operator_name(), "at": datetime.now(UTC).isoformat()}
        ctx.facts["adopted_promotion"] = adoption
    return Check(name, True, f"promoted by hand, standalone and available: adopted with "
                 f"{flag} by {adoption['operator']} at {adoption['at']}")


def _available(db: probes.DbState, promotion_requested: str | None) -> Check:
    name = "replica available"
    if db.status == "available":
        return Check(name, True, f"status {db.status}")
    if promotion_requested and db.status in PROMOTING_STATUSES:
        return Check(name, True, f"status {db.status}: the promotion requested at "
                     f"{promotion_requested} is under way; the promote step waits for it")
    return Check(name, False, f"status {db.status}")


def _lag_settled(ctx: FailoverContext, daily: bool) -> bool:
    """A resumed run whose promotion was requested: its exposure was recorded then, and the
    lag is not read again."""
    return (ctx.resumed_run is not None and not daily
            and bool(ctx.facts.get("promotion_requested_at")))


def _read_lag(ctx: FailoverContext) -> tuple[datetime, probes.LagReading]:
    """(when it was read, the target replica's ReplicaLag over the lookback window)."""
    objectives = ctx.inventory.objectives
    now = datetime.now(UTC)
    outage = ctx.options.outage_started
    window = max(LAG_LOOKBACK_MINUTES, objectives.rpo_minutes, objectives.rto_minutes)
    if outage is not None:    # see the outage start and the minutes before it
        window = max(window, math.ceil((now - outage).total_seconds() / 60) + OUTAGE_MARGIN_MIN)
    return now, probes.replica_lag(ctx.target_clients.cloudwatch(), ctx.target_database,
                                   window_minutes=min(LAG_LOOKBACK_LIMIT_MINUTES, window), now=now)


def _replication(ctx: FailoverContext, db: probes.DbState, daily: bool,
                 lag: Future[tuple[datetime, probes.LagReading]] | None = None) -> list[Check]:
    """The two replication rows: is RDS replicating, and how much a promotion now can lose.
    ``lag``: the lag read already started (:func:`_read_lag`), else it is read here."""
    if not db.is_replica and not daily:
        return [Check(REPLICATING_ROW, True, "already promoted; replication no longer applies"),
                Check(LAG_ROW, True, "already promoted; lag no longer applies")]
    requested = ctx.facts.get("promotion_requested_at")
    if _lag_settled(ctx, daily):
        sentence = f"promotion already requested at {requested}; the exposure was recorded then"
        return [Check(REPLICATING_ROW, True, sentence), Check(LAG_ROW, True, sentence)]
    rpo_s = ctx.inventory.objectives.rpo_minutes * 60
    outage = ctx.options.outage_started
    try:
        now, reading = lag.result() if lag is not None else _read_lag(ctx)
    except (ClientError, BotoCoreError) as exc:
        return [_forceable(ctx, daily, REPLICATING_ROW, False, f"could not read: {exc}"),
                _forceable(ctx, daily, LAG_ROW, False, f"could not read: {exc}")]
    ctx.facts.setdefault("replica_lag", reading.as_fact(now, outage))
    if outage is not None:
        replicating, why = _replicating_at_outage(reading, outage)
        bound = reading.bound(outage)
        lost = "an unknown amount" if bound is None else f"at most {bound:.0f} s"
        lag_detail = (f"{reading.describe(now)}; as of the outage start "
                      f"{outage:%Y-%m-%dT%H:%M:%SZ} (--outage-started) {lost} lost, "
                      f"RPO {rpo_s} s")
    else:
        replicating, why = _replicating(db.replication_status, reading, rpo_s, now)
        bound = reading.bound(now)
        lag_detail = f"{reading.describe(now)}, RPO {rpo_s} s"
        if not daily and reading.at is not None and not (replicating and bound is not None
                                                         and bound <= rpo_s):
            # In a regional outage RDS reports replication broken from the first minute: the
            # question is whether it broke with the outage or before it.
            hint = ("; if the primary's outage stopped it, rerun with --outage-started TIME "
                    "(when the primary stopped taking writes) to judge replication as of then")
            why, lag_detail = why + hint, lag_detail + hint
    return [_forceable(ctx, daily, REPLICATING_ROW, replicating, why),
            _forceable(ctx, daily, LAG_ROW, bound is not None and bound <= rpo_s, lag_detail)]


def _replicating_at_outage(reading: probes.LagReading, outage: datetime) -> tuple[bool, str]:
    """Replication judged as of the operator's outage start: RDS publishes ReplicaLag once a
    minute, so a replica that was replicating then has a non-negative datapoint within
    :data:`OUTAGE_MARGIN_MIN` minutes before it (or any time after). What RDS reports after the
    outage began (-1, status "error") is the outage's doing, not a sign of an older break."""
    if reading.at is None:
        return False, ("no non-negative ReplicaLag datapoint in the window: replication was "
                       "not active before the outage started")
    gap_s = (outage - reading.at).total_seconds()
    if gap_s > OUTAGE_MARGIN_MIN * 60:
        return False, (f"the last non-negative ReplicaLag datapoint is at "
                       f"{reading.at:%Y-%m-%dT%H:%M:%SZ}, {gap_s / 60:.0f} min before the "
                       f"outage started ({outage:%Y-%m-%dT%H:%M:%SZ}): replication had already "
                       "stopped")
    return True, (f"replicating until {reading.at:%H:%M:%SZ} ({reading.seconds:.0f} s behind); "
                  f"the outage started {outage:%H:%M:%SZ}, what RDS reports since is its doing")


def _replicating(status: str | None, reading: probes.LagReading, rpo_s: int,
                 now: datetime) -> tuple[bool, str]:
    newest_age = reading.newest_age(now)
    if status is not None and status != probes.REPLICATING:
        ok, detail = False, (f"RDS reports read replication {status!r}: the replica is up but "
                             "not keeping up with its source")
    elif reading.newest_seconds is None or newest_age is None:
        ok, detail = False, ("no ReplicaLag datapoint in the window: RDS publishes one a "
                             "minute for a replicating replica")
    elif reading.newest_seconds < 0:
        ok, detail = False, (f"ReplicaLag is -1 (replication not active) as of "
                             f"{reading.newest_at:%H:%M:%SZ}")
    elif newest_age > rpo_s:
        ok, detail = False, (f"the newest ReplicaLag datapoint is {newest_age / 60:.0f} min old "
                             f"(RDS publishes one a minute): replication state unknown for "
                             f"longer than the RPO")
    else:
        ok, detail = True, f"read replication {status or 'not reported'}, ReplicaLag published"
    return ok, detail


def _forceable(ctx: FailoverContext, daily: bool, name: str, ok: bool, detail: str) -> Check:
    if not ok and ctx.options.force and not daily:
        return Check(name, False, detail + "; overridden by --force", overridden=True)
    return Check(name, ok, detail)


def _follows_writer(ctx: FailoverContext) -> Check:
    """After a --scope database failover the app writes to the promoted in-region replica,
    while the standby replica still follows the old primary: a region failover would lose
    every write since. The app's endpoint parameter (primary region) names the writer."""
    name = "replica follows the writer"
    primary = ctx.inventory.standby if ctx.reversed else ctx.inventory.primary
    clients = ctx.standby if ctx.reversed else ctx.primary
    writer = probes.read_parameter(clients.ssm(), primary.database.endpoint_parameter)
    source = probes.describe_database(clients.rds(), primary.database.identifier)
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
                     f"{ctx.target.database.identifier} replicates from "
                     f"{primary.database.identifier}: rebuild the dr replica from the new "
                     "writer (a region failover now would lose data)", blocks=False)
    return Check(name, True, f"{primary.database.identifier} is the app's writer "
                 f"({writer})", blocks=False)


def _targets(ctx: FailoverContext) -> Check:
    site = ctx.target
    health = probes.target_health(ctx.target_clients.elbv2(), site.app.target_group_arn)
    expected = min(site.app.capacity.desired, 1)
    return Check("load balancer targets", health.healthy >= expected,
                 f"{health.healthy} of {health.total} targets healthy", blocks=False)


def _switch(ctx: FailoverContext, daily: bool) -> Check:
    sw = ctx.inventory.traffic_switch
    where = f"s3://{sw.bucket}/{sw.key}"
    try:
        value = probes.read_switch(ctx.standby.s3(), sw.bucket, sw.key)
    except (ClientError, BotoCoreError) as exc:
        if daily or not ctx.reversed:
            raise
        # The switch is in the failed region: Route 53 reads it as PRIMARY (steps.py).
        return Check("traffic switch", True, f"{where} in {sw.region} does not answer "
                     f"({type(exc).__name__}): Route 53's inverted check reads that as "
                     f"{sw.primary_value}; the verify step confirms the primary site serves")
    if value is None:
        return Check("traffic switch", False, f"{where} does not exist")
    if value not in (sw.primary_value, sw.failover_value):
        return Check("traffic switch", False, f"{where} holds {value[:40]!r}, expected "
                     f"{sw.primary_value} or {sw.failover_value}")
    serving = sw.failover_value if ctx.reversed else sw.primary_value
    if daily and value != serving:
        return Check("traffic switch", False, f"{where} = {value}: traffic is already on the "
                     f"{ctx.target_site} site")
    return Check("traffic switch", True, f"{where} = {value}")


def _lock(ctx: FailoverContext) -> Check:
    holder = LeaseLock(ctx.books.ssm(), ctx.inventory.lock_parameter).holder()
    if holder is None:
        return Check("lock free", True, ctx.inventory.lock_parameter, blocks=False)
    if holder.is_stale():
        return Check("lock free", True, f"a stale lock of a gone run ({holder.describe()}): "
                     "the next run takes it over", blocks=False)
    return Check("lock free", False, f"held by {holder.describe()}", blocks=False)


__all__ = ["Check", "refusals", "render_table", "run_checks"]

"""The switchover's readiness rows: ``--check``, and the preflight of a real run and a dry run.

A planned switchover starts only when both sites are healthy: the source database is the
writer (its writer roles exist and may log in; ``synchronous_commit`` is shown, never refused:
the fence reads the WAL insert position, which covers asynchronous commits too -- see
:mod:`caresync_dr.switchover.fence`), the target
database is a replica that replays the source's current position within a few seconds, RDS
shows the target as an available replica of the source, the traffic switch says the source
serves, the public health URL answers from the source with a writable database, and the
target's load balancer has a healthy target. Each row reads only; every resource the plan will
change is read too (the steps' ``touches``). A resumed run accepts what its own earlier part
did (the fence in place, the target promoted, traffic moved).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import psycopg

from caresync_dr.failover import probes
from caresync_dr.failover.readiness import other_region_lock
from caresync_dr.failover.steps import PROMOTING_STATUSES
from caresync_dr.operations.checks import Check, guard, resource_checks
from caresync_dr.operations.lock import LeaseLock
from caresync_dr.operations.steps import Stage
from caresync_dr.switchover import fence
from caresync_dr.switchover.context import DatabaseLink, SwitchoverContext
from caresync_dr.switchover.steps import (
    fence_error,
    fenced,
    past_the_fence,
    target_is_replica_of_source,
)

# How long the preflight waits for the replica to replay the writer's current position.
FOLLOW_SECONDS = 10.0


def _database(name: str, link: DatabaseLink, ctx: SwitchoverContext,
              judge: Callable[[fence.ServerState], Check]) -> Check:
    try:
        with fence.connect(link.conninfo) as conn:
            state = fence.server_state(conn, ctx.settings.writer_roles)
    except psycopg.Error as exc:
        return Check(name, False, f"{link.where} did not answer: {fence_error(exc)}")
    return judge(state)


def run_checks(ctx: SwitchoverContext, plan: tuple[Stage[SwitchoverContext], ...],
               daily: bool) -> list[Check]:
    resuming = ctx.resumed_run is not None and not daily   # an unfinished journal only
    source, target = ctx.settings.source_db, ctx.settings.target_db
    roles = ", ".join(ctx.settings.writer_roles)
    rows: list[Check] = []

    def writer(state: fence.ServerState) -> Check:
        name = f"{source.site} database is the writer"
        if state.in_recovery:
            return Check(name, False, f"{source.where} is in recovery (a replica)")
        missing = [r for r in ctx.settings.writer_roles if r not in state.logins]
        if missing:
            return Check(name, False, f"writer role(s) {', '.join(missing)} missing on "
                         f"{source.where}")
        if fenced(state, ctx) and not resuming:
            return Check(name, False, f"{roles} may not log in on {source.where}: a fence "
                         "is in place (an unfinished switchover? use --resume)")
        return Check(name, True, f"{source.where} at {state.current_lsn}, "
                     f"{state.sessions} client session(s), {len(state.login_roles)} role(s) "
                     f"the fence would close, synchronous_commit {state.synchronous_commit} "
                     "(any value is covered)")

    source_row = _database(f"{source.site} database is the writer", source, ctx, writer)
    if not source_row.ok and resuming and past_the_fence(ctx):
        source_row = Check(source_row.name, True, f"not needed any more (resuming past the "
                           f"promotion request): {source_row.detail}", blocks=False)
    rows.append(source_row)
    promoted: list[bool] = []

    def replica(state: fence.ServerState) -> Check:
        name = f"{target.site} database is a streaming replica"
        if not state.in_recovery:
            promoted.append(True)
            return Check(name, resuming, f"{target.where} is already a writer"
                         + (" (resuming)" if resuming else ""))
        if state.receive_lsn is None:
            return Check(name, False, f"{target.where} receives no WAL")
        return Check(name, True, f"{target.where} replayed {state.replay_lsn}")

    rows.append(_database(f"{target.site} database is a streaming replica", target, ctx,
                          replica))
    if not promoted:
        if not (resuming and past_the_fence(ctx)):   # else the final position was replayed
            rows.append(_follows(ctx))
        rows.append(guard("RDS replica", True, lambda: _rds_replica(ctx, resuming)))
    rows.append(guard("traffic switch", True, lambda: _switch(ctx, resuming)))
    if not resuming:
        rows.append(guard(f"{source.site} site serves", True, lambda: _serves(ctx)))
    rows.append(guard(f"{target.site} load balancer targets", True, lambda: _targets(ctx)))
    rows += resource_checks(plan, ctx)
    if daily:
        rows.append(guard("lock free", False, lambda: _lock(ctx)))
    else:
        # The switchover locks in the standby region; a reversed failover (after a failback)
        # holds the same lock in the primary region.
        rows.append(guard("no run in the primary region", True,
                          lambda: other_region_lock(ctx, ctx.primary)))
    return rows


def _follows(ctx: SwitchoverContext) -> Check:
    """The replica replays the writer's position of now within :data:`FOLLOW_SECONDS`: it
    follows *this* writer, and a fence would not wait long."""
    name = "replica follows the writer"
    source, target = ctx.settings.source_db, ctx.settings.target_db
    try:
        with fence.connect(source.conninfo) as conn:
            state = fence.server_state(conn, ctx.settings.writer_roles)
        lsn = state.current_lsn
        if lsn is None:
            return Check(name, False, f"{source.where} is not a writer")
        started = time.monotonic()
        with fence.connect(target.conninfo) as conn:
            while True:
                ok, replay = fence.replayed(conn, lsn)
                waited = time.monotonic() - started
                if ok:
                    return Check(name, True, f"{target.where} replayed the writer's {lsn} "
                                 f"within {waited:.2f} s")
                if waited > FOLLOW_SECONDS:
                    return Check(name, False, f"{target.where} at {replay} has not replayed "
                                 f"the writer's {lsn} within {FOLLOW_SECONDS:g} s")
                time.sleep(0.05)
    except psycopg.Error as exc:
        return Check(name, False, f"could not read: {fence_error(exc)}")


def _rds_replica(ctx: SwitchoverContext, resuming: bool) -> Check:
    """An available replica of the source; on --resume of a run whose promotion RDS accepted,
    a promotion under way too (the promote step waits for it)."""
    requested = ctx.facts.get("promotion_requested_at") if resuming else None
    if requested:
        db = probes.describe_database(ctx.target_clients.rds(), ctx.target_database)
        if db is not None and (db.is_promoted or db.status in PROMOTING_STATUSES):
            return Check("RDS replica", True, f"{ctx.target_database} is {db.status}: the "
                         f"promotion requested at {requested} is under way (resuming)")
    ok, detail = target_is_replica_of_source(ctx)
    return Check("RDS replica", ok, detail)


def _switch(ctx: SwitchoverContext, resuming: bool) -> Check:
    sw = ctx.inventory.traffic_switch
    value = probes.read_switch(ctx.standby.s3(), sw.bucket, sw.key)
    where = f"s3://{sw.bucket}/{sw.key}"
    if value == ctx.source_switch_value:
        return Check("traffic switch", True, f"{where} = {value}: the "
                     f"{ctx.settings.source} site serves")
    if value == ctx.switch_value and resuming:
        return Check("traffic switch", True, f"{where} = {value} (moved by this run)")
    return Check("traffic switch", False, f"{where} = {value}, expected "
                 f"{ctx.source_switch_value} (the {ctx.settings.source} site serving)")


def _serves(ctx: SwitchoverContext) -> Check:
    name = f"{ctx.settings.source} site serves"
    reading = probes.health_of(ctx.health_url, ctx.source.region)
    return Check(name, reading.ok, f"{ctx.health_url}: {reading.detail}")


def _targets(ctx: SwitchoverContext) -> Check:
    app = ctx.target.app
    health = probes.target_health(ctx.target_clients.elbv2(), app.target_group_arn)
    return Check(f"{ctx.settings.to} load balancer targets", health.healthy >= 1,
                 f"{health.healthy} healthy target(s) in {ctx.target_clients.region}")


def _lock(ctx: SwitchoverContext) -> Check:
    holder = LeaseLock(ctx.standby.ssm(), ctx.inventory.lock_parameter, "switchover").holder()
    if holder is None:
        return Check("lock free", True, ctx.inventory.lock_parameter, blocks=False)
    stale = holder.is_stale()
    return Check("lock free", stale, ("stale, would be taken over: " if stale else "held by ")
                 + holder.describe(), blocks=False)

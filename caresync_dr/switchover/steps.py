"""The switchover's own steps: fence the writer, wait for the replica to replay its final
position (or roll the fence back), open the new writer. Promotion, scale-up, the traffic switch
and verification are the failover's steps (:mod:`caresync_dr.failover.steps`), reused.

Why no acknowledged write is lost, by construction: every write the app had acknowledged when
the fence went up was committed by a session of a writer role; the fence refuses new logins,
ends those sessions (waiting for each to exit) and only then reads the writer's WAL position
(:mod:`caresync_dr.switchover.fence`). Promotion is requested only after the replica has
replayed that position (the next stage; the runner stops on a failed step, and a resumed run
re-reads the replay position). Writes tried during the fence are refused at login or on their
ended session: never acknowledged, so never lost.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import psycopg

from caresync_dr.estimates import DEFAULT_ESTIMATES as ESTIMATES
from caresync_dr.failover import probes
from caresync_dr.operations.errors import StepFailedError, WaitTimeoutError
from caresync_dr.operations.polling import wait_until
from caresync_dr.operations.steps import Step, Verdict, blocked, done, run
from caresync_dr.switchover import fence
from caresync_dr.switchover.context import DatabaseLink, SwitchoverContext

log = logging.getLogger(__name__)


def _roles(ctx: SwitchoverContext) -> str:
    return ", ".join(ctx.settings.writer_roles)


@contextlib.contextmanager
def session(link: DatabaseLink) -> Iterator[fence.Connection]:
    """A master-user session; any database error (unreachable, refused, a statement that
    failed) becomes the step's failure, naming the database, never the password."""
    try:
        with fence.connect(link.conninfo) as conn:
            yield conn
    except psycopg.Error as exc:
        raise StepFailedError(f"the {link.site} database ({link.where}): "
                              f"{fence_error(exc)}") from exc


def _state(link: DatabaseLink, ctx: SwitchoverContext) -> fence.ServerState:
    with session(link) as conn:
        return fence.server_state(conn, ctx.settings.writer_roles)


def fence_error(exc: psycopg.Error) -> str:
    """psycopg's first line, which never repeats the connection string's password."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


def past_the_fence(ctx: SwitchoverContext) -> bool:
    """This run (or the one it resumes) fenced, saw the final position replayed and asked
    for the promotion: the old writer is no longer needed to finish."""
    return bool(ctx.facts.get("final_lsn") and ctx.facts.get("caught_up_at")
                and ctx.facts.get("promotion_requested_at"))


def fenced(state: fence.ServerState, ctx: SwitchoverContext) -> bool:
    roles = ctx.settings.writer_roles
    return (all(state.logins.get(role) is False for role in roles) and state.sessions == 0)


class FenceWrites(Step[SwitchoverContext]):
    name = "fence-writes"
    title = ("Fence the writer: refuse the app's logins, end its sessions, read the final WAL "
             "position")
    expected_seconds = ESTIMATES.api_call_seconds

    def check(self, ctx: SwitchoverContext) -> Verdict:
        link = ctx.settings.source_db
        try:
            state = _state(link, ctx)
        except StepFailedError as exc:
            if past_the_fence(ctx):
                return done(f"fenced earlier in this run at {ctx.facts.get('fenced_at')}, final "
                            f"position {ctx.facts['final_lsn']} replayed, promotion requested "
                            f"(the old writer does not answer now: {exc})")
            return blocked(f"cannot read {exc}")
        if state.in_recovery:
            return blocked(f"the {link.site} database ({link.where}) is a replica, not the "
                           "writer")
        missing = [r for r in ctx.settings.writer_roles if r not in state.logins]
        if missing:
            return blocked(f"writer role(s) {', '.join(missing)} do not exist on {link.where}")
        if fenced(state, ctx) and ctx.facts.get("final_lsn"):
            return done(f"{_roles(ctx)} may not log in on {link.where} and has no session; "
                        f"final position {ctx.facts['final_lsn']}")
        return run(f"would refuse logins of {_roles(ctx)} on {link.where}, end its "
                   f"{state.sessions} session(s) and read the final WAL position "
                   f"(now {state.current_lsn})")

    def apply(self, ctx: SwitchoverContext) -> str:
        link = ctx.settings.source_db
        # Saved first: a run killed from here on has a fence to finish or roll back.
        ctx.fact("fence_requested_at", datetime.now(UTC).isoformat(), save=True)
        try:
            with session(link) as conn:
                result = fence.fence_writes(conn, ctx.settings.writer_roles,
                                            terminate_timeout_ms=ctx.settings.terminate_ms)
        except fence.FenceError as exc:
            raise StepFailedError(f"fencing {link.where} failed: {exc}") from exc
        ctx.fact("fenced_at", result.fenced_at)
        ctx.fact("writer_sessions_ended", result.terminated)
        ctx.fact("final_lsn_at", result.final_lsn_at)
        ctx.fact("final_lsn", result.final_lsn, save=True)
        ctx.fact("fence_rolled_back_at", None)
        ctx.fact("caught_up_at", None)
        return (f"{_roles(ctx)} may not log in on {link.where}; {result.terminated} session(s) "
                f"ended; final WAL position {result.final_lsn}")


class WaitForReplay(Step[SwitchoverContext]):
    """Until the target has replayed the final position; on timeout the fence is rolled back
    (the old writer takes writes again) and the run stops before anything else changed."""

    name = "wait-for-replay"
    title = "Wait until the replica has replayed the writer's final WAL position"
    expected_seconds = 1.0

    def check(self, ctx: SwitchoverContext) -> Verdict:
        lsn = ctx.facts.get("final_lsn")
        link = ctx.settings.target_db
        if not lsn:
            return run(f"would wait up to {ctx.settings.catch_up_seconds:g} s until "
                       f"{link.where} has replayed the final position")
        try:
            with session(link) as conn:
                ok, replay = fence.replayed(conn, lsn)
                promoted = not fence.server_state(conn, ()).in_recovery
        except StepFailedError as exc:
            return blocked(f"cannot read {exc}")
        if promoted and not ok:
            return blocked(f"{link.where} left recovery at {replay}, before the final position "
                           f"{lsn}: writes acknowledged after {replay} may be missing there")
        if ok and (promoted or ctx.facts.get("caught_up_at")):
            return done(f"{link.where} has replayed {replay} >= final position {lsn}")
        # Replayed already or not: apply confirms it and records when (the report's proof).
        return run(f"would wait until {link.where} replays {lsn} (now at {replay})")

    def apply(self, ctx: SwitchoverContext) -> str:
        lsn = str(ctx.facts["final_lsn"])
        link = ctx.settings.target_db
        started = time.monotonic()

        def probe() -> tuple[bool, str | None]:
            try:
                with fence.connect(link.conninfo) as conn:
                    return fence.replayed(conn, lsn)
            except psycopg.Error as exc:
                return False, f"unreachable ({fence_error(exc)})"

        def pending(state: tuple[bool, str | None]) -> str | None:
            ok, replay = state
            if ok:
                return None
            behind = ""
            if replay and "/" in replay:
                behind = f", {fence.lsn_bytes(lsn, replay)} bytes behind"
            return f"replayed {replay}, final position {lsn}{behind}"

        policy = ctx.options.timing.policy(ctx.settings.catch_up_seconds)
        try:
            _, replay = wait_until(f"{link.where} to replay {lsn}", probe, pending, policy,
                                   ctx.stop)
        except WaitTimeoutError as exc:
            raise StepFailedError(f"{exc}; {roll_back(ctx)}. Nothing was promoted; fix "
                                  "replication, then run again with --resume") from exc
        ctx.fact("caught_up_at", datetime.now(UTC).isoformat())
        return (f"{link.where} replayed {replay} >= final position {lsn} after "
                f"{time.monotonic() - started:.2f} s")


def roll_back(ctx: SwitchoverContext) -> str:
    """Lift the fence on the old writer -- only while nothing was promoted (a promotion
    requested, or a target out of recovery, would make two writers); one sentence."""
    link = ctx.settings.source_db
    if ctx.facts.get("promotion_requested_at"):
        return (f"the fence stays: a promotion was requested at "
                f"{ctx.facts['promotion_requested_at']}")
    try:
        with fence.connect(ctx.settings.target_db.conninfo) as conn:
            if not fence.server_state(conn, ()).in_recovery:
                return f"the fence stays: {ctx.settings.target_db.where} is out of recovery"
    except psycopg.Error as exc:
        return (f"the fence stays: the target could not be read ({fence_error(exc)}), so a "
                "promotion cannot be ruled out")
    try:
        with fence.connect(link.conninfo) as conn:
            fence.open_writer(conn, ctx.settings.writer_roles)
    except psycopg.Error as exc:
        log.error("could not roll the fence back on %s: %s", link.where, fence_error(exc))
        return (f"the fence could NOT be rolled back ({fence_error(exc)}): {_roles(ctx)} "
                f"still may not log in on {link.where}")
    ctx.fact("fence_rolled_back_at", datetime.now(UTC).isoformat(), save=True)
    ctx.fact("final_lsn", None)
    ctx.fact("caught_up_at", None)
    return f"the fence was rolled back: {_roles(ctx)} may log in on {link.where} again"


class OpenNewWriter(Step[SwitchoverContext]):
    """After promotion: the writer roles came over NOLOGIN with the replicated fence."""

    name = "open-new-writer"
    title = "Let the app log in on the new writer"
    expected_seconds = ESTIMATES.api_call_seconds

    def check(self, ctx: SwitchoverContext) -> Verdict:
        link = ctx.settings.target_db
        try:
            state = _state(link, ctx)
        except StepFailedError as exc:
            return blocked(f"cannot read {exc}")
        if state.in_recovery:
            return run(f"would let {_roles(ctx)} log in on {link.where} once it is promoted")
        if all(state.logins.get(role) for role in ctx.settings.writer_roles):
            return done(f"{_roles(ctx)} may log in on {link.where}, a writer")
        return run(f"would let {_roles(ctx)} log in on {link.where}")

    def apply(self, ctx: SwitchoverContext) -> str:
        link = ctx.settings.target_db
        # RDS reports the instance available once promoted; wait for the server itself too.
        wait_until(f"{link.where} to leave recovery", lambda: _state(link, ctx),
                   lambda s: "still in recovery" if s.in_recovery else None,
                   ctx.options.timing.policy(ctx.wait_timeout), ctx.stop)
        with session(link) as conn:
            fence.open_writer(conn, ctx.settings.writer_roles)
        ctx.fact("writes_opened_at", datetime.now(UTC).isoformat())
        return f"{_roles(ctx)} may log in on {link.where}, the new writer"


def target_is_replica_of_source(ctx: SwitchoverContext) -> tuple[bool, str]:
    """What RDS says: the target instance replicates from the source instance."""
    db = probes.describe_database(ctx.target_clients.rds(), ctx.target_database)
    if db is None:
        return False, f"{ctx.target_database} not found in {ctx.target_clients.region}"
    if db.is_promoted:
        return False, f"{ctx.target_database} is already a standalone writer"
    source = db.source or ""
    expected = (ctx.target_source, ctx.source_database)
    if not any(source == e or source.endswith(":" + e) for e in expected):
        return False, f"{ctx.target_database} replicates from {source or 'nothing'}"
    return db.status == "available", f"{ctx.target_database} is {db.status}, replica of {source}"

"""The switchover's own steps: fence the writer, wait for the replica to replay its final
position (or roll the fence back), open the new writer. Promotion, scale-up, the traffic switch
and verification are the failover's steps (:mod:`caresync_dr.failover.steps`), reused.

Why no acknowledged write is lost, by construction: the fence refuses new logins of every
role but the master user, ends every client session of any role (waiting for each to exit)
and only then reads the writer's WAL *insert* position, which covers every commit already
acknowledged, asynchronous ones included; a scan after the read, with the snapshot the read
took, proves no session and no transaction could still commit behind it
(:mod:`caresync_dr.switchover.fence`, which also states the limits: superusers' sessions, and
master-user sessions opened after the read). Promotion is requested only after the replica has
replayed that position (the next stage; the runner stops on a failed step, and a resumed run
re-reads the replay position). Writes tried during the fence are refused at login or on their
ended session: never acknowledged, so never lost.

Which roles the fence closed is journalled before the first ``ALTER ROLE`` (fact
``fenced_roles``): a resumed run adds to that list, never replaces it, and opening the new
writer or rolling the fence back reopens exactly those roles (and the app's), so a role that
was NOLOGIN before the switchover stays NOLOGIN.
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


def fenced_roles(ctx: SwitchoverContext) -> list[str]:
    """The roles this switchover set NOLOGIN (journalled), with the app's writer roles: what
    opening a writer or rolling the fence back lets log in again, and nothing else."""
    recorded = ctx.facts.get("fenced_roles") or []
    return list(dict.fromkeys([*ctx.settings.writer_roles, *(str(r) for r in recorded)]))


def _listed(roles: list[str], limit: int = 6) -> str:
    shown = ", ".join(roles[:limit])
    return shown + (f" and {len(roles) - limit} more" if len(roles) > limit else "")


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
        return fence.server_state(conn, fenced_roles(ctx))


def fence_error(exc: psycopg.Error) -> str:
    """psycopg's first line, which never repeats the connection string's password."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


def past_the_fence(ctx: SwitchoverContext) -> bool:
    """This run (or the one it resumes) fenced, saw the final position replayed and asked
    for the promotion: the old writer is no longer needed to finish."""
    return bool(ctx.facts.get("final_lsn") and ctx.facts.get("caught_up_at")
                and ctx.facts.get("promotion_requested_at"))


def fenced(state: fence.ServerState, ctx: SwitchoverContext) -> bool:
    """The app may not log in: a fence is in place (or someone closed the app's roles)."""
    roles = ctx.settings.writer_roles
    return all(state.logins.get(role) is False for role in roles)


def fence_holds(state: fence.ServerState, ctx: SwitchoverContext) -> bool:
    """The fence this run journalled still holds: every role it closed still closed, no other
    role may log in, no client session, and no transaction id assigned since the final
    position was read (a master-user session that came and went would have moved it)."""
    kept = set(ctx.facts.get("roles_not_closed") or [])   # the server would not let us
    return (bool(ctx.facts.get("final_lsn")) and fenced(state, ctx)
            and all(state.logins.get(role) is False for role in fenced_roles(ctx)
                    if role not in kept)
            and not set(state.login_roles) - kept and state.sessions == 0
            and state.next_xid is not None and state.next_xid == ctx.facts.get("final_next_xid"))


class FenceWrites(Step[SwitchoverContext]):
    name = "fence-writes"
    title = ("Fence the writer: refuse every role's logins, end every session, read the final "
             "WAL position")
    expected_seconds = ESTIMATES.api_call_seconds

    def check(self, ctx: SwitchoverContext) -> Verdict:
        link = ctx.settings.source_db
        if past_the_fence(ctx):
            # What the old writer does now no longer matters: its final position was replayed
            # and the promotion asked for; fencing again would only move the position.
            return done(f"fenced earlier in this run at {ctx.facts.get('fenced_at')}, final "
                        f"position {ctx.facts['final_lsn']} replayed, promotion requested")
        try:
            state = _state(link, ctx)
        except StepFailedError as exc:
            return blocked(f"cannot read {exc}")
        if state.in_recovery:
            return blocked(f"the {link.site} database ({link.where}) is a replica, not the "
                           "writer")
        missing = [r for r in ctx.settings.writer_roles if r not in state.logins]
        if missing:
            return blocked(f"writer role(s) {', '.join(missing)} do not exist on {link.where}")
        if fence_holds(state, ctx):
            return done(f"{len(fenced_roles(ctx))} role(s) may not log in on {link.where}, no "
                        f"session, nothing committed since; final position "
                        f"{ctx.facts['final_lsn']}")
        closing = [*(ctx.facts.get("fenced_roles") or []), *state.login_roles]
        return run(f"would refuse logins of {_listed(list(dict.fromkeys(closing)))} on "
                   f"{link.where} (every role but the master user), end its {state.sessions} "
                   f"client session(s) of any role and read the final WAL position (now "
                   f"{state.current_lsn})")

    def apply(self, ctx: SwitchoverContext) -> str:
        link = ctx.settings.source_db
        # Saved first: a run killed from here on has a fence to finish or roll back.
        ctx.fact("fence_requested_at", datetime.now(UTC).isoformat(), save=True)

        def record(roles: list[str]) -> None:
            # Before any ALTER ROLE: a resumed or rolled-back run reopens exactly these.
            ctx.fact("fenced_roles", roles, save=True)

        try:
            with session(link) as conn:
                result = fence.fence_writes(
                    conn, on_roles=record, known_roles=ctx.facts.get("fenced_roles") or [],
                    terminate_timeout_ms=ctx.settings.terminate_ms)
        except fence.FenceError as exc:
            raise StepFailedError(f"fencing {link.where} failed: {exc}") from exc
        ended: dict[str, int] = {}
        for ended_session in result.terminated:
            ended[ended_session.role] = ended.get(ended_session.role, 0) + 1
        ctx.fact("fenced_at", result.fenced_at)
        ctx.fact("writer_sessions_ended", len(result.terminated))
        ctx.fact("sessions_ended_by_role", ended)
        ctx.fact("superuser_sessions", result.superuser_sessions)
        ctx.fact("roles_not_closed", list(result.not_closed))
        ctx.fact("final_lsn_at", result.final_lsn_at)
        ctx.fact("final_next_xid", result.next_xid)
        ctx.fact("final_lsn", result.final_lsn, save=True)
        ctx.fact("fence_rolled_back_at", None)
        ctx.fact("caught_up_at", None)
        by_role = ", ".join(f"{n} of {role}" for role, n in sorted(ended.items()))
        closed = [role for role in result.roles if role not in result.not_closed]
        return (f"{len(closed)} role(s) may not log in on {link.where} "
                f"({_listed(closed)}); {len(result.terminated)} session(s) ended"
                + (f" ({by_role})" if by_role else "")
                + (f"; {result.superuser_sessions} superuser session(s) left (not ours to "
                   "end)" if result.superuser_sessions else "")
                + (f"; NOT closed (the server would not let the master user alter them): "
                   f"{', '.join(result.not_closed)}" if result.not_closed else "")
                + f"; final WAL position {result.final_lsn}")


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
    roles = fenced_roles(ctx)
    try:
        with fence.connect(link.conninfo) as conn:
            fence.allow_logins(conn, roles)
    except psycopg.Error as exc:
        log.error("could not roll the fence back on %s: %s", link.where, fence_error(exc))
        return (f"the fence could NOT be rolled back ({fence_error(exc)}): {_listed(roles)} "
                f"still may not log in on {link.where}")
    ctx.fact("fence_rolled_back_at", datetime.now(UTC).isoformat(), save=True)
    ctx.fact("roles_reopened", roles)
    # A later --resume fences afresh: what it closes is what may log in then.
    ctx.fact("fenced_roles", None)
    ctx.fact("final_lsn", None)
    ctx.fact("final_next_xid", None)
    ctx.fact("caught_up_at", None, save=True)
    return (f"the fence was rolled back: {_listed(roles)} may log in on {link.where} again "
            "(the roles it had closed, no other)")


class OpenNewWriter(Step[SwitchoverContext]):
    """After promotion: the roles the fence closed came over NOLOGIN with the replicated
    catalog; exactly those (journalled as ``fenced_roles``) may log in again."""

    name = "open-new-writer"
    title = "Let the app and the other roles the fence closed log in on the new writer"
    expected_seconds = ESTIMATES.api_call_seconds

    def check(self, ctx: SwitchoverContext) -> Verdict:
        link = ctx.settings.target_db
        try:
            state = _state(link, ctx)
        except StepFailedError as exc:
            return blocked(f"cannot read {exc}")
        roles = fenced_roles(ctx)
        if state.in_recovery:
            return run(f"would let {_listed(roles)} log in on {link.where} once it is "
                       "promoted")
        if all(state.logins.get(role) for role in roles if role in state.logins):
            return done(f"{_listed(roles)} may log in on {link.where}, a writer")
        return run(f"would let {_listed(roles)} log in on {link.where}")

    def apply(self, ctx: SwitchoverContext) -> str:
        link = ctx.settings.target_db
        # RDS reports the instance available once promoted; wait for the server itself too.
        wait_until(f"{link.where} to leave recovery", lambda: _state(link, ctx),
                   lambda s: "still in recovery" if s.in_recovery else None,
                   ctx.options.timing.policy(ctx.wait_timeout), ctx.stop)
        roles = fenced_roles(ctx)
        with session(link) as conn:
            fence.allow_logins(conn, roles)
        ctx.fact("roles_reopened", roles)
        ctx.fact("writes_opened_at", datetime.now(UTC).isoformat())
        return f"{_listed(roles)} may log in on {link.where}, the new writer"


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

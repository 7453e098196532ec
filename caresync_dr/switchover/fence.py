"""The database side of a planned switchover: fence the writer, find its final WAL position,
wait for the replica to replay it, open the new writer. SQL only, over a psycopg connection
as the RDS master user.

What the master user may do on RDS (RDS User Guide, "Understanding the rds_superuser role",
https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/Appendix.PostgreSQL.CommonDBATasks.Roles.rds_superuser.html):
it is ``LOGIN NOSUPERUSER CREATEDB CREATEROLE`` and a member of ``rds_superuser``, which may
read every session in ``pg_stat_activity`` and stop connections with ``pg_terminate_backend``.
It is *not* a superuser ("you can't connect using the PostgreSQL superuser account"), so
``ALTER SYSTEM`` and ``pg_switch_wal`` are out of reach. The fence therefore uses only what
the master user may do on RDS and on a self-managed server alike.

The fence covers every client session, whatever its role -- the app's ``caresync_app``, the
roles of :mod:`caresync_dr.db.roles` (backup, restore, restore test; ``caresync_owner`` is
NOLOGIN and reached only through ``SET ROLE`` in such a session), an operator's psql or a
migration job as the master user:

1. **Refuse logins** (:func:`login_roles`, :func:`refuse_logins`): ``ALTER ROLE <r> NOLOGIN``
   for every role that may log in now and that the master user may alter -- not a superuser,
   not a ``REPLICATION`` role (PostgreSQL 15 docs, "ALTER ROLE": roles with CREATEROLE "can
   change any of these settings except SUPERUSER, REPLICATION, and BYPASSRLS; but only for
   non-superuser and non-replication roles"), not a predefined ``pg_*`` role, and not the
   master user itself (the switchover must be able to log in again to resume or roll back).
   The caller records the list *before* the first ``ALTER`` (``on_roles``), so a resumed or
   rolled-back run reopens exactly the roles this switchover closed: a role that was NOLOGIN
   before stays so. ``NOLOGIN`` is a catalog change and replicates, so the promoted replica
   carries it too and :func:`allow_logins` reopens the same list there. A listed role the
   server still will not let the master user alter (a managed service may protect its own
   accounts) keeps its logins and is named (``Fence.not_closed``); its sessions are still
   ended.
2. **End every session** (:func:`client_sessions`): ``pg_terminate_backend(pid, timeout)`` on
   every session except this one, the WAL senders (``pg_stat_get_wal_senders``; the replica
   streams through one) and superusers' sessions. With a timeout (PostgreSQL 14+) it returns
   only once the backend has exited, so every transaction those sessions committed is in the
   WAL by then, and nothing they had not committed ever will be. No role filter: a second
   session of the master user is ended like any other.
3. **Read the final position** (:func:`final_position`) only after that: the *insert*
   position, ``pg_current_wal_insert_lsn()``, not the write position
   ``pg_current_wal_lsn()``. With ``synchronous_commit = off`` COMMIT returns once the commit
   record is in the WAL buffers, before it is written or flushed (PostgreSQL 15 docs, 30.4
   "Asynchronous Commit"); the insert position is "the logical end of the write-ahead log at
   any instant", the write position only "the end of what has actually been written out from
   the server's internal buffers" (PostgreSQL 15 docs, 9.27.3 "Backup Control Functions").
   The WAL sender ships only WAL flushed on the writer (PostgreSQL source,
   ``src/backend/replication/walsender.c``, ``XLogSendPhysical``: ``GetFlushRecPtr``), so a
   replica that has replayed the insert position proves those records were flushed, shipped
   and applied: ``synchronous_commit`` may be anything. When nothing has been inserted on a
   new page yet, ``pg_current_wal_insert_lsn()`` points past that page's header, where no
   record ends; :func:`record_end` moves it back to the page boundary (the same observation
   as the pgsql-hackers patch "Expose the WAL insertion end position to SQL", 2026), or an
   idle writer would never be "replayed".
4. **Scan again** after the read, with no role filter: a session found (a login that had
   passed its checks before ``NOLOGIN`` committed, a second master-user session) is ended and
   the position read again. The same read takes the statement's snapshot: a transaction of a
   fenceable session still in progress then, or any transaction id assigned between the read
   and the scan (``pg_snapshot_xmax`` moved), means a commit may land after the position, so
   it is read again too. Prepared transactions are not waited for: they stay prepared on the
   replica, neither committed nor lost.

Limits, stated: a **superuser** session cannot be ended by the master user ("only superusers
can terminate superuser backends", PostgreSQL 15 docs, 9.27.2 "Server Signaling Functions";
on RDS that is ``rdsadmin``, RDS's own account, which the master user is not -- RDS User
Guide, "Understanding the rds_superuser role" -- and a non-superuser gets "must be a
superuser to terminate superuser process", AWS re:Post, "rds-cancel-long-running-queries").
Its writes are RDS's own (monitoring, heartbeats); such sessions are counted
(``superuser_sessions``), never waited for, and their transactions at most make the fence
read the position once more. The **master user** cannot be refused: a session it opens
*after* the fence has read its final position can still commit on the old writer, and such a
commit is not on the new one. Run no psql, migration or job as the master user during a
switchover (the runbook says so). With asynchronous commit, a commit acknowledged but not yet
flushed is lost if the old writer *crashes* first (PostgreSQL 15 docs, 30.4: "the most recent
transactions may be lost if the database should crash"): the replica then never reaches the
final position, the wait times out and nothing is promoted -- the loss is asynchronous
commit's own, not the switchover's.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import sql

APPLICATION_NAME = "caresync-switchover"
CONNECT_TIMEOUT_SECONDS = 5
# XLOG page headers (src/include/access/xlog_internal.h, MAXALIGNed on 64-bit servers):
# every WAL page starts with the short header, the first page of a segment with the long one.
SHORT_PAGE_HEADER = 24
LONG_PAGE_HEADER = 40

Connection = psycopg.Connection[Any]

# Sessions the fence ends: every one but this, the WAL senders and superusers' (which a
# non-superuser may not signal). usesysid is NULL for the server's own processes (checkpointer,
# autovacuum, ...): they are not clients. backend_type is not used: a role without
# pg_read_all_stats sees it NULL for other roles' sessions.
_FENCEABLE = """
    from pg_catalog.pg_stat_activity a join pg_catalog.pg_roles r on r.oid = a.usesysid
    where a.pid <> pg_backend_pid() and not r.rolsuper
      and a.pid not in (select w.pid from pg_catalog.pg_stat_get_wal_senders() w
                        where w.pid is not null)"""
# Roles whose logins the fence refuses: what the master user may alter (see the docstring).
_LOGIN_ROLES = """
    select rolname from pg_catalog.pg_roles
    where rolcanlogin and not rolsuper and not rolreplication and rolname <> session_user
      and rolname !~ '^pg_' order by rolname"""

# The insert position and the WAL geometry record_end needs (pg_settings gives both in bytes).
_INSERT_POSITION = """pg_current_wal_insert_lsn()::text,
    (select setting::bigint from pg_catalog.pg_settings where name = 'wal_block_size'),
    (select setting::bigint from pg_catalog.pg_settings where name = 'wal_segment_size')"""


class FenceError(RuntimeError):
    """A fence statement could not be completed (the message says which and why)."""


def connect(conninfo: str) -> Connection:
    """An autocommit session as the master user, named so reports can tell it apart."""
    return psycopg.connect(conninfo, autocommit=True, connect_timeout=CONNECT_TIMEOUT_SECONDS,
                           application_name=APPLICATION_NAME)


@dataclass(frozen=True)
class ServerState:
    """One server as the switchover sees it."""

    in_recovery: bool
    synchronous_commit: str       # informational: every value is covered (see the docstring)
    current_lsn: str | None       # the writer's insert position (record_end); None on a replica
    replay_lsn: str | None        # a replica's last replayed position; None on a writer
    receive_lsn: str | None       # a replica's last WAL position received, else None
    logins: dict[str, bool]       # named role -> may log in
    sessions: int                 # client sessions the fence would end (every role)
    login_roles: tuple[str, ...]  # roles whose logins the fence would refuse now
    next_xid: str | None          # the next transaction id to be assigned; None on a replica


def server_state(conn: Connection, roles: Sequence[str]) -> ServerState:
    """Reads only (a read-only session may call it). ``roles``: whose logins to report."""
    row = conn.execute(
        "select pg_is_in_recovery(), current_setting('synchronous_commit'), "
        "pg_last_wal_replay_lsn()::text, pg_last_wal_receive_lsn()::text").fetchone()
    assert row is not None
    in_recovery = bool(row[0])
    lsn = next_xid = None
    if not in_recovery:
        position = conn.execute(
            "select pg_snapshot_xmax(pg_current_snapshot())::text, " + _INSERT_POSITION
        ).fetchone()
        assert position is not None
        next_xid = str(position[0])
        lsn = record_end(str(position[1]), int(position[2]), int(position[3]))
    # pg_stat_wal_receiver / pg_stat_replication hide their rows from a role without
    # pg_read_all_stats; the LSN functions are open to every role.
    return ServerState(in_recovery=in_recovery, synchronous_commit=str(row[1]),
                       current_lsn=lsn, replay_lsn=row[2] if in_recovery else None,
                       receive_lsn=row[3] if in_recovery else None,
                       logins=role_logins(conn, roles),
                       sessions=len(client_sessions(conn)),
                       login_roles=tuple(login_roles(conn)), next_xid=next_xid)


def role_logins(conn: Connection, roles: Sequence[str]) -> dict[str, bool]:
    """Each named role that exists -> whether it may log in."""
    rows = conn.execute("select rolname, rolcanlogin from pg_roles where rolname = any(%s)",
                        (list(roles),)).fetchall()
    return {str(name): bool(can) for name, can in rows}


def login_roles(conn: Connection) -> list[str]:
    """Roles that may log in now and whose logins the fence refuses, sorted."""
    return [str(name) for (name,) in conn.execute(_LOGIN_ROLES).fetchall()]


@dataclass(frozen=True)
class ClientSession:
    pid: int
    role: str


def client_sessions(conn: Connection) -> list[ClientSession]:
    """Every session the fence ends, of any role (see ``_FENCEABLE``)."""
    rows = conn.execute("select a.pid, r.rolname" + _FENCEABLE).fetchall()
    return [ClientSession(int(pid), str(role)) for pid, role in rows]


def superuser_sessions(conn: Connection) -> int:
    """Superusers' client sessions, which a non-superuser may not end (on RDS: rdsadmin)."""
    row = conn.execute(
        "select count(*) from pg_catalog.pg_stat_activity a join pg_catalog.pg_roles r "
        "on r.oid = a.usesysid where r.rolsuper and a.pid <> pg_backend_pid() and a.pid not "
        "in (select w.pid from pg_catalog.pg_stat_get_wal_senders() w where w.pid is not null)"
    ).fetchone()
    return int(row[0]) if row else 0


def _set_login(conn: Connection, roles: Sequence[str], login: bool) -> list[str]:
    """``ALTER ROLE`` each role that still exists (one dropped meanwhile is not an error);
    returns the roles the server would not let this user alter (left as they were)."""
    keyword = sql.SQL("LOGIN" if login else "NOLOGIN")
    existing = set(role_logins(conn, roles))
    refused: list[str] = []
    for role in roles:
        if role not in existing:
            continue
        try:
            conn.execute(sql.SQL("ALTER ROLE {} {}").format(sql.Identifier(role), keyword))
        except psycopg.errors.InsufficientPrivilege:
            refused.append(role)
    return refused


def refuse_logins(conn: Connection, roles: Sequence[str]) -> list[str]:
    """``NOLOGIN`` for each role; returns those the master user may not alter. The catalog
    query already leaves out what PostgreSQL forbids; a managed service may protect more of
    its own roles (RDS keeps its internal accounts to itself): such a role keeps its logins,
    its sessions are still ended, and the report names it."""
    return _set_login(conn, roles, login=False)


def allow_logins(conn: Connection, roles: Sequence[str]) -> list[str]:
    """Let ``roles`` log in again: exactly the list the fence recorded (and the app's roles),
    on the new writer after promotion or on the old writer when the fence is rolled back.
    Returns the roles that could not be altered (the fence could not close them either)."""
    return _set_login(conn, roles, login=True)


def _terminate(conn: Connection, timeout_ms: int) -> list[ClientSession]:
    """End every fenceable session and wait for each to exit; returns those ended."""
    rows = conn.execute("select a.pid, r.rolname, pg_terminate_backend(a.pid, %s)"
                        + _FENCEABLE, (timeout_ms,)).fetchall()
    stuck = [int(pid) for pid, _, ended in rows if not ended]
    if stuck:
        raise FenceError(f"session(s) {stuck} did not exit within {timeout_ms} ms of "
                         "pg_terminate_backend")
    return [ClientSession(int(pid), str(role)) for pid, role, _ in rows]


def lsn_value(lsn: str) -> int:
    """``X/Y`` LSN text (PostgreSQL's pg_lsn) as a byte position."""
    high, _, low = lsn.partition("/")
    return (int(high, 16) << 32) + int(low, 16)


def lsn_text(value: int) -> str:
    return f"{value >> 32:X}/{value & 0xFFFFFFFF:X}"


def record_end(insert_lsn: str, page_size: int, segment_size: int) -> str:
    """The end of the last WAL record inserted, from ``pg_current_wal_insert_lsn()`` and the
    server's ``wal_block_size`` and ``wal_segment_size``: when nothing has been inserted on a
    new page yet that function points past the page header (the long one on a segment's first
    page), where no record ends; a replica that has replayed everything shows the boundary."""
    value = lsn_value(insert_lsn)
    if value % segment_size == LONG_PAGE_HEADER:
        return lsn_text(value - LONG_PAGE_HEADER)
    if value % page_size == SHORT_PAGE_HEADER:
        return lsn_text(value - SHORT_PAGE_HEADER)
    return insert_lsn


@dataclass(frozen=True)
class Position:
    """One read of the writer's final position, with what its statement's snapshot saw."""

    lsn: str                  # record_end of the insert position
    next_xid: str             # pg_snapshot_xmax: no transaction id at or above it existed
    in_progress: int          # transactions in progress of sessions the fence may end


def final_position(conn: Connection) -> Position:
    """The insert position, read after the statement's snapshot was taken (functions are
    evaluated during execution; ``pg_current_snapshot()`` is the statement's snapshot): a
    transaction not in progress in that snapshot had inserted its commit record already."""
    row = conn.execute("""
        with s as (select pg_current_snapshot() as snap)
        select pg_snapshot_xmax(snap)::text,
               (select count(*) from pg_snapshot_xip(snap) x
                 where xid(x) not in (select transaction from pg_catalog.pg_prepared_xacts)
                   and not exists (
                     select 1 from pg_catalog.pg_locks l
                     join pg_catalog.pg_stat_activity a on a.pid = l.pid
                     join pg_catalog.pg_roles r on r.oid = a.usesysid
                     where l.locktype = 'transactionid' and l.transactionid = xid(x)
                       and l.mode = 'ExclusiveLock' and r.rolsuper)),
               """ + _INSERT_POSITION + """
        from s""").fetchone()
    assert row is not None
    return Position(lsn=record_end(str(row[2]), int(row[3]), int(row[4])),
                    next_xid=str(row[0]), in_progress=int(row[1]))


def next_xid(conn: Connection) -> str:
    row = conn.execute("select pg_snapshot_xmax(pg_current_snapshot())::text").fetchone()
    assert row is not None
    return str(row[0])


@dataclass(frozen=True)
class Fence:
    """What fencing did: the roles refused, when, the sessions ended, the final position,
    when it was read and the next transaction id then."""

    roles: tuple[str, ...]            # every role set NOLOGIN by this fence (and earlier runs)
    fenced_at: str                    # ISO time the last NOLOGIN committed
    terminated: tuple[ClientSession, ...]
    final_lsn: str
    final_lsn_at: str
    next_xid: str
    superuser_sessions: int           # sessions the master user could not end (rdsadmin)
    reads: int                        # how many times the position was read
    not_closed: tuple[str, ...] = ()  # listed roles the server would not let us alter


def fence_writes(conn: Connection, *, on_roles: Callable[[list[str]], None],
                 known_roles: Sequence[str] = (), terminate_timeout_ms: int = 5000,
                 attempts: int = 20) -> Fence:
    """Refuse new logins of every login role but the master user, end every session, read the
    final WAL position (steps 1-4 of the module docstring).

    ``on_roles(roles)`` is called with every role the fence refuses (``known_roles``, those an
    earlier run of the same switchover refused, first) *before* any ``ALTER ROLE``: the caller
    writes them to its journal. The position is accepted only when a scan after reading it
    finds no session, no fenceable transaction was in progress when it was read and no
    transaction id was assigned since; otherwise the sessions are ended and it is read again,
    up to ``attempts`` times. Raises :class:`FenceError` if that never holds (the fence stays
    in place, the final position unknown), or over a read-only session (``--check``,
    ``--dry-run``) before doing anything."""
    row = conn.execute("select current_setting('default_transaction_read_only')").fetchone()
    if row is not None and row[0] == "on":
        raise FenceError("this session is read-only (a check or dry run): nothing fenced")
    roles: list[str] = list(dict.fromkeys(known_roles))
    fenced_at = ""
    not_closed: list[str] = []
    terminated: list[ClientSession] = []
    why = ""
    for attempt in range(1, attempts + 1):
        new = [r for r in login_roles(conn) if r not in roles]
        if new or not fenced_at:
            roles += new
            on_roles(list(roles))
            not_closed = refuse_logins(conn, roles)
            fenced_at = datetime.now(UTC).isoformat()
        terminated += _terminate(conn, terminate_timeout_ms)
        position = final_position(conn)
        read_at = datetime.now(UTC).isoformat()
        late = client_sessions(conn)
        moved = next_xid(conn) != position.next_xid
        if not late and not position.in_progress and not moved:
            return Fence(roles=tuple(roles), fenced_at=fenced_at, terminated=tuple(terminated),
                         final_lsn=position.lsn, final_lsn_at=read_at,
                         next_xid=position.next_xid,
                         superuser_sessions=superuser_sessions(conn), reads=attempt,
                         not_closed=tuple(not_closed))
        why = (f"{len(late)} session(s) of {', '.join(sorted({s.role for s in late}))} "
               "after the read" if late else
               f"{position.in_progress} transaction(s) in progress at the read"
               if position.in_progress else "transaction ids assigned after the read")
        time.sleep(0.05)
    raise FenceError(f"the position never held still after {attempts} reads (last: {why}); "
                     "the fence is in place, the final position unknown")


def replayed(conn: Connection, lsn: str) -> tuple[bool, str | None]:
    """(has this replica replayed WAL up to ``lsn``, its replay position)."""
    row = conn.execute("select pg_last_wal_replay_lsn()::text, "
                       "coalesce(pg_last_wal_replay_lsn() >= %s::pg_lsn, false)",
                       (lsn,)).fetchone()
    assert row is not None
    return bool(row[1]), row[0]


def lsn_bytes(ahead: str, behind: str) -> int:
    """Bytes from ``behind`` to ``ahead`` (``X/Y`` LSN text, PostgreSQL's pg_lsn)."""
    return lsn_value(ahead) - lsn_value(behind)

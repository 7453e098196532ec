"""The database side of a planned switchover: fence the writer, find its final WAL position,
wait for the replica to replay it, open the new writer. SQL only, over a psycopg connection
as the RDS master user.

What the master user may do on RDS (RDS User Guide, "Understanding the rds_superuser role",
https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/Appendix.PostgreSQL.CommonDBATasks.Roles.rds_superuser.html):
it is ``LOGIN NOSUPERUSER CREATEDB CREATEROLE`` and a member of ``rds_superuser``, which may
read every session in ``pg_stat_activity`` and stop any connection with
``pg_terminate_backend``. It is *not* a superuser, so ``ALTER SYSTEM`` (superuser only,
PostgreSQL 15 docs "ALTER SYSTEM") and ``pg_switch_wal`` are out of reach. The fence therefore
uses only what the master user may do on RDS and on a self-managed server alike:

1. ``ALTER ROLE <writer> NOLOGIN`` for each writer role (the app's ``caresync_app``): new
   logins are refused (CREATEROLE may alter any non-superuser role, PostgreSQL 15 docs
   "CREATE ROLE");
2. ``pg_terminate_backend(pid, timeout)`` for every session of those roles: with a timeout
   (PostgreSQL 14+) it returns only once the backend has exited, so every transaction those
   sessions committed is in the WAL by then, and nothing they had not committed ever will be;
3. ``pg_current_wal_lsn()``, read *after* the last writer session is gone: the final position.
   A commit acknowledged with ``synchronous_commit`` on (or ``local``/``remote_*``) was written
   and flushed before COMMIT returned, so its commit record ends at or before the write
   position read afterwards (PostgreSQL 15 docs, "System Administration Functions").

``NOLOGIN`` is a catalog change, so it replicates: the replica carries it and the switchover
opens the role on the new writer after promotion (:func:`open_writer`); the old writer keeps it
(it stays fenced). Rolling the fence back (the replica did not catch up in time) is
:func:`open_writer` on the old writer.

Not covered by the fence: sessions of roles that are not named as writers (the master user's
own). A late login that had passed its password check before ``NOLOGIN`` committed is caught by
the scan after the final position is read (:func:`fence_writes` then terminates it and reads
the position again).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import sql

APPLICATION_NAME = "caresync-switchover"
CONNECT_TIMEOUT_SECONDS = 5
# synchronous_commit values under which COMMIT returns only after the commit record is flushed
# locally (PostgreSQL 15 docs, "Write Ahead Log", synchronous_commit).
FLUSHING_COMMITS = ("on", "local", "remote_write", "remote_apply")

Connection = psycopg.Connection[Any]


class FenceError(RuntimeError):
    """A fence statement could not be completed (the message says which and why)."""


def connect(conninfo: str) -> Connection:
    """An autocommit session as the master user, named so the fence never terminates it."""
    return psycopg.connect(conninfo, autocommit=True, connect_timeout=CONNECT_TIMEOUT_SECONDS,
                           application_name=APPLICATION_NAME)


@dataclass(frozen=True)
class ServerState:
    """One server as the switchover sees it."""

    in_recovery: bool
    synchronous_commit: str
    current_lsn: str | None       # the writer's WAL write position; None on a replica
    replay_lsn: str | None        # a replica's last replayed position; None on a writer
    receive_lsn: str | None       # a replica's last WAL position received, else None
    logins: dict[str, bool]       # writer role -> may log in
    sessions: int                 # client sessions of the writer roles


def server_state(conn: Connection, roles: Sequence[str]) -> ServerState:
    row = conn.execute(
        "select pg_is_in_recovery(), current_setting('synchronous_commit'), "
        "case when pg_is_in_recovery() then null else pg_current_wal_lsn()::text end, "
        "pg_last_wal_replay_lsn()::text, pg_last_wal_receive_lsn()::text").fetchone()
    assert row is not None
    # pg_stat_wal_receiver / pg_stat_replication hide their rows from a role without
    # pg_read_all_stats; the LSN functions are open to every role.
    return ServerState(in_recovery=bool(row[0]), synchronous_commit=str(row[1]),
                       current_lsn=row[2], replay_lsn=row[3] if row[0] else None,
                       receive_lsn=row[4] if row[0] else None,
                       logins=role_logins(conn, roles),
                       sessions=len(writer_sessions(conn, roles)))


def role_logins(conn: Connection, roles: Sequence[str]) -> dict[str, bool]:
    """Each named role that exists -> whether it may log in."""
    rows = conn.execute("select rolname, rolcanlogin from pg_roles where rolname = any(%s)",
                        (list(roles),)).fetchall()
    return {str(name): bool(can) for name, can in rows}


def writer_sessions(conn: Connection, roles: Sequence[str]) -> list[int]:
    """Sessions of the writer roles, never this one. No ``backend_type`` filter: a non-superuser
    without ``pg_read_all_stats`` sees it as NULL for other roles' sessions; the writer roles
    are NOREPLICATION, so none of their sessions is a walsender."""
    rows = conn.execute("select pid from pg_stat_activity where usename = any(%s) "
                        "and pid <> pg_backend_pid()", (list(roles),)).fetchall()
    return [int(pid) for (pid,) in rows]


def _set_login(conn: Connection, roles: Sequence[str], login: bool) -> None:
    keyword = sql.SQL("LOGIN" if login else "NOLOGIN")
    for role in roles:
        conn.execute(sql.SQL("ALTER ROLE {} {}").format(sql.Identifier(role), keyword))


def _terminate(conn: Connection, roles: Sequence[str], timeout_ms: int) -> int:
    """Terminate every writer session and wait for each to exit; returns how many."""
    rows = conn.execute(
        "select pid, pg_terminate_backend(pid, %s) from pg_stat_activity "
        "where usename = any(%s) and pid <> pg_backend_pid()",
        (timeout_ms, list(roles))).fetchall()
    stuck = [int(pid) for pid, ended in rows if not ended]
    if stuck:
        raise FenceError(f"writer session(s) {stuck} did not exit within {timeout_ms} ms of "
                         "pg_terminate_backend")
    return len(rows)


@dataclass(frozen=True)
class Fence:
    """What fencing did: when logins were refused, how many sessions ended, the final
    position and when it was read."""

    roles: tuple[str, ...]
    fenced_at: str                # ISO time NOLOGIN committed
    terminated: int
    final_lsn: str
    final_lsn_at: str


def fence_writes(conn: Connection, roles: Sequence[str], *, terminate_timeout_ms: int = 5000,
                 attempts: int = 5) -> Fence:
    """Refuse new logins of ``roles``, end their sessions, read the final WAL position.

    The position is read only once a scan *after* reading it finds no writer session: a
    session that slipped in (its login checked before ``NOLOGIN`` committed) is terminated and
    the position read again. Raises :class:`FenceError` if sessions keep appearing, or over a
    read-only session (``--check``/``--dry-run``), before doing anything."""
    row = conn.execute("select current_setting('default_transaction_read_only')").fetchone()
    if row is not None and row[0] == "on":
        raise FenceError("this session is read-only (a check or dry run): nothing fenced")
    _set_login(conn, roles, login=False)
    fenced_at = datetime.now(UTC).isoformat()
    terminated = 0
    for _ in range(attempts):
        terminated += _terminate(conn, roles, terminate_timeout_ms)
        row = conn.execute("select pg_current_wal_lsn()::text").fetchone()
        assert row is not None
        read_at = datetime.now(UTC).isoformat()
        if not writer_sessions(conn, roles):
            return Fence(roles=tuple(roles), fenced_at=fenced_at, terminated=terminated,
                         final_lsn=str(row[0]), final_lsn_at=read_at)
        time.sleep(0.05)
    raise FenceError(f"sessions of {', '.join(roles)} kept appearing after NOLOGIN "
                     f"({attempts} scans); the fence is in place, the final position unknown")


def open_writer(conn: Connection, roles: Sequence[str]) -> None:
    """Let the writer roles log in again (the new writer after promotion, or the old writer
    when the fence is rolled back)."""
    _set_login(conn, roles, login=True)


def replayed(conn: Connection, lsn: str) -> tuple[bool, str | None]:
    """(has this replica replayed WAL up to ``lsn``, its replay position)."""
    row = conn.execute("select pg_last_wal_replay_lsn()::text, "
                       "coalesce(pg_last_wal_replay_lsn() >= %s::pg_lsn, false)",
                       (lsn,)).fetchone()
    assert row is not None
    return bool(row[1]), row[0]


def lsn_bytes(ahead: str, behind: str) -> int:
    """Bytes from ``behind`` to ``ahead`` (``X/Y`` LSN text, PostgreSQL's pg_lsn)."""
    def value(lsn: str) -> int:
        high, _, low = lsn.partition("/")
        return (int(high, 16) << 32) + int(low, 16)
    return value(ahead) - value(behind)

"""Logging in to the database, and the sessions of a role: who is connected, since when.

Used by the credential rotation (does the new password work, is the old one refused) and by
``breach.py`` (end the sessions a compromised credential opened). Everything runs as a role
that may signal other backends: on RDS the master user (``rds_superuser`` is a member of
``pg_signal_backend``; it cannot signal superuser backends, which RDS customers do not have).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql

# What PostgreSQL answers when a login is refused for its credentials (not for the network):
# a wrong password (28P01), an unknown role, a role without LOGIN (28000).
REFUSAL_MARKERS = ("password authentication failed", "does not exist",
                   "is not permitted to log in")
# Every connection of ours carries it, so our own short logins (tests of a password) are told
# apart from the app's sessions.
OWN_APPLICATION_NAME = "caresync-dr"


class LoginRefusedError(Exception):
    """The server refused the credentials (the message is the server's)."""


@dataclass(frozen=True)
class Endpoint:
    """Where a database answers: ``host:port`` as the site's endpoint parameter holds it."""

    host: str
    port: int
    dbname: str
    sslmode: str = "require"   # RDS enforces TLS (rds.force_ssl); the drill's server has none

    @classmethod
    def parse(cls, value: str, dbname: str, sslmode: str = "require") -> Endpoint:
        host, _, port = value.strip().rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"database endpoint {value!r} is not host:port")
        return cls(host=host, port=int(port), dbname=dbname, sslmode=sslmode)

    def __str__(self) -> str:
        return f"{self.host}:{self.port}/{self.dbname}"


def connect(endpoint: Endpoint, user: str, password: str, *,
            timeout: float = 5.0) -> psycopg.Connection[Any]:
    """An autocommit connection; :class:`LoginRefusedError` when the credentials are refused,
    ``psycopg.OperationalError`` when the server cannot be reached."""
    try:
        return psycopg.connect(host=endpoint.host, port=endpoint.port, dbname=endpoint.dbname,
                               user=user, password=password, sslmode=endpoint.sslmode,
                               connect_timeout=max(1, int(timeout)), autocommit=True,
                               application_name=OWN_APPLICATION_NAME)
    except psycopg.OperationalError as exc:
        text = str(exc)
        if any(marker in text for marker in REFUSAL_MARKERS):
            raise LoginRefusedError(text.strip().splitlines()[-1]) from exc
        raise


def login_refused(endpoint: Endpoint, user: str, password: str) -> bool:
    """True when the server refuses this user/password (the credential no longer works);
    False when it lets it in. A server that cannot be reached raises."""
    try:
        conn = connect(endpoint, user, password)
    except LoginRefusedError:
        return True
    conn.close()
    return False


@dataclass(frozen=True)
class Session:
    pid: int
    user: str
    client: str | None
    started: datetime
    application: str = field(default="")


def sessions_of(conn: psycopg.Connection[Any], role: str) -> list[Session]:
    """Client sessions of ``role`` on the connected server, this one excluded."""
    rows = conn.execute(
        "SELECT pid, usename, host(client_addr), backend_start, coalesce(application_name, '') "
        "FROM pg_catalog.pg_stat_activity WHERE usename = %s AND pid <> pg_backend_pid() "
        "AND backend_type = 'client backend'", (role,)).fetchall()
    return [Session(pid=int(r[0]), user=str(r[1]), client=r[2], started=r[3],
                    application=str(r[4])) for r in rows]


def terminate(conn: psycopg.Connection[Any], sessions: list[Session]) -> list[int]:
    """``pg_terminate_backend`` each session; returns the pids the server signalled (a session
    that ended meanwhile is not an error)."""
    ended = []
    for session in sessions:
        row = conn.execute("SELECT pg_terminate_backend(%s)", (session.pid,)).fetchone()
        if row and row[0]:
            ended.append(session.pid)
    return ended


def role_exists(conn: psycopg.Connection[Any], role: str) -> bool:
    row = conn.execute("SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = %s",
                       (role,)).fetchone()
    return row is not None


def can_login(conn: psycopg.Connection[Any], role: str) -> bool:
    row = conn.execute("SELECT rolcanlogin FROM pg_catalog.pg_roles WHERE rolname = %s",
                       (role,)).fetchone()
    return bool(row and row[0])


def disable_login(conn: psycopg.Connection[Any], role: str) -> None:
    """``ALTER ROLE ... NOLOGIN``: a compromised role without a secret cannot be rotated, so it
    cannot log in at all until someone re-enables it after the investigation."""
    conn.execute(sql.SQL("ALTER ROLE {} NOLOGIN").format(sql.Identifier(role)))


def in_recovery(conn: psycopg.Connection[Any]) -> bool:
    row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
    return bool(row and row[0])

"""The fence on real PostgreSQL 15 as an RDS-like master user (not a superuser): logins of
every role but the master user refused, every session of any role ended (a second master-user
session, the restore role a migration job would use, the app), a session that logs in after
the position was read caught by the scan, the final position covering every acknowledged
write, the standby replaying it, and only what the fence closed reopened."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from caresync_dr.db.roles import APP_ROLE, BACKUP_ROLE, OWNER_ROLE
from caresync_dr.switchover import databases, fence
from tests.switchover.pg import (
    MASTER,
    RESTORE,
    RETIRED,
    Pair,
    add_other_roles,
    can_login,
    connect_as,
    start_pair,
)

pytestmark = pytest.mark.postgres
ROLES = (APP_ROLE.name,)


@pytest.fixture(scope="module")
def pair() -> Iterator[Pair]:
    for started in start_pair():
        add_other_roles(started)
        yield started


def fence_now(conn: fence.Connection, recorded: list[list[str]] | None = None) -> fence.Fence:
    """The fence as the switchover's step calls it, recording what it would journal."""
    seen = recorded if recorded is not None else []
    return fence.fence_writes(conn, on_roles=lambda roles: seen.append(list(roles)))


def wait_replayed(pair: Pair, lsn: str) -> None:
    with fence.connect(pair.master_url(pair.standby)) as replica:
        for _ in range(400):
            if fence.replayed(replica, lsn)[0]:
                return
            replica.execute("select pg_sleep(0.025)")
    raise AssertionError(f"the standby never replayed {lsn}")


def on_standby(pair: Pair, low: int, high: int) -> set[int]:
    out = pair.standby.psql(f"select seq from patients where seq between {low} and {high}",
                            dbname="caresync")
    return {int(s) for s in out.split()}


def reopen(pair: Pair, roles: tuple[str, ...]) -> None:
    with fence.connect(pair.master_url(pair.primary)) as conn:
        fence.allow_logins(conn, roles)


def test_the_master_user_is_not_a_superuser(pair: Pair) -> None:
    with fence.connect(pair.master_url(pair.primary)) as conn:
        row = conn.execute("select rolsuper from pg_roles where rolname = current_user"
                           ).fetchone()
    assert row == (False,)


def test_the_fence_ends_every_role_and_reopens_only_what_it_closed(pair: Pair) -> None:
    """Issue 15 item 1, fault 1: the fence covered only caresync_app. An operator's psql as
    the master user and a job as the restore role (caresync_dr.db.roles) kept writing after
    the final position was read: acknowledged on the old writer, lost by the promotion."""
    before = can_login(pair.primary)
    assert before[RETIRED] is False and before[OWNER_ROLE] is False
    # The app's clone login (alternating-users rotation) is a writer like caresync_app.
    clone = str(APP_ROLE.alternate)
    writers = {role: connect_as(pair, pair.primary, role)
               for role in (APP_ROLE.name, clone, MASTER, RESTORE)}
    acknowledged = []
    for seq, conn in enumerate(writers.values(), start=1000):
        conn.execute("insert into patients (seq, name) values (%s, 'before')", (seq,))
        acknowledged.append(seq)
    recorded: list[list[str]] = []
    with fence.connect(pair.master_url(pair.primary)) as conn:
        done = fence_now(conn, recorded)
        assert fence.client_sessions(conn) == []
    closed = {role for role, ok in before.items() if ok and role != MASTER}
    assert set(done.roles) == closed == set(recorded[0])   # journalled before any ALTER ROLE
    assert {APP_ROLE.name, clone, RESTORE, BACKUP_ROLE.name} <= closed
    assert {s.role for s in done.terminated} >= {APP_ROLE.name, clone, MASTER, RESTORE}
    # every session that wrote is gone: nothing more can be acknowledged on the old writer
    for seq, conn in enumerate(writers.values(), start=2000):
        with pytest.raises(psycopg.OperationalError):
            conn.execute("insert into patients (seq, name) values (%s, 'late')", (seq,))
        conn.close()
    # new logins of every closed role are refused; the master user may still log in
    for role in (APP_ROLE.name, clone, RESTORE):
        with pytest.raises(psycopg.OperationalError, match="not permitted to log in"):
            connect_as(pair, pair.primary, role)
    wait_replayed(pair, done.final_lsn)
    assert set(acknowledged) <= on_standby(pair, 1000, 1099)
    assert on_standby(pair, 2000, 2099) == set()
    reopen(pair, done.roles)
    assert can_login(pair.primary) == before     # RETIRED and the owner stay NOLOGIN
    connect_as(pair, pair.primary, APP_ROLE.name).close()


class LateLogin:
    """The fence's connection, which -- right after the fence first reads the WAL position --
    lets a second master-user session log in and commit a row: a login the termination pass
    could not have seen, committing after the position was read."""

    def __init__(self, conn: fence.Connection, pair: Pair) -> None:
        self.conn, self.pair = conn, pair
        self.late: psycopg.Connection[Any] | None = None
        self.committed_to: str | None = None

    def execute(self, query: Any, params: Any = None) -> Any:
        result = self.conn.execute(query, params)
        if self.late is None and "pg_current_wal" in str(query):
            self.late = connect_as(self.pair, self.pair.primary, MASTER)
            self.late.execute("insert into patients (seq, name) values (3000, 'late login')")
            row = self.late.execute("select pg_current_wal_insert_lsn()::text").fetchone()
            assert row is not None
            self.committed_to = str(row[0])
        return result


def test_a_master_user_session_after_the_read_is_caught_by_the_scan(pair: Pair) -> None:
    with fence.connect(pair.master_url(pair.primary)) as conn:
        wrapped = LateLogin(conn, pair)
        done = fence_now(wrapped)   # type: ignore[arg-type]
    assert wrapped.late is not None and wrapped.committed_to is not None
    # the scan ended it and the position was read again, past its commit
    assert done.reads >= 2
    its_end = fence.record_end(wrapped.committed_to, 8192, 16 * 1024 * 1024)
    assert fence.lsn_value(done.final_lsn) >= fence.lsn_value(its_end)
    with pytest.raises(psycopg.OperationalError):
        wrapped.late.execute("insert into patients (seq, name) values (3001, 'after')")
    wait_replayed(pair, done.final_lsn)
    assert on_standby(pair, 3000, 3001) == {3000}
    reopen(pair, done.roles)


def test_server_state_tells_writer_from_streaming_replica(pair: Pair) -> None:
    with fence.connect(pair.master_url(pair.primary)) as conn:
        writer = fence.server_state(conn, ROLES)
    with fence.connect(pair.master_url(pair.standby)) as conn:
        replica = fence.server_state(conn, ROLES)
    assert not writer.in_recovery and writer.current_lsn and writer.replay_lsn is None
    assert writer.next_xid and MASTER not in writer.login_roles
    assert APP_ROLE.name in writer.login_roles and RETIRED not in writer.login_roles
    assert replica.in_recovery and replica.replay_lsn and replica.receive_lsn
    assert replica.next_xid is None


def test_record_end_steps_back_over_a_page_header() -> None:
    page, segment = 8192, 16 * 1024 * 1024
    assert fence.record_end("0/3002018", page, segment) == "0/3002000"   # a page's header
    assert fence.record_end("0/4000028", page, segment) == "0/4000000"   # a segment's
    assert fence.record_end("0/3002028", page, segment) == "0/3002028"   # a record's end
    assert fence.record_end("1/28", page, segment) == "1/0"


def test_lsn_bytes() -> None:
    assert fence.lsn_bytes("1/0", "0/FFFFFFFF") == 1
    assert fence.lsn_bytes("0/10", "0/10") == 0


def test_a_read_only_session_fences_nothing(pair: Pair) -> None:
    link = databases.read_only(databases.given("primary", pair.master_url(pair.primary)))
    writer = psycopg.connect(pair.app_url(pair.primary), autocommit=True)
    with fence.connect(link.conninfo) as conn:
        with pytest.raises(fence.FenceError, match="read-only"):
            fence_now(conn)
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            fence.allow_logins(conn, ROLES)
        assert fence.role_logins(conn, ROLES) == {APP_ROLE.name: True}
    writer.execute("select 1")
    writer.close()
    assert "password" not in link.where and link.where.endswith("(read-only)")


class ProtectedRole:
    """A server that lists ``rdstopmgr`` as a login role but will not let the master user
    alter it (as a managed service may keep its own accounts)."""

    def __init__(self) -> None:
        self.altered: list[str] = []

    def execute(self, query: Any, params: Any = None) -> Any:
        text = query.as_string(None) if hasattr(query, "as_string") else str(query)
        if text.startswith("ALTER ROLE"):
            if "rdstopmgr" in text:
                raise psycopg.errors.InsufficientPrivilege("permission denied to alter role")
            self.altered.append(text)
            return None
        rows = [(role, True) for role in (params or [[]])[0]]
        return type("Result", (), {"fetchall": lambda self: rows})()


def test_a_role_the_server_protects_is_reported_not_fatal() -> None:
    conn = ProtectedRole()
    refused = fence.refuse_logins(conn, ["caresync_app", "rdstopmgr"])   # type: ignore[arg-type]
    assert refused == ["rdstopmgr"]
    assert conn.altered == ['ALTER ROLE "caresync_app" NOLOGIN']

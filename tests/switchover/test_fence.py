"""The fence on real PostgreSQL 15 as an RDS-like master user (not a superuser): logins
refused, writers ended, the final position covers every acknowledged write, the standby
replays it, and the fence lifts."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from caresync_dr.db.roles import APP_ROLE
from caresync_dr.switchover import databases, fence
from tests.switchover.pg import Pair, start_pair

pytestmark = pytest.mark.postgres
ROLES = (APP_ROLE.name,)


@pytest.fixture(scope="module")
def pair() -> Iterator[Pair]:
    yield from start_pair()


def test_the_master_user_is_not_a_superuser(pair: Pair) -> None:
    with fence.connect(pair.master_url(pair.primary)) as conn:
        row = conn.execute("select rolsuper from pg_roles where rolname = current_user"
                           ).fetchone()
    assert row == (False,)


def test_fence_refuses_logins_ends_writers_and_covers_every_acknowledged_write(
        pair: Pair) -> None:
    writer = psycopg.connect(pair.app_url(pair.primary), autocommit=True)
    acknowledged = []
    for seq in range(1000, 1020):
        writer.execute("insert into patients (seq, name) values (%s, 'x')", (seq,))
        acknowledged.append(seq)
    with fence.connect(pair.master_url(pair.primary)) as conn:
        done = fence.fence_writes(conn, ROLES)
        assert done.terminated == 1
        assert fence.role_logins(conn, ROLES) == {APP_ROLE.name: False}
        assert fence.writer_sessions(conn, ROLES) == []
    # the session that wrote is gone: a write on it is refused, not acknowledged
    with pytest.raises(psycopg.OperationalError):
        writer.execute("insert into patients (seq, name) values (2000, 'late')")
    # a new login is refused
    with pytest.raises(psycopg.OperationalError, match="not permitted to log in"):
        psycopg.connect(pair.app_url(pair.primary))
    with fence.connect(pair.master_url(pair.standby)) as replica:
        deadline = 200
        while not fence.replayed(replica, done.final_lsn)[0] and deadline:
            replica.execute("select pg_sleep(0.05)")
            deadline -= 1
        assert fence.replayed(replica, done.final_lsn)[0]
    present = {int(s) for s in pair.standby.psql(
        "select seq from patients where seq >= 1000", dbname="caresync").split()}
    assert set(acknowledged) <= present
    assert 2000 not in present
    with fence.connect(pair.master_url(pair.primary)) as conn:
        fence.open_writer(conn, ROLES)
        assert fence.role_logins(conn, ROLES) == {APP_ROLE.name: True}
    psycopg.connect(pair.app_url(pair.primary)).close()


def test_server_state_tells_writer_from_streaming_replica(pair: Pair) -> None:
    with fence.connect(pair.master_url(pair.primary)) as conn:
        writer = fence.server_state(conn, ROLES)
    with fence.connect(pair.master_url(pair.standby)) as conn:
        replica = fence.server_state(conn, ROLES)
    assert not writer.in_recovery and writer.current_lsn and writer.replay_lsn is None
    assert replica.in_recovery and replica.replay_lsn and replica.receive_lsn
    assert writer.synchronous_commit in fence.FLUSHING_COMMITS


def test_lsn_bytes() -> None:
    assert fence.lsn_bytes("1/0", "0/FFFFFFFF") == 1
    assert fence.lsn_bytes("0/10", "0/10") == 0


def test_a_read_only_session_fences_nothing(pair: Pair) -> None:
    link = databases.read_only(databases.given("primary", pair.master_url(pair.primary)))
    writer = psycopg.connect(pair.app_url(pair.primary), autocommit=True)
    with fence.connect(link.conninfo) as conn:
        with pytest.raises(fence.FenceError, match="read-only"):
            fence.fence_writes(conn, ROLES)
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            fence.open_writer(conn, ROLES)
        assert fence.role_logins(conn, ROLES) == {APP_ROLE.name: True}
    writer.execute("select 1")
    writer.close()
    assert "password" not in link.where and link.where.endswith("(read-only)")

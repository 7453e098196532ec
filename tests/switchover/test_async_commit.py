"""synchronous_commit = off, handled rather than refused (issue 15 item 1, fault 2): app
sessions commit asynchronously up to the fence -- one of them at the last moment, after the
fence's NOLOGIN and just before its sessions are ended -- and the standby that replayed the
fence's final position, promoted at once, holds every row the old writer acknowledged.

Why the last-moment commit matters: the fence's own NOLOGIN commits synchronously, which
flushes every asynchronous commit before it; one made after it sits in the WAL buffers,
past the write position (``pg_current_wal_lsn()``, the old final position) until the WAL
writer's next round (``wal_writer_delay``; long here, so nothing else writes it meanwhile).
Only the insert position covers it. The other writers pause once the fence starts (their
sessions stay open until it ends them): a page they filled meanwhile would wake the WAL writer
and push the write position past the last-moment commit by chance."""

from __future__ import annotations

import threading
import time
from typing import Any

import psycopg
import pytest

from caresync_dr.db.roles import APP_ROLE
from caresync_dr.switchover import fence
from tests.switchover.pg import Pair, connect_as, start_pair

pytestmark = pytest.mark.postgres
WRITERS = 3
# Long enough that the last-moment commit is still unwritten when the position is read and the
# standby promoted, short enough that waiting for the flush (the replica reaching the insert
# position) costs the test little.
WAL_WRITER_DELAY = "5s"


def async_session(pair: Pair) -> psycopg.Connection[Any]:
    conn = connect_as(pair, pair.primary, APP_ROLE.name)
    conn.execute("SET synchronous_commit = off")
    assert conn.execute("SHOW synchronous_commit").fetchone() == ("off",)
    return conn


class AsyncWriter(threading.Thread):
    """An app session with ``SET synchronous_commit = off`` inserting rows (a row counts once
    its COMMIT returned) until the fence starts; it then idles, logged in, until the test
    tries one more row, which the ended session must refuse."""

    def __init__(self, pair: Pair, first_seq: int) -> None:
        super().__init__(daemon=True)
        self.conn = async_session(pair)
        self.seq = first_seq
        self.acknowledged: list[int] = []
        self.fence_starts, self.idle, self.try_again = (threading.Event() for _ in range(3))
        self.refused_after_fence = False

    def insert(self) -> None:
        self.conn.execute("insert into patients (seq, name) values (%s, 'async')", (self.seq,))
        self.acknowledged.append(self.seq)
        self.seq += 1

    def run(self) -> None:
        while not self.fence_starts.is_set():
            self.insert()
            time.sleep(0.005)
        self.idle.set()
        self.try_again.wait(30)
        try:
            self.insert()
        except psycopg.Error:
            self.refused_after_fence = True


class LastMomentCommit:
    """The fence's connection; just before the statement that ends the sessions, an app
    session already logged in commits one row asynchronously (acknowledged)."""

    SEQ = 99_999

    def __init__(self, conn: fence.Connection, pair: Pair) -> None:
        self.conn = conn
        self.app = async_session(pair)
        self.acknowledged = False

    def execute(self, query: Any, params: Any = None) -> Any:
        if not self.acknowledged and "pg_terminate_backend" in str(query):
            self.app.execute("insert into patients (seq, name) values (%s, 'last moment')",
                             (self.SEQ,))
            self.acknowledged = True
        return self.conn.execute(query, params)


def test_asynchronous_commits_up_to_the_fence_are_on_the_promoted_replica() -> None:
    for pair in start_pair():
        pair.primary.psql(f"ALTER SYSTEM SET wal_writer_delay = '{WAL_WRITER_DELAY}'")
        pair.primary.psql("select pg_reload_conf()")
        writers = [AsyncWriter(pair, 100_000 * (n + 1)) for n in range(WRITERS)]
        for writer in writers:
            writer.start()
        time.sleep(0.5)
        with fence.connect(pair.master_url(pair.primary)) as conn:
            wrapped = LastMomentCommit(conn, pair)
            for writer in writers:
                writer.fence_starts.set()
                assert writer.idle.wait(10)
            done = fence.fence_writes(wrapped,   # type: ignore[arg-type]
                                      on_roles=lambda roles: None)
        for writer in writers:
            writer.try_again.set()
            writer.join(timeout=10)
            assert writer.refused_after_fence
        acknowledged = {seq for writer in writers for seq in writer.acknowledged}
        assert len(acknowledged) > 20 and wrapped.acknowledged
        acknowledged.add(LastMomentCommit.SEQ)
        with fence.connect(pair.master_url(pair.standby)) as replica:
            deadline = time.monotonic() + 15
            while not fence.replayed(replica, done.final_lsn)[0]:
                assert time.monotonic() < deadline, f"{done.final_lsn} never replayed"
                time.sleep(0.02)
        pair.standby.promote()   # at once: WAL that arrives later is not the new writer's
        out = pair.standby.psql("select seq from patients where seq >= 99999",
                                dbname="caresync")
        present = {int(s) for s in out.split()}
        missing = sorted(acknowledged - present)
        assert not missing, (f"{len(missing)} of {len(acknowledged)} acknowledged rows are "
                             f"not on the promoted replica (first {missing[:5]}); final "
                             f"position {done.final_lsn}")

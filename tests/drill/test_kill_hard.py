"""The drill's kill -9 of the primary database reaches every process of it, a backend being
forked at that moment included: one that survived would go on acknowledging writes after the
outage instant (the fencing check's "late acknowledgements": a COMMIT sent 2.8 ms after the
kill was acknowledged 12 ms later, when the kill went to the postmaster's process group, which
holds the postmaster alone: every child of it calls setsid())."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from caresync_dr.drill.databases import kill_hard
from caresync_dr.pg.cluster import PostgresCluster, postmaster_pid
from tests.pg_servers import postgres_server

pytestmark = pytest.mark.postgres


@pytest.fixture
def cluster() -> Iterator[PostgresCluster]:
    with postgres_server("caresync-kill-hard-test-") as server:
        yield server


def _processes_in(data_dir: Path) -> list[int]:
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError):
            if os.readlink(proc / "cwd") == str(data_dir):
                found.append(int(proc.name))
    return found


def _signalled_or_gone(pid: int) -> bool:
    """``pid`` has exited, or has SIGKILL pending (it dies before it runs another
    instruction of its own: proc(5), SigPnd/ShdPnd)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return True
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    if fields.get("State", "").strip()[:1] in ("Z", "X"):
        return True
    kill_bit = 1 << (signal.SIGKILL - 1)
    return any(int(fields.get(name, "0").strip(), 16) & kill_bit
               for name in ("SigPnd", "ShdPnd"))


def test_every_backend_has_the_kill_when_it_returns(cluster: PostgresCluster) -> None:
    """Not "dies soon after": a backend that outlives the postmaster notices its death only
    when it next waits, and may first answer a COMMIT already on its socket."""
    sessions = [psycopg.connect(cluster.dsn("postgres")) for _ in range(3)]
    try:
        backends = [int(s.execute("select pg_backend_pid()").fetchone()[0])  # type: ignore[index]
                    for s in sessions]
        for session in sessions:
            session.execute("select 1")    # each holds an open transaction, as the load does
        kill_hard(cluster)
        unsignalled = [pid for pid in backends if not _signalled_or_gone(pid)]
        assert not unsignalled, f"backends without the kill when it returned: {unsignalled}"
    finally:
        for session in sessions:
            with contextlib.suppress(Exception):
                session.close()


def test_the_kill_leaves_no_process_of_the_server_while_clients_connect(
        cluster: PostgresCluster) -> None:
    postmaster = postmaster_pid(cluster.data_dir)
    assert postmaster is not None
    stop = threading.Event()

    def connect_all_the_time() -> None:       # a backend forked every few milliseconds
        while not stop.is_set():
            with contextlib.suppress(psycopg.Error):
                psycopg.connect(cluster.dsn("postgres"), connect_timeout=1).close()

    clients = [threading.Thread(target=connect_all_the_time, daemon=True) for _ in range(3)]
    for client in clients:
        client.start()
    time.sleep(0.3)
    assert len(_processes_in(cluster.data_dir)) > 1
    kill_hard(cluster)
    killed_at = time.monotonic()
    stop.set()
    for client in clients:
        client.join(5)
    deadline = killed_at + 5
    while (left := [p for p in _processes_in(cluster.data_dir)
                    if Path(f"/proc/{p}/stat").read_text().split(") ")[1][0] != "Z"]) \
            and time.monotonic() < deadline:
        time.sleep(0.05)      # SIGKILL is delivered at once; the kernel needs a moment to reap
    assert not left, f"processes of the killed server still run: {left}"
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(cluster.dsn("postgres"), connect_timeout=1).close()

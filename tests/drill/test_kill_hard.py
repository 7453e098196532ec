"""The drill's kill -9 of the primary database reaches every process of it, a backend being
forked at that moment included: one that survived would go on acknowledging writes after the
outage instant (the fencing check's "late acknowledgements")."""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from caresync_dr.drill.databases import kill_hard
from caresync_dr.pg.cluster import (
    PostgresCluster,
    PostgresNotFoundError,
    find_pg_bin,
    postmaster_pid,
    temp_cluster,
)
from tests.pg_servers import _unavailable

pytestmark = pytest.mark.postgres


@pytest.fixture
def cluster() -> Iterator[PostgresCluster]:
    try:
        find_pg_bin()
    except PostgresNotFoundError as exc:
        _unavailable(f"no PostgreSQL server: {exc}")
    server = temp_cluster(prefix="caresync-kill-hard-test-")
    server.start()
    yield server
    with contextlib.suppress(Exception):
        server.kill()
    shutil.rmtree(server.data_dir.parent, ignore_errors=True)


def _processes_in(data_dir: Path) -> list[int]:
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError):
            if os.readlink(proc / "cwd") == str(data_dir):
                found.append(int(proc.name))
    return found


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

"""A killed server leaves ``postmaster.pid`` behind, and this machine soon gives its PID to
another process (``kernel.pid_max`` 32768, several suites at once). Stopping, reloading,
promoting or killing that server must then signal nobody: pg_ctl would send SIGINT, SIGQUIT,
SIGHUP or SIGUSR1 to whatever has the PID, e.g. another suite's server or client."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from caresync_dr.drill.databases import kill_hard, postmaster_alive
from caresync_dr.pg.cluster import (
    SERVER_USER,
    PostgresCluster,
    PostgresNotFoundError,
    find_pg_bin,
    postmaster_pid,
    temp_cluster,
)
from tests.pg_servers import _unavailable

pytestmark = pytest.mark.postgres


@pytest.fixture
def killed() -> Iterator[PostgresCluster]:
    """A server SIGKILLed the hard way: its postmaster.pid stays."""
    try:
        find_pg_bin()
    except PostgresNotFoundError as exc:
        _unavailable(f"no PostgreSQL server: {exc}")
    cluster = temp_cluster(prefix="caresync-stale-pid-test-")
    cluster.start()
    pid = postmaster_pid(cluster.data_dir)
    assert pid is not None
    cluster.kill()
    deadline = time.monotonic() + 30
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)           # init reaps it
    assert (cluster.data_dir / "postmaster.pid").exists()
    yield cluster
    shutil.rmtree(cluster.data_dir.parent, ignore_errors=True)


def _recycled_to(cluster: PostgresCluster) -> subprocess.Popen[bytes]:
    """A process of the server user (pg_ctl runs as it) now has the file's PID."""
    user = SERVER_USER if os.geteuid() == 0 else None
    victim = subprocess.Popen(["sleep", "120"], user=user)
    pid_file = cluster.data_dir / "postmaster.pid"
    lines = pid_file.read_text().splitlines()
    with pid_file.open("w") as out:    # in place: the server user keeps owning it
        out.write("\n".join([str(victim.pid), *lines[1:]]) + "\n")
    return victim


def test_a_stale_pid_file_signals_nobody(killed: PostgresCluster) -> None:
    victim = _recycled_to(killed)
    try:
        assert postmaster_pid(killed.data_dir) is None
        assert not postmaster_alive(killed)
        killed.stop()                      # pg_ctl stop -m fast: SIGINT
        killed.stop(mode="immediate")      # SIGQUIT
        killed.require_password(["someone"])   # pg_ctl reload: SIGHUP
        with pytest.raises(RuntimeError, match="not running"):
            killed.promote(timeout=1)      # SIGUSR1
        killed.kill()                      # SIGKILL, as this process
        kill_hard(killed)
        assert victim.poll() is None, f"the process holding the PID got signal {victim.poll()}"
    finally:
        victim.send_signal(signal.SIGKILL)
        victim.wait(10)

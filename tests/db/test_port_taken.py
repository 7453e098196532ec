"""Two test runs on one machine: the port a cluster was given (``free_port`` probes when the
cluster is made, seconds before the server binds it) can be taken by the other run meanwhile.
The start used to fail ("could not bind ... Address already in use"); it now takes another."""

from __future__ import annotations

import shutil
import socket

import pytest

from caresync_dr.pg.cluster import PostgresNotFoundError, find_pg_bin, temp_cluster
from tests.pg_servers import _unavailable

pytestmark = pytest.mark.postgres


def test_a_port_taken_before_the_server_binds_it_gets_the_server_another() -> None:
    try:
        find_pg_bin()
    except PostgresNotFoundError as exc:
        _unavailable(f"no PostgreSQL server: {exc}")
    cluster = temp_cluster(prefix="caresync-port-taken-test-")
    other_run = socket.socket()
    try:
        other_run.bind(("127.0.0.1", cluster.port))
        other_run.listen()
        chosen = cluster.port
        cluster.start()
        assert cluster.port != chosen
        assert cluster.psql("SELECT 1").strip() == "1"
    finally:
        other_run.close()
        cluster.stop()
        shutil.rmtree(cluster.data_dir.parent, ignore_errors=True)


def test_a_start_that_fails_while_its_own_server_holds_the_port_keeps_the_port() -> None:
    """The port a start fails on may be held by this very data directory's server (still
    running: a start again after a crash was thought, or pg_ctl's wait timed out while the
    server came up). That was taken for another process's: the cluster was moved to another
    port, and its port then named no server of its (psql, URLs, reports went elsewhere)."""
    import subprocess

    try:
        find_pg_bin()
    except PostgresNotFoundError as exc:
        _unavailable(f"no PostgreSQL server: {exc}")
    cluster = temp_cluster(prefix="caresync-port-own-test-")
    try:
        cluster.start()
        running_on = cluster.port
        with pytest.raises(subprocess.CalledProcessError):
            cluster.start(timeout=5)
        assert cluster.port == running_on
        assert cluster.psql("SELECT 1").strip() == "1"
    finally:
        cluster.stop()
        shutil.rmtree(cluster.data_dir.parent, ignore_errors=True)

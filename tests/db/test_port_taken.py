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

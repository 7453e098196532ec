"""Issue 11 item 2: the backup takes no more locks than pg_dump itself.

The named case is 9,000 small tables on a stock server (max_locks_per_transaction 64): plain
pg_dump works, and the first backup.py failed with "out of shared memory" because its fingerprint
transaction locked every table and index again. The same kind at a smaller scale: a server whose
lock table holds a few hundred locks, and a database of tables with primary keys that pg_dump can
lock once but not two or three times over.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from caresync_dr.commands import backup as backup_script
from caresync_dr.commands import rollback as restore_script
from caresync_dr.pg.cluster import PostgresCluster, temp_cluster

pytestmark = pytest.mark.postgres
TABLES = 300


@pytest.fixture(scope="module")
def small_lock_table(pg_server: PostgresCluster) -> Iterator[PostgresCluster]:
    """A server with max_locks_per_transaction 20 and few connections: room for about
    TABLES locks of one transaction, not for three times as many."""
    cluster = temp_cluster(prefix="caresync-locks-")
    cluster.append_conf({"max_locks_per_transaction": "20", "max_connections": "20",
                         "max_wal_senders": "0", "wal_level": "minimal",
                         "max_worker_processes": "2", "autovacuum_max_workers": "1"})
    cluster.start()
    try:
        cluster.psql("CREATE DATABASE many")
        with psycopg.connect(cluster.dsn("many"), autocommit=True) as conn:
            for first in range(0, TABLES, 20):  # one transaction each: 20 tables fit
                conn.execute("".join(f"CREATE TABLE t{i} (id int PRIMARY KEY, v text); "
                                     f"INSERT INTO t{i} VALUES ({i}, 'row of t{i}');"
                                     for i in range(first, first + 20)))
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(cluster.data_dir.parent, ignore_errors=True)


def test_plain_pg_dump_fits_but_twice_its_locks_do_not(small_lock_table: PostgresCluster,
                                                      tmp_path: Path) -> None:
    """The premise: this server is where the doubling failed."""
    subprocess.run([small_lock_table.tool("pg_dump"), "-Fc", "-f", str(tmp_path / "x"),
                    "-d", small_lock_table.dsn("many")], check=True, capture_output=True)
    with psycopg.connect(small_lock_table.dsn("many")) as conn, \
            pytest.raises(psycopg.errors.OutOfMemory, match="out of shared memory"):
        for i in range(TABLES):  # what a second transaction locking tables and indexes takes
            conn.execute(f"LOCK TABLE t{i} IN ACCESS SHARE MODE")
            conn.execute(f"SELECT count(*) FROM t{i} WHERE id = {i}")


def test_a_backup_of_as_many_tables_as_pg_dump_can_lock_works(
        small_lock_table: PostgresCluster, key_file: Path, tmp_path: Path) -> None:
    url = small_lock_table.dsn("many")
    assert backup_script.main(["--database-url", url, "--local-dir", str(tmp_path / "b"),
                               "--key-file", str(key_file)]) == 0
    small_lock_table.psql("DROP TABLE t7", "many")
    assert restore_script.main([str(tmp_path / "b"), "--database-url", url, "--key-file",
                                str(key_file)]) == 0
    assert small_lock_table.psql("SELECT v FROM t7", "many") == "row of t7"

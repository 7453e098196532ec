"""The live database's condition during a restore: busy, reconnecting, left refusing
connections by an earlier version, or littered with an earlier version's plaintext."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import psycopg
import pytest

from caresync_dr.commands import rollback as restore_script
from caresync_dr.pg.cluster import PostgresCluster
from tests.backup.helpers import backup, state

pytestmark = pytest.mark.postgres


def rollback(data: Path, url: str, key_file: Path, *extra: str) -> int:
    return restore_script.main([str(data), "--database-url", url, "--key-file", str(key_file),
                                *extra])


def test_busy_and_reconnecting_sessions_do_not_stop_the_swap(
        pg_server: PostgresCluster, live_db: str, key_file: Path, tmp_path: Path) -> None:
    """An idle-in-transaction session and an application that reconnects as fast as it can:
    the swap terminates the one and makes the other wait for the commit (rename's lock)."""
    _, data = backup(live_db, tmp_path / "b", key_file)
    restored = state(live_db)
    pg_server.psql("DELETE FROM clinical_notes", live_db.rsplit("/", 1)[1])
    stop = threading.Event()
    connects = [0]

    def app() -> None:
        while not stop.is_set():
            try:
                with psycopg.connect(live_db, connect_timeout=5) as conn:
                    conn.execute("SELECT count(*) FROM patients")
                    connects[0] += 1
            except psycopg.Error:
                time.sleep(0.01)

    holder = psycopg.connect(live_db)
    holder.execute("SELECT 1")  # idle in transaction, as a stuck client would be
    threads = [threading.Thread(target=app) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        assert rollback(data, live_db, key_file) == 0
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        holder.close()
    assert connects[0] > 0
    assert state(live_db) == restored


def test_an_earlier_versions_interrupted_swap_is_recovered_loudly(
        pg_server: PostgresCluster, live_db: str, key_file: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """The previous swap committed ALLOW_CONNECTIONS false first; killed there, it left the
    live database refusing connections beside its scratch copy."""
    _, data = backup(live_db, tmp_path / "b", key_file)
    live = live_db.rsplit("/", 1)[1]
    pg_server.psql(f"CREATE DATABASE {live}_restore_20260101_000000")
    pg_server.psql(f"ALTER DATABASE {live} ALLOW_CONNECTIONS false")
    report = tmp_path / "r.json"

    assert rollback(data, live_db, key_file, "--no-swap", "--report", str(report)) == 0

    cleaned = json.loads(report.read_text())["result"]["leftovers_cleaned"]
    assert f"database {live} was left refusing connections by an interrupted swap; " \
           "connections are allowed again" in cleaned
    assert f"dropped the scratch database {live}_restore_20260101_000000 of an interrupted " \
           "restore" in cleaned
    assert "WARNING" in capsys.readouterr().err
    with psycopg.connect(live_db) as conn:
        conn.execute("SELECT 1")


def test_an_earlier_versions_plaintext_dump_is_removed(
        pg_server: PostgresCluster, live_db: str, key_file: Path, tmp_path: Path) -> None:
    _, data = backup(live_db, tmp_path / "b", key_file)
    work = tmp_path / "work"
    left = work / "caresync-restore-k2j4h1ab"
    left.mkdir(parents=True)
    (left / "backup.dump").write_bytes(b"PGDMP plaintext patient rows")
    recent = work / "caresync-restore-0running"  # another run's, still being written
    recent.mkdir()
    an_hour_ago = time.time() - 3600
    os.utime(left, (an_hour_ago, an_hour_ago))
    report = tmp_path / "r.json"

    assert rollback(data, live_db, key_file, "--no-swap", "--work-dir", str(work),
                    "--report", str(report)) == 0

    assert not left.exists()
    assert recent.exists()  # recent: it may belong to a run that is alive
    assert f"removed {left}: a decrypted dump (plaintext) left by an interrupted restore" in \
        json.loads(report.read_text())["result"]["leftovers_cleaned"]

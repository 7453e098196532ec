"""Point-in-time recovery of a real PostgreSQL: archive, upload marks, restore to T (the
machinery behind the emulated RestoreDBInstanceToPointInTime)."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from caresync_dr.pg.archive import WalArchive
from caresync_dr.pg.cluster import PostgresCluster, PostgresNotFoundError, find_pg_bin, temp_cluster

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def archived() -> Iterator[tuple[PostgresCluster, WalArchive]]:
    try:
        find_pg_bin()
    except PostgresNotFoundError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and no PostgreSQL server: {exc}")
        pytest.skip(str(exc))
    archive = WalArchive.create(prefix="caresync-wal-test-")
    primary = temp_cluster(prefix="caresync-archive-test-", wal_segment_mb=1,
                           extra_conf=archive.conf())
    primary.start()
    try:
        primary.psql("create table patients (id int primary key, name text)")
        archive.base_backup(primary)
        yield primary, archive
    finally:
        archive.stop_uploads()
        primary.stop(mode="immediate")
        shutil.rmtree(primary.data_dir.parent, ignore_errors=True)
        archive.remove()


def _server_now(cluster: PostgresCluster) -> datetime:
    return datetime.fromisoformat(cluster.psql("select clock_timestamp()")).astimezone(UTC)


def test_a_restore_brings_back_the_rows_as_they_were_just_before_the_damage(
        archived: tuple[PostgresCluster, WalArchive]) -> None:
    primary, archive = archived
    primary.psql("insert into patients select g, 'p' || g from generate_series(1, 500) g")
    time.sleep(0.05)
    before_damage = _server_now(primary)
    time.sleep(0.05)
    primary.psql("delete from patients where id > 100")   # a DELETE with the wrong WHERE
    primary.psql("insert into patients values (1000, 'after')")
    latest = archive.upload()
    assert latest > before_damage and archive.earliest is not None
    restored = archive.restore(before_damage)
    try:
        assert restored.psql("select count(*) from patients") == "500"
        assert restored.psql("select count(*) from patients where id = 1000") == "0"
        assert restored.psql("select pg_is_in_recovery()") == "f", "promoted: writable"
        restored.psql("insert into patients values (2000, 'written after the restore')")
        assert primary.psql("select count(*) from patients") == "101", "the source is untouched"
    finally:
        restored.stop(mode="immediate")
        shutil.rmtree(restored.data_dir.parent, ignore_errors=True)


def test_times_outside_the_window_are_refused(
        archived: tuple[PostgresCluster, WalArchive]) -> None:
    _, archive = archived
    archive.upload()
    assert archive.earliest is not None and archive.latest is not None
    for when in (archive.earliest - timedelta(seconds=1), archive.latest + timedelta(seconds=1)):
        with pytest.raises(ValueError, match="is outside"):
            archive.restore(when)


def test_uploads_move_the_latest_restorable_time(
        archived: tuple[PostgresCluster, WalArchive]) -> None:
    primary, archive = archived
    first = archive.upload()
    archive.start_uploads(0.1)
    try:
        primary.psql("insert into patients values (3000, 'later')")
        deadline = time.monotonic() + 10
        while archive.latest is not None and archive.latest <= first:
            assert time.monotonic() < deadline, "no upload happened"
            time.sleep(0.05)
    finally:
        archive.stop_uploads()

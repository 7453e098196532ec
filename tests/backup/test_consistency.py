"""A backup taken while the application writes restores one consistent snapshot."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import psycopg
import pytest

from caresync_dr.backup.keys import no_kms, resolver
from caresync_dr.backup.rollback import rollback
from caresync_dr.pg.cluster import PostgresCluster
from tests.backup.helpers import backup

pytestmark = pytest.mark.postgres


def test_backup_during_writes_is_a_consistent_snapshot(
        pg_server: PostgresCluster, live_db: str, key_file: Path, tmp_path: Path) -> None:
    # Each writer transaction books an appointment AND writes its note; a torn backup would
    # hold one without the other, or fingerprints from another moment than the data.
    stop = threading.Event()
    committed = 0

    def writer() -> None:
        nonlocal committed
        with psycopg.connect(live_db, autocommit=True) as conn:
            while not stop.is_set():
                with conn.transaction():
                    appt = conn.execute(
                        "INSERT INTO appointments (patient_id, starts_at, status) "
                        "VALUES (1, now(), 'concurrent') RETURNING id").fetchone()
                    assert appt is not None
                    conn.execute("INSERT INTO clinical_notes (patient_id, body) "
                                 "VALUES (1, %s)", (f"concurrent {appt[0]}",))
                    conn.execute("UPDATE patients SET weight_kg = weight_kg + 1 WHERE id = 2")
                committed += 1

    def wait_for(count: int) -> None:
        deadline = time.monotonic() + 30
        while committed < count:
            assert thread.is_alive() and time.monotonic() < deadline, "writer stopped"
            time.sleep(0.01)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        wait_for(20)
        manifest, data = backup(live_db, tmp_path / "b", key_file)
        wait_for(committed + 20)
    finally:
        stop.set()
        thread.join()

    result = rollback(data, live_db, resolver(key_file, no_kms), swap_in=False)

    # verification inside rollback already compared every table with the manifest
    restored = live_db.rsplit("/", 1)[0] + "/" + result.restored_as
    with psycopg.connect(restored) as conn:
        appts, notes, weight = conn.execute(
            "SELECT (SELECT count(*) FROM appointments WHERE status = 'concurrent'), "
            "(SELECT count(*) FROM clinical_notes WHERE body LIKE 'concurrent %'), "
            "(SELECT weight_kg - 2.2 FROM patients WHERE id = 2)").fetchone()  # type: ignore[misc]
    assert appts == notes == round(weight)  # all three writes of each transaction, or none
    assert 20 <= appts < committed  # writes before the snapshot are in, later ones are not
    assert manifest.tables["public.appointments"].rows == 600 + appts
    pg_server.psql(f'DROP DATABASE "{result.restored_as}"')

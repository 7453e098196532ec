"""Hostile (session 5): a backup damaged after it was written, restored with
--continue-on-error while its SHA-256 is checked in the background: never swapped in, never
reported restored, the report names the damage, no scratch database left; and tables with
storage parameters of their own (TOAST-only, autovacuum on, a partition, a quoted name) end
the restore with exactly the backup's reloptions. Both held on main (kept as regression
tests of the background checksum and the autovacuum pause)."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest

from caresync_dr.backup import autovacuum
from caresync_dr.backup.keys import no_kms, resolver
from caresync_dr.backup.rollback import rollback
from caresync_dr.commands import rollback as restore_script
from caresync_dr.pg.cluster import PostgresCluster
from tests.backup.helpers import backup, state
from tests.backup.test_autovacuum import reloptions

pytestmark = pytest.mark.postgres


@pytest.mark.parametrize("where", [0.5, 0.999])
def test_a_damaged_backup_with_continue_on_error_is_never_restored(  # noqa: PLR0917
        where: float, pg_server: PostgresCluster, live_db: str, key_file: Path,
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, data = backup(live_db, tmp_path / "b", key_file)
    raw = bytearray(data.read_bytes())
    raw[int(len(raw) * where)] ^= 0x01
    data.write_bytes(bytes(raw))
    before = state(live_db)
    databases = pg_server.psql("SELECT string_agg(datname, ',' ORDER BY datname) "
                               "FROM pg_database")
    report = tmp_path / "restore.json"
    capsys.readouterr()

    code = restore_script.main([str(data), "--database-url", live_db, "--key-file",
                                str(key_file), "--continue-on-error", "--report", str(report),
                                ])

    err = capsys.readouterr().err
    assert code == 3, err
    assert "unexpected error" not in err and "Traceback" not in err
    document = json.loads(report.read_text())
    text = json.dumps(document)
    assert "checksum" in text, text
    assert document.get("swapped") in (False, None), text
    assert state(live_db) == before
    assert pg_server.psql("SELECT string_agg(datname, ',' ORDER BY datname) "
                          "FROM pg_database") == databases


HOSTILE_SCHEMA = """
CREATE TABLE toast_only (id bigint PRIMARY KEY, body text) WITH (toast.autovacuum_enabled = false);
CREATE TABLE main_true (id bigint PRIMARY KEY, body text) WITH (autovacuum_enabled = true,
  toast.autovacuum_enabled = false);
CREATE TABLE "Mixed Case" (id bigint PRIMARY KEY, body text) WITH (fillfactor = 80);
CREATE TABLE parted (id bigint, body text) PARTITION BY RANGE (id);
CREATE TABLE parted_1 PARTITION OF parted FOR VALUES FROM (0) TO (1000)
  WITH (autovacuum_vacuum_scale_factor = 0.01);
INSERT INTO toast_only SELECT g, repeat('a', g % 40) FROM generate_series(1, 300) g;
INSERT INTO main_true SELECT g, repeat('b', g % 40) FROM generate_series(1, 300) g;
INSERT INTO "Mixed Case" SELECT g, repeat('c', g % 40) FROM generate_series(1, 300) g;
INSERT INTO parted SELECT g, repeat('d', g % 40) FROM generate_series(1, 300) g;
"""


def test_reloptions_after_a_restore_are_the_backups_for_tables_with_their_own(
        pg_server: PostgresCluster, live_db: str, key_file: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    with psycopg.connect(live_db, autocommit=True) as conn:
        conn.execute(HOSTILE_SCHEMA)
    _, data = backup(live_db, tmp_path / "b", key_file)
    monkeypatch.setattr(autovacuum, "PAUSE_MIN_BYTES", 1)
    result = rollback(data, live_db, resolver(key_file, no_kms), swap_in=False)
    restored = live_db.rsplit("/", 1)[0] + "/" + result.restored_as
    try:
        assert reloptions(restored) == reloptions(live_db)
    finally:
        pg_server.psql(f'DROP DATABASE "{result.restored_as}"')

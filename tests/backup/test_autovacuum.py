"""The restore keeps autovacuum off the tables it fills (``backup.autovacuum``), on a real
PostgreSQL 15, and leaves every table's storage parameters exactly as the backup's CREATE TABLE
made them: the table's own options, its TOAST table's, and an ``autovacuum_enabled`` the
table's definition sets itself."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest

from caresync_dr.backup import autovacuum
from caresync_dr.backup.keys import no_kms, resolver
from caresync_dr.backup.rollback import rollback
from caresync_dr.pg.cluster import PostgresCluster
from tests.backup.helpers import backup

pytestmark = pytest.mark.postgres

SCHEMA = """
CREATE TABLE plain (id bigint PRIMARY KEY, body text NOT NULL);
CREATE TABLE tuned (id bigint PRIMARY KEY, body text NOT NULL)
  WITH (fillfactor = 70, toast.autovacuum_vacuum_scale_factor = 0.05);
CREATE TABLE own (id bigint PRIMARY KEY, body text NOT NULL) WITH (autovacuum_enabled = false);
INSERT INTO plain SELECT g, repeat('x', g % 50) FROM generate_series(1, 500) g;
INSERT INTO tuned SELECT g, repeat('y', g % 50) FROM generate_series(1, 500) g;
INSERT INTO own SELECT g, repeat('z', g % 50) FROM generate_series(1, 500) g;
"""
RELOPTIONS = """
SELECT c.relname, c.reloptions, t.reloptions FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_catalog.pg_class t ON t.oid = c.reltoastrelid
 WHERE n.nspname = 'public' AND c.relkind = 'r' ORDER BY 1"""


def reloptions(url: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(RELOPTIONS).fetchall()


def test_restore_pauses_autovacuum_then_leaves_storage_parameters_as_backed_up(
        pg_server: PostgresCluster, live_db: str, key_file: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    with psycopg.connect(live_db, autocommit=True) as conn:
        conn.execute(SCHEMA)
    _, data = backup(live_db, tmp_path / "b", key_file)
    monkeypatch.setattr(autovacuum, "PAUSE_MIN_BYTES", 1)  # these small tables count as large
    seen: dict[str, Any] = {}
    real_pause, real_resume = autovacuum.pause, autovacuum.resume

    def pause(url: str, tables: list[autovacuum.Table]) -> list[autovacuum.Table]:
        seen["paused"] = real_pause(url, tables)
        return list(seen["paused"])

    def resume(url: str, paused: list[autovacuum.Table]) -> None:
        seen["while_loading"] = {name: options for name, options, _ in reloptions(url)}
        real_resume(url, paused)

    monkeypatch.setattr(autovacuum, "pause", pause)
    monkeypatch.setattr(autovacuum, "resume", resume)

    result = rollback(data, live_db, resolver(key_file, no_kms), swap_in=False)

    assert {("public", "plain"), ("public", "tuned")} <= set(seen["paused"])
    assert ("public", "own") not in seen["paused"]  # its definition sets the option itself
    assert "autovacuum_enabled=false" in seen["while_loading"]["plain"]
    assert seen["while_loading"]["tuned"] == ["fillfactor=70", "autovacuum_enabled=false"]
    restored = live_db.rsplit("/", 1)[0] + "/" + result.restored_as
    after = reloptions(restored)
    assert after == reloptions(live_db)
    assert {name: (own, toast) for name, own, toast in after}["plain"] == (None, None)
    pg_server.psql(f'DROP DATABASE "{result.restored_as}"')

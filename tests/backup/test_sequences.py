"""Sequence values are set while the tables load (``loader._Parallel.run``), not after them:
the restored copy's sequences must still hold the backed-up values, called or not, on a real
PostgreSQL 15."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest

from caresync_dr.backup.keys import no_kms, resolver
from caresync_dr.backup.rollback import rollback
from caresync_dr.pg.cluster import PostgresCluster
from tests.backup.helpers import backup

pytestmark = pytest.mark.postgres

SEQUENCES = """
SELECT schemaname, sequencename, last_value, start_value, increment_by
  FROM pg_catalog.pg_sequences WHERE schemaname NOT IN ('pg_catalog', 'information_schema')
 ORDER BY 1, 2"""


def sequences(url: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(SEQUENCES).fetchall()


def test_restored_sequences_hold_the_backed_up_values(
        pg_server: PostgresCluster, live_db: str, key_file: Path, tmp_path: Path) -> None:
    with psycopg.connect(live_db, autocommit=True) as conn:
        conn.execute("CREATE SEQUENCE invoice_numbers START 1000 INCREMENT 7")
        conn.execute("SELECT setval('invoice_numbers', 5000)")
        conn.execute("CREATE SEQUENCE never_called START 42")  # last_value stays NULL
    before = sequences(live_db)
    assert any(name == "invoice_numbers" and last == 5000 for _, name, last, *_ in before)
    _, data = backup(live_db, tmp_path / "b", key_file)

    result = rollback(data, live_db, resolver(key_file, no_kms), swap_in=False)

    restored = live_db.rsplit("/", 1)[0] + "/" + result.restored_as
    assert result.loaded_as == "parallel segments"
    assert sequences(restored) == before
    with psycopg.connect(restored) as conn:
        assert conn.execute("SELECT nextval('invoice_numbers')").fetchone() == (5007,)
        assert conn.execute("SELECT nextval('never_called')").fetchone() == (42,)
    pg_server.psql(f'DROP DATABASE "{result.restored_as}"')

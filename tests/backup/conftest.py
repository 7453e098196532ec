"""A real PostgreSQL 15 server for the backup tests, started once per test session.

Without server binaries the tests skip with the way to get them, except under CI=true, where a
missing server is a failure (CI must never silently skip the data tests).
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from caresync_dr.backup.keys import generate_key_file
from caresync_dr.pg.cluster import PostgresCluster, PostgresNotFoundError, find_pg_bin, temp_cluster


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresCluster]:
    try:
        find_pg_bin()
    except PostgresNotFoundError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and no PostgreSQL server: {exc}")
        pytest.skip(str(exc))
    cluster = temp_cluster(prefix="caresync-backup-test-")
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(cluster.data_dir.parent, ignore_errors=True)


CARESYNC_SCHEMA = """
CREATE TABLE patients (
    id bigserial PRIMARY KEY, mrn text UNIQUE NOT NULL, name text NOT NULL,
    born date, weight_kg double precision, updated_at timestamptz DEFAULT now(), photo bytea);
CREATE TABLE appointments (
    id bigserial PRIMARY KEY, patient_id bigint NOT NULL REFERENCES patients(id),
    starts_at timestamptz NOT NULL, status text NOT NULL);
CREATE TABLE clinical_notes (
    id bigserial PRIMARY KEY, patient_id bigint NOT NULL REFERENCES patients(id),
    body text NOT NULL, meta jsonb);
CREATE INDEX ON appointments (patient_id);
CREATE INDEX ON clinical_notes (patient_id);
CREATE SCHEMA billing;
CREATE TABLE billing."Invoices" (id int PRIMARY KEY, amount numeric(12,2), due interval);
INSERT INTO patients (mrn, name, born, weight_kg, photo)
  SELECT 'MRN' || g, 'Patient ' || g || ' Ünïcødé', date '1950-01-01' + g, g * 1.1,
         decode(md5(g::text), 'hex')
    FROM generate_series(1, 300) g;
INSERT INTO appointments (patient_id, starts_at, status)
  SELECT 1 + g % 300, timestamptz '2026-01-01 08:00+00' + g * interval '1 hour',
         'booked'
    FROM generate_series(1, 600) g;
INSERT INTO clinical_notes (patient_id, body, meta)
  SELECT 1 + g % 300, repeat('note ' || g || E' line\\n', 20), jsonb_build_object('n', g)
    FROM generate_series(1, 400) g;
INSERT INTO billing."Invoices"
  SELECT g, g * 10.5, g * interval '1 day' FROM generate_series(1, 50) g;
"""


@pytest.fixture
def live_db(pg_server: PostgresCluster) -> Iterator[str]:
    """A fresh CareSync-like database; yields its URL; dropped (with restore leftovers) after."""
    name = f"caresync_{uuid.uuid4().hex[:8]}"
    pg_server.psql(f"CREATE DATABASE {name}")
    with psycopg.connect(pg_server.dsn(name), autocommit=True) as conn:
        conn.execute(CARESYNC_SCHEMA)
    yield pg_server.dsn(name)
    leftovers = pg_server.psql(
        f"SELECT datname FROM pg_database WHERE datname LIKE '{name}%'").split()
    for db in leftovers:
        pg_server.psql(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "backup.key"
    generate_key_file(path)
    return path


@dataclass
class Site:
    """A database of its own, with roles named after it; all dropped afterwards."""

    server: PostgresCluster
    name: str

    def url(self, user: str = "postgres", db: str | None = None) -> str:
        return f"postgresql://{user}@127.0.0.1:{self.server.port}/{db or self.name}"

    def role(self, suffix: str) -> str:
        return f"{self.name}_{suffix}"

    def sql(self, statement: str, db: str | None = None) -> str:
        return self.server.psql(statement, db or self.name)


@pytest.fixture
def site(pg_server: PostgresCluster) -> Iterator[Site]:
    site = Site(pg_server, f"clinic_{uuid.uuid4().hex[:8]}")
    try:
        yield site
    finally:
        for db in pg_server.psql(f"SELECT datname FROM pg_database WHERE datname LIKE "
                                 f"'{site.name}%'").split():
            pg_server.psql(f'DROP DATABASE "{db}" WITH (FORCE)')
        for role in pg_server.psql(f"SELECT rolname FROM pg_roles WHERE rolname LIKE "
                                   f"'{site.name}%'").split():
            pg_server.psql(f'DROP OWNED BY "{role}"; DROP ROLE "{role}"')

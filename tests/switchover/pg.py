"""A primary and its streaming standby on real PostgreSQL 15 for the switchover tests, with an
RDS-like master user (not a superuser: CREATEROLE, and the rds_superuser powers the fence uses:
see every session, terminate any -- pg_signal_backend here)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from psycopg.conninfo import make_conninfo

from caresync_dr.db.roles import APP_ROLE
from caresync_dr.drill.databases import Databases, install_roles, start_databases, wait_for_role
from caresync_dr.pg.cluster import PostgresCluster, PostgresNotFoundError, find_pg_bin

DATABASE = "caresync"
MASTER = "rds_master"
APP_PASSWORD = "app-secret-1"


@dataclass
class Pair:
    dbs: Databases

    @property
    def primary(self) -> PostgresCluster:
        return self.dbs.primary

    @property
    def standby(self) -> PostgresCluster:
        return self.dbs.standby

    def master_url(self, cluster: PostgresCluster) -> str:
        return make_conninfo(host="127.0.0.1", port=cluster.port, user=MASTER, dbname=DATABASE)

    def app_url(self, cluster: PostgresCluster) -> str:
        return make_conninfo(host="127.0.0.1", port=cluster.port, user=APP_ROLE.name,
                             password=APP_PASSWORD, dbname=DATABASE)


def require_postgres() -> None:
    try:
        find_pg_bin()
    except PostgresNotFoundError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and no PostgreSQL server: {exc}")
        pytest.skip(str(exc))


def start_pair() -> Iterator[Pair]:
    require_postgres()
    dbs = start_databases(False, app_database=DATABASE, password_roles=(APP_ROLE.name,))
    try:
        dbs.primary.psql(f"CREATE ROLE {MASTER} LOGIN NOSUPERUSER CREATEDB CREATEROLE; "
                         f"GRANT pg_signal_backend TO {MASTER}")
        install_roles(dbs.primary, DATABASE, {APP_ROLE.name: APP_PASSWORD})
        wait_for_role(dbs.standby, APP_ROLE.name)
        wait_for_role(dbs.standby, MASTER)
        yield Pair(dbs)
    finally:
        dbs.stop()

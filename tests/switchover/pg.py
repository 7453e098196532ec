"""A primary and its streaming standby on real PostgreSQL 15 for the switchover tests, with an
RDS-like master user (not a superuser: CREATEROLE, and the rds_superuser powers the fence uses:
see every session, terminate any -- pg_signal_backend here)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from caresync_dr.db.roles import APP_ROLE, OWNER_ROLE, RESTORE_ROLE, operator_roles_sql
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


# Roles other than the app that can write, as the project creates them (caresync_dr.db.roles:
# the NOLOGIN owner, the backup, restore and restore-test login roles), and one login role
# already closed before any switchover (it must stay closed whatever the fence does).
RETIRED = "caresync_retired_job"
RESTORE = RESTORE_ROLE.name


def add_other_roles(pair: Pair) -> None:
    """The operator roles of :mod:`caresync_dr.db.roles`, a NOLOGIN login role, and rights on
    the drill's table for the master user and the restore role (a migration job, an operator's
    psql). Idempotent; replicated to the standby before it returns."""
    primary = pair.primary
    primary.psql(operator_roles_sql(DATABASE), dbname=DATABASE)
    primary.psql(f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{RETIRED}')"
                 f" THEN CREATE ROLE {RETIRED} NOLOGIN; END IF; END $$", dbname=DATABASE)
    primary.psql(f"GRANT SELECT, INSERT ON patients TO {MASTER}, {RESTORE}", dbname=DATABASE)
    for role in (OWNER_ROLE, RESTORE, RETIRED):
        wait_for_role(pair.standby, role)


def can_login(cluster: PostgresCluster) -> dict[str, bool]:
    """Every non-superuser role -> rolcanlogin (pg_* roles left out)."""
    out = cluster.psql("select rolname || '=' || rolcanlogin from pg_roles "
                       "where not rolsuper and rolname !~ '^pg_' order by 1")
    return {name: value == "true" for name, _, value in
            (line.partition("=") for line in out.split())}


def connect_as(pair: Pair, cluster: PostgresCluster, role: str) -> psycopg.Connection[Any]:
    """A session of ``role`` (the app with its password; the others trusted, as the test
    servers allow), autocommit."""
    if role == APP_ROLE.name:
        return psycopg.connect(pair.app_url(cluster), autocommit=True, connect_timeout=2)
    return psycopg.connect(make_conninfo(host="127.0.0.1", port=cluster.port, user=role,
                                         dbname=DATABASE), autocommit=True, connect_timeout=2)

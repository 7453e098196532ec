"""The app login role on a real PostgreSQL 15: created once, idempotent, least privilege,
authenticated by password (SCRAM) and never sent the password in plain text."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import psycopg
import pytest

from caresync_dr.db.roles import APP_ROLE, ensure_roles, role_statements, scram_verifier
from caresync_dr.pg.cluster import PostgresCluster, PostgresNotFoundError, find_pg_bin, temp_cluster

pytestmark = pytest.mark.postgres
OWNER = "caresync_admin"
DATABASE = "caresync"


@pytest.fixture(scope="module")
def server() -> Iterator[PostgresCluster]:
    try:
        find_pg_bin()
    except PostgresNotFoundError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and no PostgreSQL server: {exc}")
        pytest.skip(str(exc))
    cluster = temp_cluster(prefix="caresync-roles-test-")
    hba = cluster.data_dir / "pg_hba.conf"
    # The app role authenticates with its password; everyone else keeps the test's trust.
    rules = hba.read_text()
    with hba.open("w") as out:  # rewriting in place keeps the server user's ownership
        out.write("host all caresync_app 127.0.0.1/32 scram-sha-256\n" + rules)
    cluster.start()
    # Like the RDS master user: not a superuser, may create roles.
    cluster.psql(f"CREATE ROLE {OWNER} LOGIN CREATEROLE")
    cluster.psql(f"CREATE DATABASE {DATABASE} OWNER {OWNER}")
    cluster.psql(f"ALTER SCHEMA public OWNER TO {OWNER}", dbname=DATABASE)
    try:
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(cluster.data_dir.parent, ignore_errors=True)


def _as_owner(server: PostgresCluster) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(f"postgresql://{OWNER}@127.0.0.1:{server.port}/{DATABASE}",
                           autocommit=True)


def _as_app(server: PostgresCluster, password: str) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(host="127.0.0.1", port=server.port, dbname=DATABASE,
                           user=APP_ROLE.name, password=password, autocommit=True)


def test_the_app_role_is_created_idempotently_and_authenticates(server: PostgresCluster) -> None:
    with _as_owner(server) as owner:
        owner.execute("CREATE TABLE IF NOT EXISTS patients (id serial PRIMARY KEY, name text)")
        first = ensure_roles(owner, {APP_ROLE.name: "first-Secret-1"}, database=DATABASE,
                             owner=OWNER)
        again = ensure_roles(owner, {APP_ROLE.name: "first-Secret-1"}, database=DATABASE,
                             owner=OWNER)
        assert first == again and len(first) >= 5
        # A table the owner creates later is reachable through the default privileges.
        owner.execute("CREATE TABLE IF NOT EXISTS visits (id serial PRIMARY KEY, note text)")
    with _as_app(server, "first-Secret-1") as app:
        app.execute("INSERT INTO patients (name) VALUES ('x')")
        app.execute("INSERT INTO visits (note) VALUES ('y')")
        assert app.execute("SELECT count(*) FROM visits").fetchone() == (1,)
        attributes = app.execute(
            "SELECT rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls "
            "FROM pg_roles WHERE rolname = current_user").fetchone()
        assert attributes == (False, False, False, False, False)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            app.execute("CREATE TABLE mine (id int)")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            app.execute("DROP TABLE patients")


def test_a_new_password_replaces_the_old_one(server: PostgresCluster) -> None:
    with _as_owner(server) as owner:
        ensure_roles(owner, {APP_ROLE.name: "before-Rotation-2"}, database=DATABASE,
                     owner=OWNER)
        ensure_roles(owner, {APP_ROLE.name: "after-Rotation-3"}, database=DATABASE,
                     owner=OWNER)
    with _as_app(server, "after-Rotation-3") as app:
        assert app.execute("SELECT 1").fetchone() == (1,)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        _as_app(server, "before-Rotation-2").close()


def test_the_password_never_reaches_the_server_in_plain_text(server: PostgresCluster) -> None:
    with _as_owner(server) as owner:
        verifier = scram_verifier(owner, APP_ROLE.name, "plain-Text-4")
        rendered = " ".join(change.statement.as_string(owner) for change in role_statements(
            APP_ROLE, database=DATABASE, owner=OWNER, password_verifier=verifier))
    assert "plain-Text-4" not in rendered and "SCRAM-SHA-256$" in rendered
    with pytest.raises(ValueError, match="verifier"):
        role_statements(APP_ROLE, database=DATABASE, owner=OWNER,
                        password_verifier="plain-Text-4")


def test_a_role_without_a_password_changes_nothing(server: PostgresCluster) -> None:
    with _as_owner(server) as owner, pytest.raises(KeyError, match="caresync_app"):
        ensure_roles(owner, {}, database=DATABASE, owner=OWNER)

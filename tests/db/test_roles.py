"""The app login role on a real PostgreSQL 15: created once, idempotent, least privilege,
authenticated by password (SCRAM) and never sent the password in plain text; its clone login
(alternating-users rotation) has exactly its privileges, through their NOLOGIN group."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import psycopg
import pytest

from caresync_dr.db.roles import (
    APP_ROLE,
    app_roles_sql,
    ensure_roles,
    role_statements,
    scram_verifier,
    switch_problems,
)
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
        out.writelines(f"host all {login} 127.0.0.1/32 scram-sha-256\n"
                       for login in APP_ROLE.logins)
        out.write(rules)
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


CLONE, GROUP = str(APP_ROLE.alternate), str(APP_ROLE.group)


def _grants(owner: psycopg.Connection[tuple[object, ...]], table: str) -> list[str]:
    rows = owner.execute(
        "SELECT grantee || ':' || privilege_type FROM information_schema.role_table_grants "
        "WHERE table_name = %s AND grantee <> %s ORDER BY 1", (table, OWNER)).fetchall()
    return [str(r[0]) for r in rows]


def test_a_database_with_only_caresync_app_is_migrated_to_the_group(
        server: PostgresCluster) -> None:
    """The update path: caresync_app exists with its own grants, as the previous roles.py made
    it. Afterwards the group holds them, both logins are members, caresync_app's password is
    untouched and the clone, created without one, cannot log in until a rotation sets it."""
    with _as_owner(server) as owner:
        owner.execute("CREATE TABLE IF NOT EXISTS legacy (id int PRIMARY KEY)")
        owner.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON legacy TO {APP_ROLE.name}")
        owner.execute(f"ALTER ROLE {APP_ROLE.name} PASSWORD 'kept-Password-5'")
        ensure_roles(owner, {APP_ROLE.name: "kept-Password-5"}, database=DATABASE,
                     owner=OWNER)
        assert _grants(owner, "legacy") == [
            f"{GROUP}:{p}" for p in ("DELETE", "INSERT", "SELECT", "UPDATE")]
        assert switch_problems(owner, APP_ROLE, APP_ROLE.name, CLONE) == []
        members = owner.execute(
            "SELECT m.rolname FROM pg_auth_members a JOIN pg_roles g ON g.oid = a.roleid "
            "JOIN pg_roles m ON m.oid = a.member WHERE g.rolname = %s ORDER BY 1",
            (GROUP,)).fetchall()
        assert [r[0] for r in members] == [APP_ROLE.name, CLONE]
        group_can_login = owner.execute(
            "SELECT rolcanlogin FROM pg_roles WHERE rolname = %s", (GROUP,)).fetchone()
        assert group_can_login == (False,)
    with _as_app(server, "kept-Password-5") as app:
        app.execute("INSERT INTO legacy VALUES (1) ON CONFLICT DO NOTHING")
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(host="127.0.0.1", port=server.port, dbname=DATABASE, user=CLONE,
                        password="kept-Password-5").close()


def test_a_grant_to_one_login_only_stops_the_switch(server: PostgresCluster) -> None:
    with _as_owner(server) as owner:
        ensure_roles(owner, {APP_ROLE.name: "first-Secret-1"}, database=DATABASE, owner=OWNER)
        owner.execute("CREATE TABLE IF NOT EXISTS side (id int)")
        owner.execute(f"GRANT TRUNCATE ON side TO {APP_ROLE.name}")
        try:
            assert switch_problems(owner, APP_ROLE, APP_ROLE.name, CLONE) == [
                f"{CLONE} lacks TRUNCATE on side, which {APP_ROLE.name} has: grant it to "
                f"{GROUP}, not to a login"]
        finally:
            owner.execute("DROP TABLE side")


def test_the_documented_sql_is_the_one_that_runs() -> None:
    text = app_roles_sql(DATABASE, "caresync_owner")
    assert "PASSWORD" not in text
    assert f'GRANT "{GROUP}" TO "{CLONE}"' in text
    assert f'REVOKE SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA "public" FROM ' \
           f'"{APP_ROLE.name}"' in text


# Hostile: what an operator grants to caresync_app by hand beyond table privileges. Each of
# these the clone lacked after the switch, and switch_problems saw none of them: the app,
# moved to the clone, then failed (a column it updates, a schema it reads, a role setting
# its queries rely on, a role it is a member of, the default privileges of another role that
# creates tables, a function it calls).
HAND_MADE = {
    "column": ("CREATE TABLE hx_col (id int, note text); "
               f"GRANT UPDATE (note) ON hx_col TO {APP_ROLE.name}",
               "DROP TABLE hx_col",
               f"{CLONE} lacks UPDATE on column hx_col.note, which {APP_ROLE.name} has"),
    "schema": (f"CREATE SCHEMA hx_s; GRANT USAGE ON SCHEMA hx_s TO {APP_ROLE.name}",
               "DROP SCHEMA hx_s CASCADE",
               f"{CLONE} lacks USAGE on schema hx_s, which {APP_ROLE.name} has"),
    "membership": (f"GRANT pg_read_all_stats TO {APP_ROLE.name}",
                   f"REVOKE pg_read_all_stats FROM {APP_ROLE.name}",
                   f"{CLONE} is not a member of pg_read_all_stats"),
    "default privileges of another owner": (
        "CREATE ROLE hx_migrator; ALTER DEFAULT PRIVILEGES FOR ROLE hx_migrator IN SCHEMA "
        f"public GRANT SELECT ON TABLES TO {APP_ROLE.name}",
        "DROP OWNED BY hx_migrator; DROP ROLE hx_migrator",
        f"the default privileges of hx_migrator in schema public grant SELECT on tables to "
        f"{APP_ROLE.name} itself"),
    "role setting": (f"ALTER ROLE {APP_ROLE.name} SET search_path = hx, public",
                     f"ALTER ROLE {APP_ROLE.name} RESET search_path",
                     f"{APP_ROLE.name} has its own setting search_path = 'hx, public'"),
    "function": ("CREATE FUNCTION hx_f() RETURNS int LANGUAGE sql AS 'select 1'; "
                 "REVOKE EXECUTE ON FUNCTION hx_f() FROM PUBLIC; "
                 f"GRANT EXECUTE ON FUNCTION hx_f() TO {APP_ROLE.name}",
                 "DROP FUNCTION hx_f()",
                 f"{CLONE} lacks EXECUTE on function hx_f(), which {APP_ROLE.name} has"),
    # An app storing attachments as large objects owns them (lo_create): the clone may not
    # read them (PostgreSQL 15, "Large Objects": SELECT privilege, or its owner).
    "large object": (f"SET ROLE {APP_ROLE.name}; SELECT lo_create(424242); RESET ROLE",
                     "SELECT lo_unlink(424242)",
                     f"{APP_ROLE.name} owns large object 424242"),
    "type": (f"CREATE TYPE hx_mood AS ENUM ('ok'); ALTER TYPE hx_mood OWNER TO {APP_ROLE.name}",
             "DROP TYPE hx_mood", f"{APP_ROLE.name} owns type hx_mood"),
}


@pytest.mark.parametrize("kind", sorted(HAND_MADE))
def test_a_hand_made_difference_between_the_logins_stops_the_switch(
        server: PostgresCluster, kind: str) -> None:
    setup, teardown, problem = HAND_MADE[kind]
    with _as_owner(server) as owner:
        ensure_roles(owner, {APP_ROLE.name: "first-Secret-1"}, database=DATABASE, owner=OWNER)
        assert switch_problems(owner, APP_ROLE, APP_ROLE.name, CLONE) == []
        server.psql(setup, dbname=DATABASE)
        try:
            found = switch_problems(owner, APP_ROLE, APP_ROLE.name, CLONE)
        finally:
            server.psql(teardown, dbname=DATABASE)
    assert any(problem in line for line in found), found

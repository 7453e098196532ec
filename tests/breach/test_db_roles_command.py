"""db_roles.py on moto and a real PostgreSQL: the app's role is created as the master user with
its secret's password on the writer (the standby's database does not answer and is passed
over); a second run changes nothing; a dry run changes nothing; roles whose secrets this
deployment lacks are left out and named."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from caresync_dr.cli import ExitCode
from caresync_dr.commands.db_roles import main
from caresync_dr.db.roles import OWNER_ROLE
from caresync_dr.db.sessions import Endpoint, login_refused
from caresync_dr.pg.cluster import PostgresCluster
from tests.breach.conftest import APP, CLONE, DATABASE, FIRST, GROUP, MASTER
from tests.breach.world import PRIMARY, BreachWorld
from tests.ci_paths import ROOT

pytestmark = pytest.mark.postgres
NEW_APP_PASSWORD = "App-From-Secret-7"


def _roles(tmp_path: Path, *extra: str) -> tuple[int, dict[str, object]]:
    report = tmp_path / "roles.json"
    code = main(["--db-sslmode", "disable", "--project-dir", str(ROOT), "--report",
                 str(report), *extra])
    return code, json.loads(report.read_text())


@pytest.fixture
def fresh(db_world: BreachWorld, database: PostgresCluster) -> Iterator[BreachWorld]:
    """The app's role does not exist yet (a new deployment: the master user created the
    tables); its secret holds its password. Afterwards the role is as the other tests expect."""
    database.psql(f"ALTER TABLE patients OWNER TO {MASTER}; DROP OWNED BY {APP}; "
                  f"DROP ROLE {APP}", DATABASE)
    db_world.client("secretsmanager", PRIMARY).put_secret_value(
        SecretId="caresync/db/app", SecretString=json.dumps({
            "engine": "postgres", "username": APP, "password": NEW_APP_PASSWORD,
            "dbname": DATABASE}))
    yield db_world
    database.psql(f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{APP}') "
                  f"THEN CREATE ROLE {APP} LOGIN; END IF; END $$; "
                  f"GRANT SELECT, INSERT ON patients TO {APP}", DATABASE)


def test_creates_the_app_role_from_its_secret_once(
        fresh: BreachWorld, database: PostgresCluster, tmp_path: Path) -> None:
    endpoint = Endpoint("127.0.0.1", database.port, DATABASE, "disable")
    code, report = _roles(tmp_path, "--dry-run")
    assert code == ExitCode.OK
    assert report["existedBefore"] == {APP: False, CLONE: False}
    assert login_refused(endpoint, APP, NEW_APP_PASSWORD)      # the dry run created nothing
    code, report = _roles(tmp_path)
    assert code == ExitCode.OK, report
    assert report["site"] == "primary" and report["roles"] == [APP]
    assert report["withoutSecret"] == ["caresync_backup", "caresync_restore",
                                       "caresync_restore_test"]
    assert report["unreachable"] == []      # the writer was the first site asked
    assert not login_refused(endpoint, APP, NEW_APP_PASSWORD)
    # The privileges are the group's; both logins have them through it, neither its own.
    rows = database.psql("SELECT grantee || ':' || privilege_type FROM "
                         "information_schema.role_table_grants WHERE grantee IN "
                         f"('{APP}', '{CLONE}', '{GROUP}') AND table_name = 'patients' "
                         "ORDER BY 1", DATABASE)
    assert rows.split() == [f"{GROUP}:{p}" for p in ("DELETE", "INSERT", "SELECT", "UPDATE")]
    for login in (APP, CLONE):
        assert database.psql(f"SELECT pg_has_role('{login}', '{GROUP}', 'USAGE')") == "t"
    # The clone exists without a password until the first rotation sets one.
    assert login_refused(endpoint, CLONE, NEW_APP_PASSWORD)
    code, report = _roles(tmp_path)
    assert code == ExitCode.OK and report["existedBefore"] == {APP: True, CLONE: True}
    assert not login_refused(endpoint, APP, NEW_APP_PASSWORD)


@pytest.fixture
def operator_secrets(db_world: BreachWorld, database: PostgresCluster) -> Iterator[BreachWorld]:
    """The backup, restore and restore-test roles' secrets exist (issue 11's deployment): the
    command then hands the database to its NOLOGIN owner. Afterwards the master user owns it
    again and the new roles are gone, as the other tests expect."""
    from caresync_dr.db.roles import OPERATOR_ROLES
    from caresync_dr.db.secrets import secret_value

    secrets = db_world.client("secretsmanager", PRIMARY)
    for role in OPERATOR_ROLES:
        secrets.create_secret(Name=role.secret_name, SecretString=secret_value(
            role.name, f"{role.name}-Pass-1", DATABASE))
    yield db_world
    names = ", ".join([*(r.name for r in OPERATOR_ROLES), OWNER_ROLE])
    database.psql(f"ALTER DATABASE {DATABASE} OWNER TO {MASTER}")
    database.psql(f"DROP OWNED BY {names}", DATABASE)
    database.psql(f"DROP ROLE IF EXISTS {names}")


def test_hands_the_database_to_its_owner_role_as_a_master_user_that_is_no_superuser(
        operator_secrets: BreachWorld, database: PostgresCluster, tmp_path: Path) -> None:
    """PostgreSQL 15: ALTER DATABASE ... OWNER TO needs the caller to be a member of the new
    owner (and CREATEDB); RDS's master user is neither a superuser nor, by creating the role,
    its member (PostgreSQL 15 docs, "ALTER DATABASE"; CREATE ROLE grants no membership before
    16)."""
    assert database.psql(f"SELECT rolsuper FROM pg_roles WHERE rolname = '{MASTER}'") == "f"
    code, report = _roles(tmp_path)

    assert code == ExitCode.OK, report
    assert report["tableOwner"] == OWNER_ROLE
    assert database.psql("SELECT pg_get_userbyid(datdba) FROM pg_database "
                         f"WHERE datname = '{DATABASE}'") == OWNER_ROLE
    members = database.psql("SELECT r.rolname FROM pg_auth_members m JOIN pg_roles r ON "
                            "r.oid = m.member WHERE m.roleid = "
                            f"'{OWNER_ROLE}'::regrole ORDER BY 1").split()
    assert {"caresync_restore", "caresync_restore_test", MASTER} <= set(members)
    code, report = _roles(tmp_path)   # again: nothing new, no error
    assert code == ExitCode.OK, report


def test_when_the_secret_names_the_clone_caresync_app_keeps_its_password(
        db_world: BreachWorld, database: PostgresCluster, tmp_path: Path) -> None:
    """After an odd number of rotations the secret names caresync_app_clone: the command sets
    the clone's password from it and leaves caresync_app's, which instances that booted before
    the last rotation still use."""
    endpoint = Endpoint("127.0.0.1", database.port, DATABASE, "disable")
    db_world.client("secretsmanager", PRIMARY).put_secret_value(
        SecretId="caresync/db/app", SecretString=json.dumps({
            "engine": "postgres", "username": CLONE, "password": "Clone-From-Secret-8",
            "dbname": DATABASE}))
    code, report = _roles(tmp_path)
    assert code == ExitCode.OK, report
    assert not login_refused(endpoint, CLONE, "Clone-From-Secret-8")
    assert not login_refused(endpoint, APP, FIRST[APP])


def test_a_secret_naming_another_user_changes_nothing(
        db_world: BreachWorld, database: PostgresCluster, tmp_path: Path) -> None:
    db_world.client("secretsmanager", PRIMARY).put_secret_value(
        SecretId="caresync/db/app", SecretString=json.dumps({
            "engine": "postgres", "username": "someone_else", "password": "x-Y-1",
            "dbname": DATABASE}))
    code, report = _roles(tmp_path)
    assert code == ExitCode.USAGE
    assert "names user someone_else, not one of caresync_app, caresync_app_clone" in str(
        report.get("message") or report)
    assert database.psql(f"SELECT count(*) FROM pg_roles WHERE rolname = '{CLONE}'") == "0"

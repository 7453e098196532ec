"""Fixtures: both sites in moto (tests/breach/world.py), fast retries, a clean environment."""

from __future__ import annotations

from collections.abc import Iterator

import botocore.retries.standard
import pytest
from moto import mock_aws

from caresync_dr.emulation.ec2_groups import SecurityGroupReplacement
from caresync_dr.emulation.secret_rotation import SecretRotationShim
from caresync_dr.pg.cluster import PostgresCluster, free_port
from tests.breach import world as w
from tests.pg_servers import pgaudit_server


@pytest.fixture(autouse=True)
def _aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    monkeypatch.setattr(botocore.retries.standard.ExponentialBackoff, "delay_amount",
                        lambda self, context: 0.01)


@pytest.fixture
def world() -> Iterator[w.BreachWorld]:
    # moto's gaps, each closed as real AWS behaves (caresync_dr/emulation says how).
    with mock_aws(), SecurityGroupReplacement(), SecretRotationShim():
        yield w.seed()


# --- a real PostgreSQL behind the primary's endpoint parameter ----------------------------------

MASTER, APP, DATABASE = "caresync_admin", "caresync_app", "caresync"
CLONE, GROUP = "caresync_app_clone", "caresync_app_group"   # roles.APP_ROLE's alternating pair
FIRST = {MASTER: "Master-First-Pass-1", APP: "App-First-Pass-1"}
# Back to the live database as it was before the alternating users: caresync_app alone, with
# its own grants (each test starts there; the first rotation is the migration).
ONLY_CARESYNC_APP = (
    "DO $$ BEGIN "
    f"IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{CLONE}') THEN "
    f"DROP OWNED BY {CLONE}; DROP ROLE {CLONE}; END IF; "
    f"IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{GROUP}') THEN "
    f"DROP OWNED BY {GROUP}; DROP ROLE {GROUP}; END IF; END $$; "
    f"GRANT SELECT, INSERT ON patients TO {APP}")


@pytest.fixture(scope="session")
def database() -> Iterator[PostgresCluster]:
    """Like RDS: the master user is no superuser (CREATEROLE CREATEDB; rds_superuser's
    pg_signal_backend and pg_monitor: it sees and ends every session, AWS "PostgreSQL roles"),
    both logins need their passwords; pgAudit as the parameter group loads it."""
    with pgaudit_server("caresync-breach-test-", password_roles=(MASTER, APP, CLONE)
                        ) as cluster:
        cluster.psql(f"CREATE ROLE {MASTER} LOGIN CREATEROLE CREATEDB "
                     f"PASSWORD '{FIRST[MASTER]}' IN ROLE pg_signal_backend, pg_monitor")
        # RDS's rds_superuser may set pgAudit's superuser-only settings per role (AWS: "Using
        # pgAudit to log database activity"); PostgreSQL 15 grants exactly that per parameter.
        cluster.psql(f"GRANT SET ON PARAMETER pgaudit.log TO {MASTER}")
        cluster.psql(f"CREATE DATABASE {DATABASE} OWNER {MASTER}")
        cluster.psql(f"CREATE ROLE {APP} LOGIN PASSWORD '{FIRST[APP]}'; "
                     "CREATE ROLE analyst LOGIN; "
                     f"CREATE TABLE patients (id int PRIMARY KEY, name text); "
                     # As on RDS: the master user runs the migrations and owns the tables.
                     f"ALTER TABLE patients OWNER TO {MASTER}; "
                     f"GRANT SELECT, INSERT ON patients TO {APP}", DATABASE)
        yield cluster


@pytest.fixture
def db_world(database: PostgresCluster) -> Iterator[w.BreachWorld]:
    """Both sites in moto; the primary's endpoint parameter names the real server, the
    standby's a port nothing listens on (a replica that does not answer). Before and after:
    the database as the session fixture made it (the next test, with or without this fixture,
    finds the first passwords and caresync_app alone)."""
    _first_state(database)
    with mock_aws(), SecurityGroupReplacement(), SecretRotationShim():
        yield w.seed(endpoints={w.PRIMARY: f"127.0.0.1:{database.port}",
                                w.STANDBY: f"127.0.0.1:{free_port()}"}, passwords=dict(FIRST))
    _first_state(database)


def _first_state(database: PostgresCluster) -> None:
    database.psql(f"ALTER ROLE {MASTER} PASSWORD '{FIRST[MASTER]}'; "
                  f"ALTER ROLE {APP} PASSWORD '{FIRST[APP]}'; ALTER ROLE analyst LOGIN; "
                  f"ALTER ROLE {APP} RESET pgaudit.log; ALTER ROLE analyst RESET pgaudit.log")
    database.psql(ONLY_CARESYNC_APP, DATABASE)

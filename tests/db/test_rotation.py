"""Credential rotation on a real PostgreSQL 15 and Secrets Manager (moto): the new password
works, the old one is refused by the server, and a run that stops after any step is completed
by the next one with the same password (no second version, no lost password)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import boto3
import psycopg
import pytest
from moto import mock_aws

from caresync_dr.db import rotation
from caresync_dr.db.rotation import (
    CURRENT,
    PENDING,
    PREVIOUS,
    Credential,
    RotationError,
    SecretStore,
    master_connection,
    rotate,
    rotation_token,
)
from caresync_dr.db.secrets import APP_SECRET_NAME, MASTER_SECRET_NAME, secret_value
from caresync_dr.db.sessions import Endpoint, login_refused
from caresync_dr.pg.cluster import PostgresCluster
from tests.pg_servers import postgres_server

pytestmark = pytest.mark.postgres
DATABASE = "caresync"
MASTER, APP = "caresync_admin", "caresync_app"
FIRST = {MASTER: "Master-First-Pass-1", APP: "App-First-Pass-1"}


@pytest.fixture(scope="module")
def server() -> Iterator[PostgresCluster]:
    with postgres_server("caresync-rotation-test-", password_roles=(MASTER, APP)) as cluster:
        # Like RDS: the master user is no superuser; it may create roles and signal backends.
        cluster.psql(f"CREATE ROLE {MASTER} LOGIN CREATEROLE PASSWORD '{FIRST[MASTER]}' "
                     "IN ROLE pg_signal_backend")
        cluster.psql(f"CREATE DATABASE {DATABASE} OWNER {MASTER}")
        yield cluster


@pytest.fixture
def store(server: PostgresCluster) -> Iterator[SecretStore]:
    """Fresh secrets and passwords for every test."""
    server.psql(f"DROP ROLE IF EXISTS {APP}; CREATE ROLE {APP} LOGIN PASSWORD "
                f"'{FIRST[APP]}'; ALTER ROLE {MASTER} PASSWORD '{FIRST[MASTER]}'")
    with mock_aws():
        os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
        os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
        client = boto3.client("secretsmanager", region_name="us-east-1")
        for name, user in ((MASTER_SECRET_NAME, MASTER), (APP_SECRET_NAME, APP)):
            client.create_secret(Name=name, SecretString=secret_value(user, FIRST[user],
                                                                      DATABASE))
        yield SecretStore(client)


@pytest.fixture
def endpoint(server: PostgresCluster) -> Endpoint:
    return Endpoint("127.0.0.1", server.port, DATABASE, sslmode="disable")


MASTER_CRED = Credential(MASTER, MASTER_SECRET_NAME, master=True)
APP_CRED = Credential(APP, APP_SECRET_NAME)


def _admin(store: SecretStore, endpoint: Endpoint) -> rotation.AdminConnect:
    return lambda: master_connection(store, MASTER_SECRET_NAME, endpoint)[0]


def _password(store: SecretStore, secret: str, stage: str) -> str:
    version = store.version(secret, stage)
    assert version is not None
    return version.password


def test_rotating_the_app_login_refuses_the_old_password_and_keeps_open_sessions(
        store: SecretStore, endpoint: Endpoint) -> None:
    open_session = psycopg.connect(host=endpoint.host, port=endpoint.port, dbname=DATABASE,
                                   user=APP, password=FIRST[APP], autocommit=True)
    token = rotation_token("run-1", APP_SECRET_NAME)
    result = rotate(store, APP_CRED, token, endpoint, _admin(store, endpoint))
    assert result.new_password_works and result.old_password_refused is True
    assert "the old password is refused" in result.sentence
    new = _password(store, APP_SECRET_NAME, CURRENT)
    assert new != FIRST[APP] and len(new) == 32
    assert _password(store, APP_SECRET_NAME, PREVIOUS) == FIRST[APP]
    assert login_refused(endpoint, APP, FIRST[APP]) and not login_refused(endpoint, APP, new)
    # A password change ends no session: that is breach.py's separate step.
    assert open_session.execute("SELECT 1").fetchone() == (1,)
    open_session.close()
    # The secret keeps D1's shape, only the password changed.
    value = store.version(APP_SECRET_NAME, CURRENT)
    assert value is not None and set(value.value) == {"engine", "username", "password",
                                                      "dbname"}


def test_the_same_token_again_changes_nothing(store: SecretStore, endpoint: Endpoint) -> None:
    token = rotation_token("run-2", APP_SECRET_NAME)
    first = rotate(store, APP_CRED, token, endpoint, _admin(store, endpoint))
    versions = store.stages(APP_SECRET_NAME)
    again = rotate(store, APP_CRED, token, endpoint, _admin(store, endpoint))
    assert store.stages(APP_SECRET_NAME) == versions
    assert again.version_id == first.version_id and again.old_password_refused is True


class CrashError(Exception):
    pass


@pytest.mark.parametrize("after", ["put_pending", "set_password", "make_current"])
def test_a_run_stopped_after_any_step_is_finished_by_the_next(
        store: SecretStore, endpoint: Endpoint, monkeypatch: pytest.MonkeyPatch,
        after: str) -> None:
    token = rotation_token("run-3", APP_SECRET_NAME)
    target: Any = SecretStore if after != "set_password" else rotation
    name = after if after != "set_password" else "_set_password"
    real = getattr(target, name)

    def crashing(*args: Any, **kwargs: Any) -> Any:
        real(*args, **kwargs)
        raise CrashError(after)

    monkeypatch.setattr(target, name, crashing)
    with pytest.raises(CrashError):
        rotate(store, APP_CRED, token, endpoint, _admin(store, endpoint))
    stored = store.version(APP_SECRET_NAME, PENDING) or store.version(APP_SECRET_NAME, CURRENT)
    assert stored is not None and stored.version_id == token
    monkeypatch.setattr(target, name, real)
    result = rotate(store, APP_CRED, token, endpoint, _admin(store, endpoint))
    assert result.version_id == token and result.old_password_refused is True
    # The password the first attempt stored is the one in force: nothing was generated twice.
    assert _password(store, APP_SECRET_NAME, CURRENT) == stored.password
    assert not login_refused(endpoint, APP, stored.password)
    assert len(store.stages(APP_SECRET_NAME)) == 2


def test_the_master_rotates_itself_and_a_half_done_run_still_logs_in(
        store: SecretStore, endpoint: Endpoint, monkeypatch: pytest.MonkeyPatch) -> None:
    token = rotation_token("run-4", MASTER_SECRET_NAME)
    real = SecretStore.make_current

    def crash(*args: Any, **kwargs: Any) -> None:
        raise CrashError("before finish")

    monkeypatch.setattr(SecretStore, "make_current", crash)
    with pytest.raises(CrashError):
        rotate(store, MASTER_CRED, token, endpoint, _admin(store, endpoint))
    # The database has the new master password, the secret's AWSCURRENT the old one: the
    # next run logs in with AWSPENDING, as AWS's rotation functions do.
    conn, stage = master_connection(store, MASTER_SECRET_NAME, endpoint)
    conn.close()
    assert stage == PENDING
    monkeypatch.setattr(SecretStore, "make_current", real)
    result = rotate(store, MASTER_CRED, token, endpoint, _admin(store, endpoint))
    assert result.old_password_refused is True
    assert login_refused(endpoint, MASTER, FIRST[MASTER])


def test_no_version_that_logs_in_is_one_clear_error(store: SecretStore, endpoint: Endpoint,
                                                    server: PostgresCluster) -> None:
    server.psql(f"ALTER ROLE {MASTER} PASSWORD 'Changed-Behind-Our-Back-1'")
    with pytest.raises(RotationError, match="no version of caresync/db/master logs in"):
        rotate(store, APP_CRED, rotation_token("run-5", APP_SECRET_NAME), endpoint,
               _admin(store, endpoint))
    # The database and the app's current secret are unchanged; only the pending version was
    # stored, and the next run reuses it.
    assert not login_refused(endpoint, APP, FIRST[APP])
    assert _password(store, APP_SECRET_NAME, CURRENT) == FIRST[APP]
    pending = store.version(APP_SECRET_NAME, PENDING)
    assert pending is not None and pending.version_id == rotation_token("run-5",
                                                                        APP_SECRET_NAME)

"""An app instance's boot reads its own region only; with that region's copy it needs nothing
else, and the emulator's call log shows where every request went."""

from __future__ import annotations

import json

import boto3
import pytest

from caresync_dr.db.secrets import APP_SECRET_NAME
from caresync_dr.drill.boot import Booter
from caresync_dr.drill.databases import install_roles, start_databases, wait_for_role
from caresync_dr.emulation.secretsmanager import ReplicaKeys
from caresync_dr.emulation.server import Emulator
from caresync_dr.pg.cluster import HOW_TO_GET_POSTGRES, PostgresNotFoundError, find_pg_bin

PARAMETER = "/caresync-dr/{site}/database-host"
SECRET = {"engine": "postgres", "username": "caresync_app", "password": "s3cret-Pw!",
          "dbname": "caresync"}


def _sites() -> None:
    for region, site in (("us-east-1", "primary"), ("us-west-2", "standby")):
        boto3.client("ssm", region_name=region).put_parameter(  # as the stack makes it
            Name=PARAMETER.format(site=site), Type="SecureString",
            Value=f"caresync-{site}-db.x.{region}.rds.amazonaws.com:5432")
    with ReplicaKeys():
        boto3.client("secretsmanager", region_name="us-east-1").create_secret(
            Name=APP_SECRET_NAME, SecretString=json.dumps(SECRET),
            AddReplicaRegions=[{"Region": "us-west-2"}])


def test_the_standby_boots_from_its_region_while_the_primary_region_is_down(
        aws: Emulator) -> None:
    _sites()
    booter = Booter(aws)
    aws.take_down(regions=["us-east-1"])
    boot = booter.boot("standby", "us-west-2", PARAMETER.format(site="standby"), "test")
    assert boot.ok and boot.config is not None
    assert (boot.config.host, boot.config.user, boot.config.dbname) == (
        "caresync-standby-db.x.us-west-2.rds.amazonaws.com", "caresync_app", "caresync")
    assert boot.calls() == ["ssm.us-west-2 GetParameter",
                            "secretsmanager.us-west-2 GetSecretValue"]
    assert "s3cret" not in repr(boot)  # the password never reaches a log line

    down = booter.boot("primary", "us-east-1", PARAMETER.format(site="primary"), "test")
    assert not down.ok and down.error is not None
    assert down.calls() == ["ssm.us-east-1 GetParameter (refused)"] * 2  # botocore retried


def test_a_boot_without_the_secret_in_its_region_fails(aws: Emulator) -> None:
    boto3.client("ssm", region_name="us-west-2").put_parameter(
        Name=PARAMETER.format(site="standby"), Type="String", Value="db:5432")
    boto3.client("secretsmanager", region_name="us-east-1").create_secret(
        Name=APP_SECRET_NAME, SecretString=json.dumps(SECRET))  # not replicated
    boot = Booter(aws).boot("standby", "us-west-2", PARAMETER.format(site="standby"), "test")
    assert not boot.ok and "ResourceNotFoundException" in str(boot.error)


@pytest.mark.postgres
def test_the_app_role_needs_its_password_on_the_standby_too() -> None:
    """pg_hba asks caresync_app for SCRAM; the role and the rule reach the standby."""
    try:
        find_pg_bin()
    except PostgresNotFoundError:
        pytest.skip(f"no PostgreSQL server: {HOW_TO_GET_POSTGRES}")
    import psycopg
    from psycopg.conninfo import make_conninfo

    dbs = start_databases(False, app_database="caresync", password_roles=("caresync_app",))
    try:
        install_roles(dbs.primary, "caresync", {"caresync_app": SECRET["password"]})
        wait_for_role(dbs.standby, "caresync_app")  # streaming replication brings it
        def login(**password: str) -> str:
            return make_conninfo(host="127.0.0.1", port=dbs.standby.port, user="caresync_app",
                                 dbname="caresync", connect_timeout=2, **password)

        with psycopg.connect(login(password=SECRET["password"])) as conn:
            assert conn.execute("select current_user").fetchone() == ("caresync_app",)
        for wrong in (login(), login(password="not-it")):
            with pytest.raises(psycopg.OperationalError):
                psycopg.connect(wrong)
    finally:
        dbs.stop()

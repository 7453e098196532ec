"""The master user's link to each site, from its own region's secret and endpoint parameter
(decision D1), never showing the password."""

from __future__ import annotations

import json
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any, cast

import boto3
import pytest
from moto import mock_aws
from psycopg.conninfo import conninfo_to_dict

from caresync_dr.aws import STANDBY, AwsClients, RegionClients
from caresync_dr.cli.errors import UsageError
from caresync_dr.db.secrets import secret_value
from caresync_dr.inventory import SiteInventory
from caresync_dr.names import MASTER_SECRET_NAME, endpoint_parameter_name
from caresync_dr.switchover import databases

REGION = "us-west-2"


@pytest.fixture
def clients(monkeypatch: pytest.MonkeyPatch) -> Iterator[RegionClients]:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        yield RegionClients(AwsClients(REGION, STANDBY, boto3.Session()))


def site() -> SiteInventory:
    database = SimpleNamespace(endpoint_parameter=endpoint_parameter_name("standby"))
    return cast(SiteInventory, SimpleNamespace(database=database, region=REGION))


def seed(clients: RegionClients, host: str | None, secret: str | None) -> None:
    session: Any = clients.aws.session
    if secret is not None:
        session.client("secretsmanager", region_name=REGION).create_secret(
            Name=MASTER_SECRET_NAME, SecretString=secret)
    if host is not None:
        clients.ssm().put_parameter(Name=endpoint_parameter_name("standby"), Value=host,
                                    Type="SecureString")


def test_link_from_the_sites_own_secret_and_parameter(clients: RegionClients) -> None:
    seed(clients, "standby-db.abc.us-west-2.rds.amazonaws.com:5432",
         secret_value("caresync_admin", "s3cr3t!", "caresync"))
    link = databases.from_secret("standby", site(), clients)
    parts = conninfo_to_dict(link.conninfo)
    assert parts["host"] == "standby-db.abc.us-west-2.rds.amazonaws.com"
    assert (parts["port"], parts["user"], parts["dbname"]) == ("5432", "caresync_admin",
                                                               "caresync")
    assert parts["sslmode"] == "require"
    assert "s3cr3t" not in link.where and "s3cr3t" not in repr(link)


def test_a_missing_secret_or_parameter_is_a_usage_error(clients: RegionClients) -> None:
    with pytest.raises(UsageError, match="not found"):
        databases.from_secret("standby", site(), clients)
    seed(clients, None, json.dumps({"username": "x"}))
    with pytest.raises(UsageError, match="endpoint parameter"):
        databases.from_secret("standby", site(), clients)
    seed(clients, "h:5432", None)
    with pytest.raises(UsageError, match="decision D1"):
        databases.from_secret("standby", site(), clients)

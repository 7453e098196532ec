"""Secrets Manager replication: the standby region's replica alone serves the secret."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ConnectionClosedError, EndpointConnectionError

from caresync_dr.emulation.secretsmanager import ReplicaKeys
from caresync_dr.emulation.server import Emulator

FAST = Config(retries={"mode": "standard", "total_max_attempts": 2},
              connect_timeout=1, read_timeout=2)
EAST_KEY = "arn:aws:kms:us-east-1:111122223333:key/primary"
WEST_KEY = "arn:aws:kms:us-west-2:111122223333:key/standby"


def _secret(name: str = "caresync/db/app") -> None:
    boto3.client("secretsmanager", region_name="us-east-1").create_secret(
        Name=name, KmsKeyId=EAST_KEY,
        SecretString=json.dumps({"username": "caresync_app", "password": "first"}),
        AddReplicaRegions=[{"Region": "us-west-2", "KmsKeyId": WEST_KEY}])


def test_the_replica_serves_the_current_value_with_the_primary_region_down(
        aws: Emulator) -> None:
    _secret()
    east = boto3.client("secretsmanager", region_name="us-east-1", config=FAST)
    west = boto3.client("secretsmanager", region_name="us-west-2", config=FAST)
    east.put_secret_value(SecretId="caresync/db/app",
                          SecretString=json.dumps({"username": "caresync_app",
                                                   "password": "rotated"}))
    aws.take_down(regions=["us-east-1"])
    value = json.loads(west.get_secret_value(SecretId="caresync/db/app")["SecretString"])
    assert value["password"] == "rotated"  # the primary's current version, replicated
    with pytest.raises((ConnectionClosedError, EndpointConnectionError)):
        east.get_secret_value(SecretId="caresync/db/app")


def test_each_replica_reports_the_key_of_its_own_region(aws: Emulator) -> None:
    east = boto3.client("secretsmanager", region_name="us-east-1")
    west = boto3.client("secretsmanager", region_name="us-west-2")
    _secret("unshimmed")
    # moto's gap: the replica claims the primary's key, its status the AWS-managed one.
    assert west.describe_secret(SecretId="unshimmed")["KmsKeyId"] == EAST_KEY
    assert east.describe_secret(SecretId="unshimmed")["ReplicationStatus"][0]["KmsKeyId"] == \
        "alias/aws/secretsmanager"
    with ReplicaKeys():
        _secret()
        replica = west.describe_secret(SecretId="caresync/db/app")
        assert replica["KmsKeyId"] == WEST_KEY and replica["PrimaryRegion"] == "us-east-1"
        [status] = east.describe_secret(SecretId="caresync/db/app")["ReplicationStatus"]
        assert (status["Region"], status["KmsKeyId"], status["Status"]) == (
            "us-west-2", WEST_KEY, "InSync")

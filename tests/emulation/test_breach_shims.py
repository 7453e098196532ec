"""The shims breach.py's tests and drill need, each asserting what real AWS does (and that moto
alone does not, so a moto that fixes the gap makes the shim's test say so)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from caresync_dr.emulation.cloudtrail import TrailDelivery, api_record
from caresync_dr.emulation.ec2_groups import SecurityGroupReplacement
from caresync_dr.emulation.rds_logs import LogExport
from caresync_dr.emulation.secret_rotation import SecretRotationShim


@pytest.fixture(autouse=True)
def _aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # monkeypatch, never os.environ: a later test's moto must load its default AMIs again.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    with mock_aws():
        yield


def _instance_groups() -> tuple[list[str], list[str], str, str]:
    ec2 = boto3.client("ec2", region_name="us-east-1")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    app = ec2.create_security_group(GroupName="app", Description="a", VpcId=vpc)["GroupId"]
    quarantine = ec2.create_security_group(GroupName="q", Description="q", VpcId=vpc)["GroupId"]
    instance = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1,
                                 SubnetId=subnet, SecurityGroupIds=[app])["Instances"][0]
    eni = instance["NetworkInterfaces"][0]["NetworkInterfaceId"]
    ec2.modify_network_interface_attribute(NetworkInterfaceId=eni, Groups=[quarantine])
    described = ec2.describe_instances(InstanceIds=[instance["InstanceId"]])
    found = described["Reservations"][0]["Instances"][0]
    return ([g["GroupId"] for g in found["NetworkInterfaces"][0]["Groups"]],
            [g["GroupId"] for g in found["SecurityGroups"]], app, quarantine)


def test_moto_alone_keeps_the_old_group_beside_the_new_one() -> None:
    eni_groups, _, app, quarantine = _instance_groups()
    assert sorted(eni_groups) == sorted([app, quarantine])   # the gap the shim closes


def test_replacing_an_interfaces_groups_replaces_the_instances() -> None:
    with SecurityGroupReplacement():
        eni_groups, instance_groups, _, quarantine = _instance_groups()
    assert eni_groups == instance_groups == [quarantine]


def _rotated_secret() -> tuple[Any, Any, str]:
    primary = boto3.client("secretsmanager", region_name="us-east-1")
    replica = boto3.client("secretsmanager", region_name="us-west-2")
    primary.create_secret(Name="caresync/db/app", SecretString="old",
                          AddReplicaRegions=[{"Region": "us-west-2"}])
    token = "a" * 36
    primary.put_secret_value(SecretId="caresync/db/app", SecretString="new",
                             ClientRequestToken=token, VersionStages=["AWSPENDING"])
    stages = primary.describe_secret(SecretId="caresync/db/app")["VersionIdsToStages"]
    current = next(v for v, s in stages.items() if "AWSCURRENT" in s)
    primary.update_secret_version_stage(SecretId="caresync/db/app", VersionStage="AWSCURRENT",
                                        MoveToVersionId=token, RemoveFromVersionId=current)
    return primary, replica, token


def test_moto_alone_serves_the_old_value_after_a_finished_rotation() -> None:
    primary, _, _ = _rotated_secret()
    assert primary.get_secret_value(SecretId="caresync/db/app")["SecretString"] == "old"


def test_a_finished_rotation_is_what_every_region_reads() -> None:
    with SecretRotationShim():
        primary, replica, token = _rotated_secret()
        for client in (primary, replica):
            answer = client.get_secret_value(SecretId="caresync/db/app")
            assert (answer["SecretString"], answer["VersionId"]) == ("new", token)


def _deprecated_version() -> tuple[Any, str]:
    """A secret whose first version lost every label (two rotations later)."""
    primary, _, token = _rotated_secret()
    first = next(v for v, s in primary.describe_secret(SecretId="caresync/db/app")[
        "VersionIdsToStages"].items() if "AWSPREVIOUS" in s)
    second = "b" * 36
    primary.put_secret_value(SecretId="caresync/db/app", SecretString="newer",
                             ClientRequestToken=second, VersionStages=["AWSPENDING"])
    primary.update_secret_version_stage(SecretId="caresync/db/app", VersionStage="AWSCURRENT",
                                        MoveToVersionId=second, RemoveFromVersionId=token)
    return primary, first


def test_moto_alone_lists_deprecated_versions_by_default() -> None:
    primary, first = _deprecated_version()
    listed = primary.list_secret_version_ids(SecretId="caresync/db/app")["Versions"]
    assert first in {v["VersionId"] for v in listed}


def test_deprecated_versions_are_listed_only_when_asked() -> None:
    with SecretRotationShim():
        primary, first = _deprecated_version()
        listed = primary.list_secret_version_ids(SecretId="caresync/db/app")["Versions"]
        assert first not in {v["VersionId"] for v in listed} and len(listed) == 2
        every = primary.list_secret_version_ids(SecretId="caresync/db/app",
                                                IncludeDeprecated=True)["Versions"]
        assert first in {v["VersionId"] for v in every}
        assert primary.get_secret_value(SecretId="caresync/db/app", VersionId=first)[
            "SecretString"] == "old"


def test_a_promoted_replica_is_writable_and_independent() -> None:
    with SecretRotationShim():
        primary, replica, _ = _rotated_secret()
        with pytest.raises(replica.exceptions.InvalidParameterException):
            replica.put_secret_value(SecretId="caresync/db/app", SecretString="x")
        arn = replica.describe_secret(SecretId="caresync/db/app")["ARN"]
        assert replica.stop_replication_to_replica(SecretId="caresync/db/app")["ARN"] == arn
        described = replica.describe_secret(SecretId="caresync/db/app")
        assert "PrimaryRegion" not in described or described["PrimaryRegion"] == "us-west-2"
        replica.put_secret_value(SecretId="caresync/db/app", SecretString="standby-written")
        assert replica.get_secret_value(SecretId="caresync/db/app")["SecretString"] == (
            "standby-written")
        assert primary.get_secret_value(SecretId="caresync/db/app")["SecretString"] == "new"
        assert not primary.describe_secret(SecretId="caresync/db/app").get(
            "ReplicationStatus")


def test_moto_alone_has_no_event_history() -> None:
    with pytest.raises(NotImplementedError):
        boto3.client("cloudtrail", region_name="us-east-1").lookup_events(MaxResults=5)


def test_delivered_records_reach_the_log_group_and_the_event_history() -> None:
    logs = boto3.client("logs", region_name="us-east-1")
    logs.create_log_group(logGroupName="/trail")
    with TrailDelivery(lambda region: boto3.client("logs", region_name=region)) as delivery:
        for name, data in (("ListBuckets", False), ("GetObject", True)):
            delivery.deliver(api_record(region="us-east-1", event_source="s3.amazonaws.com",
                                        event_name=name, account="123456789012", user="u",
                                        access_key="AKIAAAAAAAAAAAAAAAA1", data_event=data),
                             trail_region="us-east-1", log_group="/trail")
        streams = logs.describe_log_streams(logGroupName="/trail")["logStreams"]
        assert [s["logStreamName"] for s in streams] == ["123456789012_CloudTrail_us-east-1"]
        assert len(logs.filter_log_events(logGroupName="/trail")["events"]) == 2
        history = boto3.client("cloudtrail", region_name="us-east-1").lookup_events(
            LookupAttributes=[{"AttributeKey": "AccessKeyId",
                               "AttributeValue": "AKIAAAAAAAAAAAAAAAA1"}])["Events"]
    # Event history holds management events only (CloudTrail user guide, "Event history").
    assert [e["EventName"] for e in history] == ["ListBuckets"]


def test_the_log_export_ships_each_new_line_once(tmp_path: Any) -> None:
    logs = boto3.client("logs", region_name="us-east-1")
    logs.create_log_group(logGroupName="/aws/rds/instance/db/postgresql")
    log_file = tmp_path / "postgresql.log"
    log_file.write_text("2026-11-30 03:01:02.250 UTC:x:app@db:[1]:LOG:  AUDIT: SESSION,1\n"
                        "2026-11-30 03:01:03 UTC:x:app@db:[1]:LOG:  second\npartial")
    export = LogExport(log_file, logs, "/aws/rds/instance/db/postgresql", "db")
    assert export.ship() == 2
    assert export.ship() == 0
    with log_file.open("a") as handle:
        handle.write(" line\n")
    assert export.ship() == 1
    events = logs.filter_log_events(logGroupName="/aws/rds/instance/db/postgresql")["events"]
    assert [e["message"].rsplit(":", 1)[-1].strip() for e in events] == [
        "SESSION,1", "second", "partial line"]
    assert events[0]["timestamp"] == 1796007662250

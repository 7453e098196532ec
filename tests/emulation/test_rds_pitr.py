"""RDS point-in-time restores as RDS runs them: windows, replicated backups, refusals, the new
instance's settings (the emulation layer; issue 14). No PostgreSQL here: the drill binds a
real WAL archive (tests/emulation/test_pg_archive.py covers that part)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from caresync_dr.emulation.rds_pitr import PointInTimeRestores
from caresync_dr.emulation.server import ACCOUNT_ID, Emulator

EAST, WEST = "us-east-1", "us-west-2"
SOURCE = "caresync-primary-db"
EARLIEST = datetime(2026, 11, 29, 0, 0, tzinfo=UTC)
LATEST = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)
WEST_KEY = "arn:aws:kms:us-west-2:111122223333:key/00000000-0000-4000-8000-000000000002"


def make_source(region: str = EAST) -> dict[str, Any]:
    ec2 = boto3.client("ec2", region_name=region)
    rds = boto3.client("rds", region_name=region)
    vpc = ec2.create_vpc(CidrBlock="10.10.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.10.{i}.0/24",
                                 AvailabilityZone=f"{region}{z}")["Subnet"]["SubnetId"]
               for i, z in ((1, "a"), (2, "b"))]
    rds.create_db_subnet_group(DBSubnetGroupName="caresync-primary-db",
                               DBSubnetGroupDescription="private", SubnetIds=subnets)
    group = ec2.create_security_group(GroupName="caresync-primary-db", Description="db",
                                      VpcId=vpc)["GroupId"]
    rds.create_db_parameter_group(DBParameterGroupName="caresync-primary-postgres15",
                                  DBParameterGroupFamily="postgres15", Description="tls")
    rds.create_db_instance(
        DBInstanceIdentifier=SOURCE, DBInstanceClass="db.r6g.large", Engine="postgres",
        EngineVersion="15.4", MasterUsername="caresync_admin", MasterUserPassword="x" * 20,
        AllocatedStorage=100, DBSubnetGroupName="caresync-primary-db",
        VpcSecurityGroupIds=[group], DBParameterGroupName="caresync-primary-postgres15",
        StorageEncrypted=True, KmsKeyId="arn:aws:kms:us-east-1:111122223333:key/primary",
        BackupRetentionPeriod=30, MultiAZ=True)
    return {"vpc": vpc, "group": group}


def restore_args(when: datetime, **extra: Any) -> dict[str, Any]:
    return {"TargetDBInstanceIdentifier": "caresync-primary-db-g2", "RestoreTime": when,
            "DBSubnetGroupName": "caresync-primary-db",
            "DBParameterGroupName": "caresync-primary-postgres15", "MultiAZ": True,
            "PubliclyAccessible": False, "Tags": [{"Key": "caresync:generation",
                                                   "Value": "2"}], **extra}


def wait_available(rds: Any, identifier: str) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        db = rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"][0]
        if db["DBInstanceStatus"] != "creating":
            return dict(db)
        time.sleep(0.02)
    raise AssertionError(f"{identifier} stayed creating")


def test_a_restore_inside_the_window_builds_a_new_instance_with_the_sites_settings(
        aws: Emulator) -> None:
    made = make_source()
    built: list[tuple[str, datetime, str]] = []

    def action(source: Any, when: datetime, region: str, target: str) -> int:
        built.append((source.identifier, when, target))
        return 54321

    rds = boto3.client("rds", region_name=EAST)
    with PointInTimeRestores(restore_action=action, delay_seconds=0.1) as pitr:
        pitr.bind(ACCOUNT_ID, EAST, SOURCE, lambda: (EARLIEST, LATEST))
        source = rds.describe_db_instances(DBInstanceIdentifier=SOURCE)["DBInstances"][0]
        assert source["LatestRestorableTime"] == LATEST
        (backup,) = rds.describe_db_instance_automated_backups(
            DBInstanceIdentifier=SOURCE)["DBInstanceAutomatedBackups"]
        assert backup["RestoreWindow"] == {"EarliestTime": EARLIEST, "LatestTime": LATEST}
        when = LATEST - timedelta(minutes=7)
        answer = rds.restore_db_instance_to_point_in_time(
            SourceDBInstanceIdentifier=SOURCE,
            **restore_args(when, VpcSecurityGroupIds=[made["group"]]))["DBInstance"]
        assert answer["DBInstanceStatus"] == "creating"
        db = wait_available(rds, "caresync-primary-db-g2")
    assert built == [(SOURCE, when, "caresync-primary-db-g2")]
    assert db["DBInstanceStatus"] == "available" and db["Endpoint"]["Port"] == 54321
    assert db["DBSubnetGroup"]["VpcId"] == made["vpc"]
    assert [g["VpcSecurityGroupId"] for g in db["VpcSecurityGroups"]] == [made["group"]]
    assert db["DBParameterGroups"][0]["DBParameterGroupName"] == "caresync-primary-postgres15"
    assert db["MultiAZ"] and not db["PubliclyAccessible"] and db["StorageEncrypted"]
    assert db["KmsKeyId"].endswith("key/primary"), "the backups' key: no KmsKeyId argument"
    assert db["MasterUsername"] == "caresync_admin"
    assert not db.get("ReadReplicaSourceDBInstanceIdentifier")


def test_replicated_backups_restore_in_the_standby_region_under_its_key(aws: Emulator) -> None:
    make_source()
    west = boto3.client("rds", region_name=WEST)
    make_source_group = boto3.client("ec2", region_name=WEST)
    vpc = make_source_group.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    subnets = [make_source_group.create_subnet(
        VpcId=vpc, CidrBlock=f"10.20.{i}.0/24", AvailabilityZone=f"{WEST}{z}")["Subnet"][
        "SubnetId"] for i, z in ((1, "a"), (2, "b"))]
    west.create_db_subnet_group(DBSubnetGroupName="caresync-primary-db",
                                DBSubnetGroupDescription="private", SubnetIds=subnets)
    west.create_db_parameter_group(DBParameterGroupName="caresync-primary-postgres15",
                                   DBParameterGroupFamily="postgres15", Description="tls")
    with PointInTimeRestores(restore_action=lambda *a: None) as pitr:
        pitr.bind(ACCOUNT_ID, EAST, SOURCE, lambda: (EARLIEST, LATEST))
        arn = pitr.replicate(ACCOUNT_ID, EAST, SOURCE, WEST, WEST_KEY)
        (backup,) = west.describe_db_instance_automated_backups()["DBInstanceAutomatedBackups"]
        assert backup["DBInstanceAutomatedBackupsArn"] == arn
        assert backup["Region"] == EAST and backup["KmsKeyId"] == WEST_KEY
        west.restore_db_instance_to_point_in_time(SourceDBInstanceAutomatedBackupsArn=arn,
                                                  **restore_args(LATEST))
        db = wait_available(west, "caresync-primary-db-g2")
    assert db["KmsKeyId"] == WEST_KEY


@pytest.mark.parametrize(("args", "code"), [
    ({"RestoreTime": LATEST + timedelta(seconds=1)}, "InvalidRestoreFault"),
    ({"RestoreTime": EARLIEST - timedelta(days=1)}, "InvalidRestoreFault"),
    ({"UseLatestRestorableTime": True}, "InvalidParameterCombination"),
    ({"SourceDBInstanceAutomatedBackupsArn":
      "arn:aws:rds:us-east-1:111122223333:auto-backup:ab-nothing"},
     "InvalidParameterCombination"),
])
def test_what_rds_refuses_is_refused(aws: Emulator, args: dict[str, Any], code: str) -> None:
    make_source()
    rds = boto3.client("rds", region_name=EAST)
    with PointInTimeRestores() as pitr:
        pitr.bind(ACCOUNT_ID, EAST, SOURCE, lambda: (EARLIEST, LATEST))
        request = {**restore_args(LATEST - timedelta(hours=1)), **args}
        with pytest.raises(ClientError) as refused:
            rds.restore_db_instance_to_point_in_time(SourceDBInstanceIdentifier=SOURCE,
                                                     **request)
    assert refused.value.response["Error"]["Code"] == code
    if code == "InvalidRestoreFault":
        assert EARLIEST.isoformat() in refused.value.response["Error"]["Message"]
    assert [d["DBInstanceIdentifier"] for d in rds.describe_db_instances()["DBInstances"]] \
        == [SOURCE], "a refused restore creates nothing"


def test_moving_an_instance_into_a_closed_group_fences_it(aws: Emulator) -> None:
    from caresync_dr.emulation.rds_fence import SecurityGroupFences

    made = make_source()
    ec2 = boto3.client("ec2", region_name=EAST)
    closed = ec2.create_security_group(GroupName="caresync-primary-restore-test",
                                       Description="no access", VpcId=made["vpc"])["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=made["group"], IpPermissions=[{
        "IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432,
        "IpRanges": [{"CidrIp": "10.10.0.0/16"}]}])
    events: list[tuple[str, str, str]] = []
    rds = boto3.client("rds", region_name=EAST)
    with SecurityGroupFences(on_fenced=lambda r, i: events.append(("fenced", r, i)),
                             on_unfenced=lambda r, i: events.append(("open", r, i))):
        rds.modify_db_instance(DBInstanceIdentifier=SOURCE, VpcSecurityGroupIds=[closed],
                               ApplyImmediately=True)
        rds.modify_db_instance(DBInstanceIdentifier=SOURCE, VpcSecurityGroupIds=[made["group"]],
                               ApplyImmediately=True)
    assert events == [("fenced", EAST, SOURCE), ("open", EAST, SOURCE)]

"""AWS side through moto: KMS data keys, SSE-KMS upload, restore test from the bucket, and the
RDS snapshot restore test. AWS Backup recovery points use botocore's Stubber: moto 5.2's backup
service has no recovery points or restore jobs (list_recovery_points_by_backup_vault,
start_restore_job and describe_restore_job are not implemented)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from caresync_dr import names
from caresync_dr.aws import AwsClients
from caresync_dr.backup import key_wraps
from caresync_dr.backup.create import BackupOptions, take_backup
from caresync_dr.backup.key_wraps import SiteKey
from caresync_dr.backup.keys import key_from_kms
from caresync_dr.backup.rds_restore_testing import (
    Expectations,
    Placement,
    run_rds_restore_test,
    validate_placement,
)
from caresync_dr.cli import UsageError
from caresync_dr.commands import backup as backup_script
from caresync_dr.commands import restore_check as restore_test_script
from caresync_dr.pg.cluster import PostgresCluster

if TYPE_CHECKING:
    from mypy_boto3_kms import KMSClient
    from mypy_boto3_rds import RDSClient

REGION = "us-west-2"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsClients]:
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_SESSION_TOKEN": "testing", "AWS_REGION": REGION}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        yield AwsClients(REGION)


@pytest.mark.postgres
def test_kms_backup_to_bucket_then_restore_test_from_bucket(
        aws: AwsClients, pg_server: PostgresCluster, live_db: str, tmp_path: Path) -> None:
    kms_key = aws.kms().create_key(Description="backups")["KeyMetadata"]["KeyId"]
    other_site_key = AwsClients("us-east-1").kms().create_key()["KeyMetadata"]["Arn"]
    s3 = aws.s3()
    s3.create_bucket(Bucket="caresync-backups-dr",
                     CreateBucketConfiguration={"LocationConstraint": REGION})  # type: ignore[typeddict-item]

    code = backup_script.main([
        "--database-url", live_db, "--local-dir", str(tmp_path / "b"), "--kms-key-id", kms_key,
        "--region", REGION, "--wrap-key", f"us-east-1={other_site_key}",
        "--bucket", "caresync-backups-dr", "--bucket-kms-key-id", kms_key,
        "--report", str(tmp_path / "backup.json")])

    assert code == 0
    report = json.loads((tmp_path / "backup.json").read_text())
    name = report["backup"]
    manifest = json.loads((tmp_path / "b" / f"{name}.manifest.json").read_text())
    assert manifest["key"]["source"] == "kms"
    assert [(w["region"], w["key_arn"]) for w in manifest["key"]["wraps"]] == [
        (REGION, f"arn:aws:kms:{REGION}:123456789012:key/{kms_key}"),
        ("us-east-1", other_site_key)]
    assert "Plaintext" not in json.dumps(manifest)
    for suffix in (".dump.enc", ".manifest.json"):
        head = s3.head_object(Bucket="caresync-backups-dr", Key=f"backups/{name}{suffix}")
        assert head["ServerSideEncryption"] == "aws:kms"
        assert kms_key in head["SSEKMSKeyId"]

    # Restore test from the bucket: downloads, asks KMS for the data key, verifies, drops.
    code = restore_test_script.main([
        "--bucket", "caresync-backups-dr", "--region", REGION, "--target-url", live_db,
        "--report", str(tmp_path / "rt.json")])
    rt = json.loads((tmp_path / "rt.json").read_text())
    assert code == 0 and rt["result"] == "passed" and rt["exit_code"] == 0, rt
    assert rt["local"]["backup"] == name and rt["duration_seconds"] > 0
    live = live_db.rsplit("/", 1)[1]
    assert pg_server.psql(f"SELECT count(*) FROM pg_database WHERE datname LIKE '{live}_%'") \
        == "0"


@pytest.mark.postgres
def test_kms_refusing_the_data_key_fails_the_restore_test(
        aws: AwsClients, pg_server: PostgresCluster, live_db: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    kms = aws.kms()
    kms_key = kms.create_key(Description="backups")["KeyMetadata"]["KeyId"]
    take_backup(BackupOptions(live_db, tmp_path,
                              key_from_kms([SiteKey(REGION, kms_key)], lambda _: kms)))
    kms.disable_key(KeyId=kms_key)  # e.g. the key was disabled or access revoked

    # moto 5.2 gap: its Decrypt ignores the key state. Real KMS answers DisabledException,
    # which a Stubber on the restore test's KMS client plays; the disabled key is real in moto.
    class KmsRefuses(AwsClients):
        def kms(self) -> KMSClient:
            client = super().kms()
            assert client.describe_key(KeyId=kms_key)["KeyMetadata"]["KeyState"] == "Disabled"
            stub = Stubber(client)
            stub.add_client_error("decrypt", "DisabledException",
                                  f"arn:aws:kms:{REGION}:123456789012:key/{kms_key} is disabled.")
            stub.activate()
            return client

    monkeypatch.setattr(key_wraps, "AwsClients", KmsRefuses)
    code = restore_test_script.main(["--local-dir", str(tmp_path), "--target-url", live_db,
                                     "--report", str(tmp_path / "rt.json")])

    rt = json.loads((tmp_path / "rt.json").read_text())
    assert code == 1 and rt["result"] == "failed"
    assert "KMS could not decrypt the backup's data key" in rt["local"]["problems"][0]
    assert "DisabledException" in rt["local"]["problems"][0]


def _site_network(aws: AwsClients, site: str = "standby") -> Placement:
    """The site's database network as the stack names it: subnet group, SG, parameter group."""
    ec2, rds = aws.ec2(), aws.rds()
    vpc = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.1.{i}.0/24",
                                 AvailabilityZone=f"{REGION}{zone}")["Subnet"]["SubnetId"]
               for i, zone in enumerate("ab")]
    group = ec2.create_security_group(GroupName=f"caresync-{site}-db", VpcId=vpc,
                                      Description="database")["GroupId"]
    rds.create_db_subnet_group(DBSubnetGroupName=names.db_subnet_group_name(site),
                               SubnetIds=subnets, DBSubnetGroupDescription="database subnets")
    rds.create_db_parameter_group(DBParameterGroupName=names.parameter_group_name(site, 15),
                                  DBParameterGroupFamily=names.parameter_group_family(15),
                                  Description="params")
    return Placement.for_site(site, (group,), engine_major=15)


class _SeeBeforeDelete:
    """Describes the temporary instance the moment the restore test deletes it."""

    def __init__(self, rds: RDSClient) -> None:
        self.seen: dict[str, Any] = {}
        self._delete = rds.delete_db_instance
        self._rds = rds
        rds.delete_db_instance = self  # type: ignore[method-assign]

    def __call__(self, **kwargs: Any) -> Any:
        ident = kwargs["DBInstanceIdentifier"]
        self.seen = dict(self._rds.describe_db_instances(
            DBInstanceIdentifier=ident)["DBInstances"][0])
        return self._delete(**kwargs)


def _rds_source(aws: AwsClients, encrypted: bool = True) -> str:
    kms_key = aws.kms().create_key(Description="rds")["KeyMetadata"]["Arn"]
    aws.rds().create_db_instance(
        DBInstanceIdentifier="caresync-db", Engine="postgres", EngineVersion="15.7",
        DBInstanceClass="db.r6g.large", AllocatedStorage=100, MasterUsername="caresync",
        MasterUserPassword="not-used-123", StorageEncrypted=encrypted,
        KmsKeyId=kms_key if encrypted else "", BackupRetentionPeriod=7)
    return kms_key


def test_rds_restore_test_restores_latest_automated_snapshot_and_deletes_it(
        aws: AwsClients) -> None:
    kms_key = _rds_source(aws)
    rds = aws.rds()
    # moto records an automated snapshot when the instance is created, as RDS does daily
    snaps = rds.describe_db_snapshots(DBInstanceIdentifier="caresync-db",
                                      SnapshotType="automated")["DBSnapshots"]
    assert snaps
    placement = _site_network(aws)
    seen = _SeeBeforeDelete(rds)
    sent: dict[str, Any] = {}
    rds.meta.events.register("provide-client-params.rds.RestoreDBInstanceFromDBSnapshot",
                             lambda params, **_: sent.update(params))

    result = run_rds_restore_test(rds, "caresync-db", "caresync-db-rt",
                                  expected=Expectations(kms_key_id=kms_key),
                                  placement=placement, poll_seconds=0, wait_seconds=5)

    assert result.passed, result.problems
    # The restored copy sits in the site's network, not the default VPC, and is not public.
    restored = seen.seen
    assert restored["DBInstanceIdentifier"] == "caresync-db-rt"
    assert restored["DBSubnetGroup"]["DBSubnetGroupName"] == "caresync-standby-db"
    assert [g["VpcSecurityGroupId"] for g in restored["VpcSecurityGroups"]] == \
        list(placement.security_group_ids)
    assert [g["DBParameterGroupName"] for g in restored["DBParameterGroups"]] == \
        ["caresync-standby-postgres15"]
    # moto 5.2 gap: its restore copies the source's PubliclyAccessible and ignores the
    # request's, so the request is what can be checked here; real RDS applies it.
    assert sent["PubliclyAccessible"] is False
    assert result.source["kind"] == "snapshot"
    assert result.source["id"] == snaps[0]["DBSnapshotIdentifier"]
    assert result.deleted
    ids = [i["DBInstanceIdentifier"] for i in rds.describe_db_instances()["DBInstances"]]
    assert ids == ["caresync-db"]


def test_rds_restore_test_fails_for_unencrypted_snapshot(aws: AwsClients) -> None:
    _rds_source(aws, encrypted=False)
    result = run_rds_restore_test(aws.rds(), "caresync-db", "caresync-db-rt",
                                  expected=Expectations(), placement=_site_network(aws),
                                  poll_seconds=0, wait_seconds=5)
    assert not result.passed
    assert result.problems == ["restored storage is not encrypted"]
    assert result.deleted  # cleaned up even when failing


def test_rds_restore_test_without_any_snapshot_fails(aws: AwsClients) -> None:
    result = run_rds_restore_test(aws.rds(), "no-such-db", "x-rt", expected=Expectations(),
                                  placement=_site_network(aws), poll_seconds=0, wait_seconds=5)
    assert not result.passed and "no available automated snapshot" in result.problems[0]
    assert result.temporary_instance is None


def test_rds_restore_test_prefers_a_newer_aws_backup_recovery_point(aws: AwsClients) -> None:
    """moto has no AWS Backup recovery points/restore jobs: Stubber plays AWS Backup; the RDS
    instance the restore job would create is made in moto from the snapshot, as the job would."""
    kms_key = _rds_source(aws)
    placement = _site_network(aws)
    rds = aws.rds()
    snapshot = rds.describe_db_snapshots(DBInstanceIdentifier="caresync-db",
                                         SnapshotType="automated")["DBSnapshots"][0]
    backup = boto3.client("backup", region_name=REGION)
    arn = f"arn:aws:backup:{REGION}:123456789012:recovery-point:rp-1"
    newer = datetime.now(UTC) + timedelta(hours=1)
    stub = Stubber(backup)
    instance_arn = rds.describe_db_instances(
        DBInstanceIdentifier="caresync-db")["DBInstances"][0]["DBInstanceArn"]
    stub.add_response("list_recovery_points_by_backup_vault", {"RecoveryPoints": [
        {"RecoveryPointArn": arn, "Status": "COMPLETED", "CreationDate": newer}]},
        {"BackupVaultName": "caresync-vault", "ByResourceArn": instance_arn})
    role = "arn:aws:iam::123456789012:role/r"
    stub.add_response("start_restore_job", {"RestoreJobId": "job-1"}, {
        "RecoveryPointArn": arn, "IamRoleArn": role, "ResourceType": "RDS",
        "Metadata": {"DBInstanceIdentifier": "caresync-db-rt", "PubliclyAccessible": "false",
                     "MultiAZ": "false", "DeletionProtection": "false",
                     "DBSubnetGroupName": "caresync-standby-db",
                     "VpcSecurityGroupIds": f'["{placement.security_group_ids[0]}"]',
                     "DBParameterGroupName": "caresync-standby-postgres15"}})
    stub.add_response("describe_restore_job", {"RestoreJobId": "job-1", "Status": "RUNNING"})
    stub.add_response("describe_restore_job", {"RestoreJobId": "job-1", "Status": "COMPLETED"})
    original_describe = backup.describe_restore_job

    def restore_job_creates_instance(**kwargs: str) -> object:
        answer = original_describe(**kwargs)
        if answer["Status"] == "COMPLETED":
            rds.restore_db_instance_from_db_snapshot(  # what the job does with its metadata
                DBInstanceIdentifier="caresync-db-rt",
                DBSnapshotIdentifier=snapshot["DBSnapshotIdentifier"], PubliclyAccessible=False,
                DBSubnetGroupName=placement.subnet_group,
                VpcSecurityGroupIds=list(placement.security_group_ids),
                DBParameterGroupName=placement.parameter_group)
        return answer

    backup.describe_restore_job = restore_job_creates_instance  # type: ignore[method-assign,assignment]
    with stub:
        result = run_rds_restore_test(rds, "caresync-db", "caresync-db-rt",
                                      expected=Expectations(kms_key_id=kms_key), backup=backup,
                                      vault="caresync-vault", placement=placement,
                                      restore_role_arn=role,
                                      poll_seconds=0, wait_seconds=5)
        stub.assert_no_pending_responses()
    assert result.passed, result.problems
    assert result.source == {"kind": "recovery_point", "id": arn, "created": newer.isoformat()}
    assert result.deleted


def test_rds_recovery_point_restore_job_failure_is_reported(aws: AwsClients) -> None:
    _rds_source(aws)
    rds = aws.rds()
    backup = boto3.client("backup", region_name=REGION)
    stub = Stubber(backup)
    arn = f"arn:aws:backup:{REGION}:123456789012:recovery-point:rp-2"
    stub.add_response("list_recovery_points_by_backup_vault", {"RecoveryPoints": [
        {"RecoveryPointArn": arn, "Status": "COMPLETED",
         "CreationDate": datetime.now(UTC) + timedelta(hours=1)}]})
    stub.add_response("start_restore_job", {"RestoreJobId": "job-2"})
    stub.add_response("describe_restore_job", {"RestoreJobId": "job-2", "Status": "FAILED",
                                               "StatusMessage": "KMS key disabled"})
    with stub:
        result = run_rds_restore_test(rds, "caresync-db", "caresync-db-rt",
                                      expected=Expectations(), backup=backup, vault="v",
                                      placement=_site_network(aws),
                                      restore_role_arn="arn:aws:iam::123456789012:role/r",
                                      poll_seconds=0, wait_seconds=5)
    assert not result.passed
    assert "job-2 FAILED: KMS key disabled" in result.problems[0]
    assert not result.deleted  # nothing was created


def test_restore_into_the_default_vpc_or_public_is_a_problem() -> None:
    placement = Placement.for_site("primary", ("sg-0abc",), engine_major=15)
    assert (placement.subnet_group, placement.parameter_group) == (
        "caresync-primary-db", "caresync-primary-postgres15")
    default_vpc = {"DBSubnetGroup": {"DBSubnetGroupName": "default"}, "PubliclyAccessible": True,
                   "VpcSecurityGroups": [{"VpcSecurityGroupId": "sg-default"}]}
    assert validate_placement(default_vpc, placement) == [
        "restored instance is publicly accessible",
        "restored instance is in DB subnet group default, expected caresync-primary-db",
        "restored instance has security groups ['sg-default'], expected ['sg-0abc']"]


def test_restore_test_script_places_the_rds_copy_in_the_site_network() -> None:
    args = restore_test_script.parse_arguments(
        ["--skip-local", "--rds-instance", "caresync-primary-db", "--site", "primary",
         "--db-security-group-id", "sg-0abc"])
    assert args.placement == Placement("caresync-primary-db", ("sg-0abc",),
                                       "caresync-primary-postgres15")
    said = []
    for missing in (["--site", "primary"], ["--db-security-group-id", "sg-0abc"]):
        with pytest.raises(UsageError) as refused:
            restore_test_script.parse_arguments(["--skip-local", "--rds-instance", "x", *missing])
        assert refused.value.exit_code == 2
        said.append(str(refused.value))
    assert any("never the default VPC" in line for line in said)
    with pytest.raises(UsageError, match="security group ids must be sg-"):
        restore_test_script.parse_arguments(["--rds-instance", "x", "--site", "standby",
                                             "--db-security-group-id", "default"])

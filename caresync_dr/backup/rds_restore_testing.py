"""The daily restore test, RDS side: newest automated snapshot or AWS Backup recovery point ->
temporary instance -> check it is available with the expected engine and encryption -> delete.

The temporary instance goes into the site's own network (:class:`Placement`: its DB subnet group,
security group and parameter group), never the default VPC, and is never publicly accessible:
a restored copy of patient data must sit behind the same controls as the original.

Reads (finding the source) are separate from changes (restore, delete). The temporary instance is
deleted in ``finally`` without a final snapshot, and tagged so a sweeper can find leftovers.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError, WaiterError

from caresync_dr.backup.errors import BackupError, BackupNotFoundError
from caresync_dr.names import db_subnet_group_name, parameter_group_name

if TYPE_CHECKING:
    from mypy_boto3_backup import BackupClient
    from mypy_boto3_rds import RDSClient
    from mypy_boto3_rds.type_defs import TagTypeDef

log = logging.getLogger(__name__)
TAG: TagTypeDef = {"Key": "caresync-dr:purpose", "Value": "restore-test"}


@dataclass(frozen=True)
class RecoverySource:
    kind: str  # "snapshot" or "recovery_point"
    identifier: str  # snapshot id or recovery point ARN
    created: datetime


@dataclass(frozen=True)
class Placement:
    """Where the temporary instance goes: the site's network, never the default VPC."""

    subnet_group: str
    security_group_ids: tuple[str, ...]
    parameter_group: str

    def __post_init__(self) -> None:
        if not self.subnet_group or not self.parameter_group:
            raise ValueError("a DB subnet group (the default VPC is not allowed) and a DB "
                             "parameter group are required")
        if not self.security_group_ids or not all(
                g.startswith("sg-") for g in self.security_group_ids):
            raise ValueError(f"security group ids must be sg-..., got {self.security_group_ids}")

    @classmethod
    def for_site(cls, site: str, security_group_ids: tuple[str, ...], *,
                 engine_major: str | int, subnet_group: str | None = None,
                 parameter_group: str | None = None) -> Placement:
        """The stack's names (:mod:`caresync_dr.names`): the site's DB subnet group and its
        parameter group of the PostgreSQL major version ``engine_major``."""
        return cls(subnet_group=subnet_group or db_subnet_group_name(site),
                   security_group_ids=security_group_ids,
                   parameter_group=parameter_group or parameter_group_name(site, engine_major))


@dataclass(frozen=True)
class Expectations:
    engine: str = "postgres"
    engine_major: str | None = None   # the stack's dbEngineVersion major; None: not checked
    kms_key_id: str | None = None  # when set, the restored storage must use this key


@dataclass
class RdsTestResult:
    passed: bool
    source: dict[str, str] = field(default_factory=dict)
    temporary_instance: str | None = None
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0
    deleted: bool = False

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def latest_source(rds: RDSClient, instance_id: str, backup: BackupClient | None = None,
                  vault: str | None = None) -> RecoverySource:
    """The newest available automated snapshot or completed recovery point of the instance."""
    candidates: list[RecoverySource] = []
    pages = rds.get_paginator("describe_db_snapshots").paginate(
        DBInstanceIdentifier=instance_id, SnapshotType="automated")
    for page in pages:
        for snap in page["DBSnapshots"]:
            if snap.get("Status") == "available" and "SnapshotCreateTime" in snap:
                candidates.append(RecoverySource("snapshot", snap["DBSnapshotIdentifier"],
                                                 snap["SnapshotCreateTime"]))
    if backup is not None and vault:
        arn = rds.describe_db_instances(DBInstanceIdentifier=instance_id)["DBInstances"][0][
            "DBInstanceArn"]
        answer = backup.list_recovery_points_by_backup_vault(BackupVaultName=vault,
                                                             ByResourceArn=arn)
        for point in answer.get("RecoveryPoints", []):
            if point.get("Status") == "COMPLETED" and "CreationDate" in point:
                candidates.append(RecoverySource("recovery_point", point["RecoveryPointArn"],
                                                 point["CreationDate"]))
    if not candidates:
        raise BackupNotFoundError(f"no available automated snapshot or recovery point for "
                                  f"{instance_id}")
    return max(candidates, key=lambda c: c.created)


def restore_metadata(temp_id: str, placement: Placement) -> dict[str, str]:
    """StartRestoreJob metadata for RDS: the RestoreDBInstanceFromDBSnapshot parameters as
    strings (lists as JSON), as GetRecoveryPointRestoreMetadata returns them."""
    metadata = {"DBInstanceIdentifier": temp_id, "PubliclyAccessible": "false",
                "MultiAZ": "false", "DeletionProtection": "false",
                "DBSubnetGroupName": placement.subnet_group,
                "VpcSecurityGroupIds": json.dumps(list(placement.security_group_ids)),
                "DBParameterGroupName": placement.parameter_group}
    return metadata


def _restore_from_recovery_point(backup: BackupClient, source: RecoverySource, temp_id: str,
                                 *, placement: Placement, role_arn: str, poll_seconds: float,
                                 timeout: float) -> None:
    job = backup.start_restore_job(
        RecoveryPointArn=source.identifier, IamRoleArn=role_arn, ResourceType="RDS",
        Metadata=restore_metadata(temp_id, placement))
    deadline = time.monotonic() + timeout
    while True:
        status = backup.describe_restore_job(RestoreJobId=job["RestoreJobId"])
        if status["Status"] == "COMPLETED":
            return
        if status["Status"] in ("ABORTED", "FAILED"):
            raise BackupError(f"AWS Backup restore job {job['RestoreJobId']} "
                              f"{status['Status']}: {status.get('StatusMessage', '')}")
        if time.monotonic() > deadline:
            raise BackupError(f"AWS Backup restore job {job['RestoreJobId']} still "
                              f"{status['Status']} after {timeout:.0f} s")
        time.sleep(poll_seconds)


def validate_placement(instance: dict[str, Any], placement: Placement) -> list[str]:
    """The restored instance sits in the site's network, not the default VPC, not public."""
    problems = []
    if instance.get("PubliclyAccessible"):
        problems.append("restored instance is publicly accessible")
    group = (instance.get("DBSubnetGroup") or {}).get("DBSubnetGroupName")
    if group != placement.subnet_group:
        problems.append(f"restored instance is in DB subnet group {group}, expected "
                        f"{placement.subnet_group}")
    groups = sorted(g.get("VpcSecurityGroupId", "") for g in
                    instance.get("VpcSecurityGroups", []))
    if groups != sorted(placement.security_group_ids):
        problems.append(f"restored instance has security groups {groups}, expected "
                        f"{sorted(placement.security_group_ids)}")
    return problems


def validate(instance: dict[str, Any], expected: Expectations) -> list[str]:
    problems = []
    if instance.get("DBInstanceStatus") != "available":
        problems.append(f"instance is {instance.get('DBInstanceStatus')}, not available")
    if instance.get("Engine") != expected.engine:
        problems.append(f"engine is {instance.get('Engine')}, expected {expected.engine}")
    version = str(instance.get("EngineVersion", ""))
    if expected.engine_major and version.split(".", maxsplit=1)[0] != expected.engine_major:
        problems.append(f"engine version is {version}, expected {expected.engine_major}.x")
    if not instance.get("StorageEncrypted"):
        problems.append("restored storage is not encrypted")
    elif expected.kms_key_id and expected.kms_key_id not in str(instance.get("KmsKeyId", "")):
        problems.append(f"restored storage uses KMS key {instance.get('KmsKeyId')}, expected "
                        f"{expected.kms_key_id}")
    return problems


def run_rds_restore_test(rds: RDSClient, instance_id: str, temp_id: str, *,
                         expected: Expectations, placement: Placement,
                         instance_class: str = "db.t4g.medium",
                         backup: BackupClient | None = None, vault: str | None = None,
                         restore_role_arn: str | None = None, wait_seconds: float = 3600,
                         poll_seconds: float = 30) -> RdsTestResult:
    clock = time.monotonic()
    result = RdsTestResult(passed=False)
    try:
        source = latest_source(rds, instance_id, backup, vault)
        result.source = {"kind": source.kind, "id": source.identifier,
                         "created": source.created.isoformat()}
        log.info("RDS restore test: restoring %s %s into %s", source.kind, source.identifier,
                 temp_id)
        result.temporary_instance = temp_id
        if source.kind == "snapshot":
            rds.restore_db_instance_from_db_snapshot(
                DBInstanceIdentifier=temp_id, DBSnapshotIdentifier=source.identifier,
                DBInstanceClass=instance_class, PubliclyAccessible=False, MultiAZ=False,
                DeletionProtection=False, DBSubnetGroupName=placement.subnet_group,
                VpcSecurityGroupIds=list(placement.security_group_ids),
                DBParameterGroupName=placement.parameter_group, Tags=[TAG])
        else:
            if backup is None or not restore_role_arn:
                raise BackupError("restoring a recovery point needs --restore-role-arn")
            _restore_from_recovery_point(backup, source, temp_id, placement=placement,
                                         role_arn=restore_role_arn, poll_seconds=poll_seconds,
                                         timeout=wait_seconds)
        attempts = max(1, int(wait_seconds / max(poll_seconds, 1)))
        rds.get_waiter("db_instance_available").wait(
            DBInstanceIdentifier=temp_id,
            WaiterConfig={"Delay": int(poll_seconds), "MaxAttempts": attempts})
        instance = rds.describe_db_instances(DBInstanceIdentifier=temp_id)["DBInstances"][0]
        result.problems += validate(dict(instance), expected)
        result.problems += validate_placement(dict(instance), placement)
    except (BackupError, ClientError, WaiterError) as exc:
        result.problems.append(f"{type(exc).__name__}: {exc}")
    finally:
        if result.temporary_instance:
            result.deleted = _delete(rds, result.temporary_instance, result.problems)
    result.seconds = round(time.monotonic() - clock, 3)
    result.passed = not result.problems
    return result


def _delete(rds: RDSClient, temp_id: str, problems: list[str]) -> bool:
    try:
        rds.delete_db_instance(DBInstanceIdentifier=temp_id, SkipFinalSnapshot=True,
                               DeleteAutomatedBackups=True)
        log.info("RDS restore test: deleting %s", temp_id)
        return True
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "DBInstanceNotFound":
            return False  # the restore never created it
        problems.append(f"could not delete temporary instance {temp_id}: {exc}")
        return False

"""Reads only: the writer, its settings and the restorable windows, as RDS, EC2 and SSM report.

Nothing here changes state; ``--dry-run`` and the preflight may call all of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from caresync_dr.pitr.window import RestorableWindow

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_rds import RDSClient
    from mypy_boto3_ssm import SSMClient

__all__ = ["AutomatedBackup", "InstanceDetail", "automated_backups", "describe_instance",
           "error_code", "instance_at", "read_endpoint", "security_group_named",
           "vpc_is_default", "windows_for"]


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


@dataclass(frozen=True)
class InstanceDetail:
    """The settings of one DB instance a restore copies or checks."""

    identifier: str
    arn: str
    status: str
    address: str | None
    port: int | None
    engine: str
    engine_version: str
    instance_class: str
    multi_az: bool
    subnet_group: str | None
    vpc_id: str | None
    security_groups: tuple[str, ...]
    parameter_group: str | None
    kms_key_id: str | None
    storage_encrypted: bool
    publicly_accessible: bool
    backup_retention_days: int
    latest_restorable: datetime | None
    created: datetime | None
    replica_source: str | None
    deletion_protection: bool
    iam_auth: bool
    log_exports: tuple[str, ...]
    storage_type: str | None
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def endpoint(self) -> str:
        return f"{self.address}:{self.port or 5432}"


def _detail(db: Any) -> InstanceDetail:
    endpoint = db.get("Endpoint") or {}
    subnets = db.get("DBSubnetGroup") or {}
    return InstanceDetail(
        identifier=str(db["DBInstanceIdentifier"]), arn=str(db.get("DBInstanceArn", "")),
        status=str(db.get("DBInstanceStatus", "")), address=endpoint.get("Address"),
        port=endpoint.get("Port"), engine=str(db.get("Engine", "")),
        engine_version=str(db.get("EngineVersion", "")),
        instance_class=str(db.get("DBInstanceClass", "")), multi_az=bool(db.get("MultiAZ")),
        subnet_group=subnets.get("DBSubnetGroupName"), vpc_id=subnets.get("VpcId"),
        security_groups=tuple(g["VpcSecurityGroupId"] for g in db.get("VpcSecurityGroups", [])
                              if g.get("VpcSecurityGroupId")),
        parameter_group=next((g.get("DBParameterGroupName")
                              for g in db.get("DBParameterGroups", [])), None),
        kms_key_id=db.get("KmsKeyId"), storage_encrypted=bool(db.get("StorageEncrypted")),
        publicly_accessible=bool(db.get("PubliclyAccessible")),
        backup_retention_days=int(db.get("BackupRetentionPeriod") or 0),
        latest_restorable=db.get("LatestRestorableTime"),
        created=db.get("InstanceCreateTime"),
        replica_source=db.get("ReadReplicaSourceDBInstanceIdentifier") or None,
        deletion_protection=bool(db.get("DeletionProtection")),
        iam_auth=bool(db.get("IAMDatabaseAuthenticationEnabled")),
        log_exports=tuple(db.get("EnabledCloudwatchLogsExports") or ()),
        storage_type=db.get("StorageType"),
        tags={str(t["Key"]): str(t["Value"]) for t in db.get("TagList", [])})


def describe_instance(rds: RDSClient, identifier: str) -> InstanceDetail | None:
    """The instance, or None when it does not exist (every other error propagates)."""
    try:
        found = rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"]
    except ClientError as exc:
        if error_code(exc) in ("DBInstanceNotFound", "DBInstanceNotFoundFault"):
            return None
        raise
    return _detail(found[0]) if found else None


def instance_at(rds: RDSClient, address: str) -> InstanceDetail | None:
    """The instance whose endpoint address is ``address`` (what the endpoint parameter names),
    or None."""
    wanted = address.lower()
    for page in rds.get_paginator("describe_db_instances").paginate():
        for db in page.get("DBInstances", []):
            if str((db.get("Endpoint") or {}).get("Address", "")).lower() == wanted:
                return _detail(db)
    return None


def read_endpoint(ssm: SSMClient, name: str) -> tuple[str, int] | None:
    """The endpoint parameter (``host:port``, a SecureString) as (host, port); None if absent."""
    try:
        value = ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
    except ClientError as exc:
        if error_code(exc) == "ParameterNotFound":
            return None
        raise
    host, _, port = str(value).rpartition(":")
    return (host, int(port)) if host and port.isdigit() else (str(value), 5432)


@dataclass(frozen=True)
class AutomatedBackup:
    """One entry of ``DescribeDBInstanceAutomatedBackups`` in this region."""

    arn: str | None          # DBInstanceAutomatedBackupsArn
    instance_arn: str        # DBInstanceArn: the source instance
    identifier: str
    source_region: str
    status: str              # active, retained, replicating, pending, creating
    earliest: datetime | None
    latest: datetime | None
    kms_key_id: str | None


def automated_backups(rds: RDSClient) -> list[AutomatedBackup]:
    found: list[AutomatedBackup] = []
    for page in rds.get_paginator("describe_db_instance_automated_backups").paginate():
        for item in page.get("DBInstanceAutomatedBackups", []):
            window: Any = item.get("RestoreWindow") or {}
            found.append(AutomatedBackup(
                arn=item.get("DBInstanceAutomatedBackupsArn"),
                instance_arn=str(item.get("DBInstanceArn", "")),
                identifier=str(item.get("DBInstanceIdentifier", "")),
                source_region=str(item.get("Region", "")), status=str(item.get("Status", "")),
                earliest=window.get("EarliestTime"), latest=window.get("LatestTime"),
                kms_key_id=item.get("KmsKeyId")))
    return found


def windows_for(writer: InstanceDetail, backups: list[AutomatedBackup],
                region: str) -> list[RestorableWindow]:
    """Every window this region can restore the site from: the writer's own automated backups
    first (up to ``LatestRestorableTime``), then backups of earlier writers kept here -
    replicated from another region, or retained after their instance went away."""
    windows: list[RestorableWindow] = []
    own = next((b for b in backups if b.instance_arn == writer.arn), None)
    if writer.backup_retention_days > 0 and writer.latest_restorable is not None:
        earliest = (own.earliest if own is not None and own.earliest is not None
                    else writer.created)
        if earliest is not None:
            windows.append(RestorableWindow(
                label=f"{writer.identifier} (its automated backups)", earliest=earliest,
                latest=writer.latest_restorable, source_identifier=writer.identifier,
                kms_key_id=writer.kms_key_id))
    for backup in backups:
        if backup is own or backup.earliest is None or backup.latest is None:
            continue
        if backup.status not in ("active", "retained", "replicating"):
            continue
        where = ("replicated from " + backup.source_region
                 if backup.source_region and backup.source_region != region else "retained")
        windows.append(RestorableWindow(
            label=f"{backup.identifier} ({where} automated backups)", earliest=backup.earliest,
            latest=backup.latest, automated_backups_arn=backup.arn,
            source_identifier=None if backup.arn else backup.identifier,
            kms_key_id=backup.kms_key_id))
    return windows


def vpc_is_default(ec2: EC2Client, vpc_id: str) -> bool:
    vpcs: list[Any] = list(ec2.describe_vpcs(VpcIds=[vpc_id]).get("Vpcs", []))
    return bool(vpcs and vpcs[0].get("IsDefault"))


def security_group_named(ec2: EC2Client, vpc_id: str, name: str) -> str | None:
    groups: list[Any] = list(ec2.describe_security_groups(Filters=[
        {"Name": "vpc-id", "Values": [vpc_id]},
        {"Name": "group-name", "Values": [name]}]).get("SecurityGroups", []))
    return str(groups[0]["GroupId"]) if groups else None

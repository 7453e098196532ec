"""The restore as RDS is asked for it: ``RestoreDBInstanceToPointInTime``'s arguments.

RDS restores "with the default security group, the default subnet group, and the default DB
parameter group", single-AZ, unless told otherwise (API reference,
RestoreDBInstanceToPointInTime): so every one of them is named here, copied from the damaged
writer, with ``PubliclyAccessible`` off. There is no ``KmsKeyId`` argument: the restored
instance is encrypted with the key of the backups it comes from (the writer's key, or for
replicated backups the key their replication was given), which the preflight checks is the
site key. Log exports are left off: RDS would create the log groups itself, unencrypted and
kept forever; the reconciling ``pulumi up`` creates them with the site key first and then
turns the exports on (``components/database.py``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from caresync_dr.pitr.probes import InstanceDetail
from caresync_dr.pitr.window import RestorableWindow, iso

__all__ = ["restore_request", "restored_tags"]


def restored_tags(site: str, generation: int, damaged: str, when: datetime,
                  run_id: str) -> dict[str, str]:
    """The tags the program gives a writer of this generation, plus where it came from."""
    return {"caresync:site": site, "caresync:generation": str(generation),
            "caresync:role": "writer", "caresync:restored-from": damaged,
            "caresync:restore-time": iso(when), "caresync:restore-run": run_id}


def restore_request(window: RestorableWindow, target: str, when: datetime,
                    writer: InstanceDetail, tags: dict[str, str]) -> dict[str, Any]:
    request: dict[str, Any] = {
        "TargetDBInstanceIdentifier": target,
        "RestoreTime": when,
        "DBInstanceClass": writer.instance_class,
        "MultiAZ": writer.multi_az,
        "PubliclyAccessible": False,
        "DeletionProtection": True,
        "CopyTagsToSnapshot": True,
        "AutoMinorVersionUpgrade": True,
        "EnableIAMDatabaseAuthentication": writer.iam_auth,
        "BackupRetentionPeriod": writer.backup_retention_days,
        "VpcSecurityGroupIds": list(writer.security_groups),
        "Tags": [{"Key": k, "Value": v} for k, v in sorted(tags.items())],
    }
    if writer.subnet_group:
        request["DBSubnetGroupName"] = writer.subnet_group
    if writer.parameter_group:
        request["DBParameterGroupName"] = writer.parameter_group
    if window.automated_backups_arn:
        request["SourceDBInstanceAutomatedBackupsArn"] = window.automated_backups_arn
    else:
        request["SourceDBInstanceIdentifier"] = window.source_identifier
    return request

"""Changes only: each function makes one kind of change and returns what AWS answered. Kept
apart from :mod:`probes` so a dry run can be shown (and tested) to call none of them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_rds import RDSClient

__all__ = ["fence_instance", "restore_to_point_in_time"]


def restore_to_point_in_time(rds: RDSClient, request: dict[str, Any]) -> str:
    """``RestoreDBInstanceToPointInTime`` (:func:`caresync_dr.pitr.request.restore_request`);
    returns the new instance's status (``creating``)."""
    answer = rds.restore_db_instance_to_point_in_time(**request)
    return str(answer["DBInstance"].get("DBInstanceStatus", "creating"))


def fence_instance(rds: RDSClient, identifier: str, security_group_id: str) -> None:
    """Fence a damaged writer: put it in a security group nothing may reach, now.

    Its own group stays as it is, because the restored writer uses that group. Security group
    changes are applied without a reboot, and ``ApplyImmediately`` keeps them out of the
    maintenance window. The instance keeps its data for forensics."""
    rds.modify_db_instance(DBInstanceIdentifier=identifier,
                           VpcSecurityGroupIds=[security_group_id], ApplyImmediately=True)

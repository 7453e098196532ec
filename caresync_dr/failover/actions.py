"""Changes only: each function makes one kind of change and returns what AWS answered.

Kept apart from :mod:`probes` so that a dry run can be shown (and tested) to call none of them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from caresync_dr.operations.ssm import put_parameter
from caresync_dr.settings import Capacity

if TYPE_CHECKING:
    from mypy_boto3_autoscaling import AutoScalingClient
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_rds import RDSClient
    from mypy_boto3_s3 import S3Client

__all__ = [
    "promote_replica", "put_object", "put_parameter",
    "revoke_all_ingress", "set_capacity", "start_instance_refresh",
]


def promote_replica(rds: RDSClient, identifier: str, backup_retention_days: int) -> str:
    """Start promotion; RDS then reboots the instance and detaches it from its source."""
    answer = rds.promote_read_replica(DBInstanceIdentifier=identifier,
                                      BackupRetentionPeriod=backup_retention_days)
    return str(answer["DBInstance"].get("DBInstanceStatus", "unknown"))


def set_capacity(autoscaling: AutoScalingClient, name: str, capacity: Capacity) -> None:
    autoscaling.update_auto_scaling_group(AutoScalingGroupName=name, MinSize=capacity.min,
                                          DesiredCapacity=capacity.desired,
                                          MaxSize=capacity.max)


def start_instance_refresh(autoscaling: AutoScalingClient, name: str) -> str:
    """Replace every instance, so each boots reading the new database endpoint."""
    answer = autoscaling.start_instance_refresh(
        AutoScalingGroupName=name, Strategy="Rolling",
        Preferences={"MinHealthyPercentage": 50, "InstanceWarmup": 60})
    return str(answer["InstanceRefreshId"])


def put_object(s3: S3Client, bucket: str, key: str, body: str, content_type: str) -> None:
    s3.put_object(Bucket=bucket, Key=key, Body=body.encode("utf-8"), ContentType=content_type)


def revoke_all_ingress(ec2: EC2Client, group_id: str) -> int:
    """Revoke every ingress rule of a security group; returns how many were revoked."""
    groups = ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"]
    permissions: list[Any] = list(groups[0].get("IpPermissions", [])) if groups else []
    if permissions:
        ec2.revoke_security_group_ingress(GroupId=group_id, IpPermissions=permissions)
    return len(permissions)

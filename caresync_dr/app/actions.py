"""Changes only: each function makes one kind of change to the app tier and returns what AWS
answered. Kept apart from :mod:`probes` so a dry run can be shown (and tested) to call none.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_autoscaling import AutoScalingClient
    from mypy_boto3_ec2 import EC2Client

__all__ = ["create_template_version", "rollback_refresh", "start_refresh"]


def start_refresh(autoscaling: AutoScalingClient, request: dict[str, Any]) -> str:
    """``StartInstanceRefresh`` with a request from :func:`caresync_dr.app.rollout.
    refresh_request`; returns the refresh id."""
    return str(autoscaling.start_instance_refresh(**request)["InstanceRefreshId"])


def rollback_refresh(autoscaling: AutoScalingClient, group: str) -> str:
    """``RollbackInstanceRefresh``: undo the refresh in progress (the group returns to the
    configuration it had before it started)."""
    return str(autoscaling.rollback_instance_refresh(AutoScalingGroupName=group)
               ["InstanceRefreshId"])


def create_template_version(ec2: EC2Client, template_id: str, source_version: int,
                            image_id: str, description: str) -> int:
    """A new launch template version: ``source_version`` with another AMI. Returns its number.

    Everything else (user data, key, profile, volumes) is copied from the source version by
    EC2 (``SourceVersion``), so only the image changes."""
    answer = ec2.create_launch_template_version(
        LaunchTemplateId=template_id, SourceVersion=str(source_version),
        VersionDescription=description[:255], LaunchTemplateData={"ImageId": image_id})
    return int(answer["LaunchTemplateVersion"]["VersionNumber"])

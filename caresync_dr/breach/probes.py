"""Reads only: the state of what a breach response touches (instances, keys, roles, trails).

Every function takes the clients it needs and returns plain data; a 404-like answer ("no such
instance/key/role") is ``None``, every other AWS error propagates.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from mypy_boto3_autoscaling import AutoScalingClient
    from mypy_boto3_cloudtrail import CloudTrailClient
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_elbv2 import ElasticLoadBalancingv2Client
    from mypy_boto3_iam import IAMClient

__all__ = ["INCIDENT_TAG", "REVOKE_POLICY", "USER_QUARANTINE_POLICY", "InstanceState",
           "access_key_owner", "access_key_status", "error_code", "evidence_snapshots",
           "instance_state", "quarantine_group", "registered_target_groups", "role_arn",
           "role_revoked_before", "trail_data_event_buckets", "trail_logging", "user_exists",
           "user_quarantined"]

INCIDENT_TAG = "caresync:incident"
# The inline policy name the IAM console uses for "Revoke active sessions" (IAM user guide,
# "Revoking IAM role temporary security credentials").
REVOKE_POLICY = "AWSRevokeOlderSessions"
USER_QUARANTINE_POLICY = "CareSyncBreachQuarantine"


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


@dataclass(frozen=True)
class InstanceState:
    """One EC2 instance as the containment steps see it."""

    instance_id: str
    region: str
    state: str
    vpc_id: str
    private_ip: str | None
    enis: dict[str, tuple[str, ...]]          # network interface -> its security groups
    volumes: dict[str, str]                   # volume id -> device name
    termination_protected: bool
    auto_scaling_group: str | None            # None: not (or no longer) in a group
    scale_in_protected: bool
    target_groups: tuple[str, ...]            # target groups it is registered in now
    tags: dict[str, str] = field(default_factory=dict)

    def isolated_by(self, group_id: str) -> bool:
        return bool(self.enis) and all(groups == (group_id,) for groups in self.enis.values())


def _describe_instance(ec2: EC2Client, instance_id: str) -> dict[str, Any] | None:
    try:
        answer = ec2.describe_instances(InstanceIds=[instance_id])
    except ClientError as exc:
        if error_code(exc) in ("InvalidInstanceID.NotFound", "InvalidInstanceID.Malformed"):
            return None
        raise
    for reservation in answer.get("Reservations", []):
        for instance in reservation.get("Instances", []):
            return dict(instance)
    return None


def registered_target_groups(elbv2: ElasticLoadBalancingv2Client, instance_id: str,
                             candidates: list[str] | None = None) -> tuple[str, ...]:
    """Target groups (of ``candidates``, else every one in the region) that list the
    instance as a target in any state but ``draining``-finished (``unused`` means gone)."""
    arns = candidates
    if arns is None:
        arns = []
        for page in elbv2.get_paginator("describe_target_groups").paginate():
            arns += [g["TargetGroupArn"] for g in page.get("TargetGroups", [])]
    found = []
    for arn in arns:
        try:
            health = elbv2.describe_target_health(TargetGroupArn=arn)
        except ClientError as exc:
            if error_code(exc) == "TargetGroupNotFound":
                continue
            raise
        for description in health.get("TargetHealthDescriptions", []):
            state = description.get("TargetHealth", {}).get("State")
            if description["Target"]["Id"] == instance_id and state not in ("unused",):
                found.append(arn)
                break
    return tuple(found)


def instance_state(ec2: EC2Client, autoscaling: AutoScalingClient,
                   elbv2: ElasticLoadBalancingv2Client, instance_id: str
                   ) -> InstanceState | None:
    """The instance in this client's region, or None when the region does not know it."""
    described = _describe_instance(ec2, instance_id)
    if described is None:
        return None
    enis = {eni["NetworkInterfaceId"]: tuple(sorted(g["GroupId"] for g in eni.get("Groups", [])))
            for eni in described.get("NetworkInterfaces", [])}
    volumes = {m["Ebs"]["VolumeId"]: m["DeviceName"]
               for m in described.get("BlockDeviceMappings", []) if "Ebs" in m}
    protected = ec2.describe_instance_attribute(
        InstanceId=instance_id, Attribute="disableApiTermination")
    group, scale_in = None, False
    member = autoscaling.describe_auto_scaling_instances(InstanceIds=[instance_id])
    for details in member.get("AutoScalingInstances", []):
        group = details["AutoScalingGroupName"]
        scale_in = bool(details.get("ProtectedFromScaleIn"))
    candidates: list[str] | None = None
    if group is not None:
        groups = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[group])
        candidates = [arn for g in groups.get("AutoScalingGroups", [])
                      for arn in g.get("TargetGroupARNs", [])]
    return InstanceState(
        instance_id=instance_id, region=ec2.meta.region_name,
        state=str(described.get("State", {}).get("Name", "unknown")),
        vpc_id=str(described.get("VpcId", "")), private_ip=described.get("PrivateIpAddress"),
        enis=enis, volumes=volumes,
        termination_protected=bool(protected.get("DisableApiTermination", {}).get("Value")),
        auto_scaling_group=group, scale_in_protected=scale_in,
        target_groups=registered_target_groups(elbv2, instance_id, candidates),
        tags={t["Key"]: t["Value"] for t in described.get("Tags", [])})


def evidence_snapshots(ec2: EC2Client, incident_id: str, instance_id: str
                       ) -> dict[str, dict[str, Any]]:
    """This incident's evidence snapshots of the instance's volumes: volume id -> snapshot."""
    answer = ec2.describe_snapshots(OwnerIds=["self"], Filters=[
        {"Name": f"tag:{INCIDENT_TAG}", "Values": [incident_id]},
        {"Name": "tag:caresync:instance", "Values": [instance_id]}])
    return {s["VolumeId"]: dict(s) for s in answer.get("Snapshots", [])}


def quarantine_group(ec2: EC2Client, vpc_id: str, name: str) -> str | None:
    answer = ec2.describe_security_groups(Filters=[
        {"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "group-name", "Values": [name]}])
    groups = answer.get("SecurityGroups", [])
    return str(groups[0]["GroupId"]) if groups else None


def access_key_owner(iam: IAMClient, access_key_id: str) -> str | None:
    """The IAM user an access key belongs to (GetAccessKeyLastUsed names it), or None."""
    try:
        answer = iam.get_access_key_last_used(AccessKeyId=access_key_id)
    except ClientError as exc:
        if error_code(exc) == "NoSuchEntity":
            return None
        raise
    user = answer.get("UserName")
    return str(user) if user else None


def access_key_status(iam: IAMClient, user: str, access_key_id: str) -> str | None:
    for page in iam.get_paginator("list_access_keys").paginate(UserName=user):
        for key in page.get("AccessKeyMetadata", []):
            if key["AccessKeyId"] == access_key_id:
                return str(key["Status"])
    return None


def user_exists(iam: IAMClient, user: str) -> bool:
    try:
        iam.get_user(UserName=user)
    except ClientError as exc:
        if error_code(exc) == "NoSuchEntity":
            return False
        raise
    return True


def role_arn(iam: IAMClient, role: str) -> str | None:
    try:
        return str(iam.get_role(RoleName=role)["Role"]["Arn"])
    except ClientError as exc:
        if error_code(exc) == "NoSuchEntity":
            return None
        raise


def _inline_policy(document: Any) -> dict[str, Any]:
    if isinstance(document, str):
        return dict(json.loads(unquote(document)))
    return dict(document)


def role_revoked_before(iam: IAMClient, role: str) -> datetime | None:
    """The time before which the role's sessions are denied (the revocation policy's
    ``aws:TokenIssueTime`` bound), or None when no revocation policy is attached."""
    try:
        answer = iam.get_role_policy(RoleName=role, PolicyName=REVOKE_POLICY)
    except ClientError as exc:
        if error_code(exc) == "NoSuchEntity":
            return None
        raise
    for statement in _inline_policy(answer["PolicyDocument"]).get("Statement", []):
        bound = statement.get("Condition", {}).get("DateLessThan", {}).get("aws:TokenIssueTime")
        if statement.get("Effect") == "Deny" and bound:
            return datetime.fromisoformat(str(bound).replace("Z", "+00:00"))
    return None


def user_quarantined(iam: IAMClient, user: str) -> bool:
    try:
        answer = iam.get_user_policy(UserName=user, PolicyName=USER_QUARANTINE_POLICY)
    except ClientError as exc:
        if error_code(exc) == "NoSuchEntity":
            return False
        raise
    return any(s.get("Effect") == "Deny" and s.get("Action") in ("*", ["*"])
               for s in _inline_policy(answer["PolicyDocument"]).get("Statement", []))


def trail_logging(cloudtrail: CloudTrailClient, trail: str) -> bool | None:
    """Whether the trail is logging; None when the region has no such trail."""
    try:
        return bool(cloudtrail.get_trail_status(Name=trail).get("IsLogging"))
    except ClientError as exc:
        if error_code(exc) == "TrailNotFoundException":
            return None
        raise


def trail_data_event_buckets(cloudtrail: CloudTrailClient, trail: str) -> set[str]:
    """Buckets whose object-level (data) events the trail records (``arn:aws:s3:::b/``)."""
    answer = cloudtrail.get_event_selectors(TrailName=trail)
    buckets: set[str] = set()
    for selector in answer.get("EventSelectors", []) or []:
        for resource in selector.get("DataResources", []) or []:
            if resource.get("Type") != "AWS::S3::Object":
                continue
            for value in resource.get("Values", []) or []:
                if value.startswith("arn:aws:s3:::"):
                    buckets.add(value.removeprefix("arn:aws:s3:::").split("/", 1)[0])
    return buckets

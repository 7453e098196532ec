"""Changes: each function makes one change a breach response needs, and nothing else.

The steps (:mod:`caresync_dr.breach.steps`) read the state first (:mod:`.probes`) and call these
only for what is not done yet; every function is also safe to repeat.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from caresync_dr.breach.probes import (
    INCIDENT_TAG,
    REVOKE_POLICY,
    USER_QUARANTINE_POLICY,
    error_code,
)
from caresync_dr.names import quarantine_group_name

if TYPE_CHECKING:
    from mypy_boto3_autoscaling import AutoScalingClient
    from mypy_boto3_cloudtrail import CloudTrailClient
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_elbv2 import ElasticLoadBalancingv2Client
    from mypy_boto3_iam import IAMClient
    from mypy_boto3_sns import SNSClient

__all__ = ["deactivate_access_key", "deregister", "detach_from_group",
           "ensure_data_events", "ensure_quarantine_group", "isolate", "protect_from_scale_in",
           "protect_from_termination", "publish", "quarantine_group_name",
           "quarantine_user", "revoke_role_sessions", "snapshot_volume", "start_logging",
           "tag_instance", "token_issue_time"]


def snapshot_volume(ec2: EC2Client, volume_id: str, instance_id: str, device: str,
                    incident_id: str) -> str:
    """An evidence snapshot, tagged with the incident. EBS captures the volume as of the
    call; the copy completes in the background and may be used as soon as it is requested."""
    tags = [{"Key": INCIDENT_TAG, "Value": incident_id},
            {"Key": "caresync:instance", "Value": instance_id},
            {"Key": "caresync:device", "Value": device},
            {"Key": "caresync:evidence", "Value": "true"}]
    spec: Any = {"ResourceType": "snapshot", "Tags": tags}
    answer = ec2.create_snapshot(
        VolumeId=volume_id, Description=f"evidence {incident_id}: {instance_id} {device}",
        TagSpecifications=[spec])
    return str(answer["SnapshotId"])


def protect_from_termination(ec2: EC2Client, instance_id: str) -> None:
    ec2.modify_instance_attribute(InstanceId=instance_id, DisableApiTermination={"Value": True})


def protect_from_scale_in(autoscaling: AutoScalingClient, group: str, instance_id: str) -> None:
    autoscaling.set_instance_protection(AutoScalingGroupName=group, InstanceIds=[instance_id],
                                        ProtectedFromScaleIn=True)


def detach_from_group(autoscaling: AutoScalingClient, group: str, instance_id: str) -> None:
    """Out of the group without lowering its desired capacity: the group launches a
    replacement, and never terminates the detached instance (EC2 Auto Scaling user guide,
    "Detach or attach instances"; detaching also deregisters it from the group's target
    groups)."""
    autoscaling.detach_instances(AutoScalingGroupName=group, InstanceIds=[instance_id],
                                 ShouldDecrementDesiredCapacity=False)


def deregister(elbv2: ElasticLoadBalancingv2Client, target_group: str, instance_id: str) -> None:
    elbv2.deregister_targets(TargetGroupArn=target_group, Targets=[{"Id": instance_id}])


def ensure_quarantine_group(ec2: EC2Client, vpc_id: str, incident_id: str) -> str:
    """A security group with no rule at all, in the instance's VPC: nothing in, nothing out.
    A new group allows all egress; that rule is revoked."""
    name = quarantine_group_name(incident_id)
    try:
        created = ec2.create_security_group(
            GroupName=name, VpcId=vpc_id,
            Description=f"CareSync breach {incident_id}: quarantine, no traffic in or out",
            TagSpecifications=[{"ResourceType": "security-group",
                                "Tags": [{"Key": INCIDENT_TAG, "Value": incident_id}]}])
        group_id = str(created["GroupId"])
    except ClientError as exc:
        if error_code(exc) != "InvalidGroup.Duplicate":
            raise
        found = ec2.describe_security_groups(Filters=[
            {"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "group-name", "Values": [name]}])
        group_id = str(found["SecurityGroups"][0]["GroupId"])
    described = ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]
    if described.get("IpPermissionsEgress"):
        ec2.revoke_security_group_egress(GroupId=group_id,
                                         IpPermissions=described["IpPermissionsEgress"])
    if described.get("IpPermissions"):
        ec2.revoke_security_group_ingress(GroupId=group_id,
                                          IpPermissions=described["IpPermissions"])
    return group_id


def isolate(ec2: EC2Client, network_interfaces: list[str], group_id: str) -> None:
    """Replace the security groups of each of the instance's network interfaces with the
    quarantine group. Connections the old groups tracked may live on until they go idle (VPC
    user guide, "Security group connection tracking"); the runbook says how to cut them."""
    for eni in network_interfaces:
        ec2.modify_network_interface_attribute(NetworkInterfaceId=eni, Groups=[group_id])


def tag_instance(ec2: EC2Client, instance_id: str, incident_id: str) -> None:
    ec2.create_tags(Resources=[instance_id], Tags=[
        {"Key": INCIDENT_TAG, "Value": incident_id},
        {"Key": "caresync:quarantined", "Value": "true"}])


def deactivate_access_key(iam: IAMClient, user: str, access_key_id: str) -> None:
    iam.update_access_key(UserName=user, AccessKeyId=access_key_id, Status="Inactive")


def token_issue_time(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def revoke_role_sessions(iam: IAMClient, role: str, issued_before: datetime) -> None:
    """Deny everything to sessions of ``role`` issued before ``issued_before``: what the IAM
    console's "Revoke active sessions" attaches (IAM user guide, "Revoking IAM role temporary
    security credentials"). Sessions issued later (after the cause is fixed) work."""
    document = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Deny", "Action": ["*"], "Resource": ["*"],
        "Condition": {"DateLessThan": {"aws:TokenIssueTime": token_issue_time(issued_before)}}}]}
    iam.put_role_policy(RoleName=role, PolicyName=REVOKE_POLICY,
                        PolicyDocument=json.dumps(document))


def quarantine_user(iam: IAMClient, user: str, incident_id: str) -> None:
    """Deny everything to the user, including the temporary credentials it already obtained
    (GetSessionToken sessions are evaluated against the user's policies); deactivating its
    keys alone would leave those working until they expire."""
    document = {"Version": "2012-10-17", "Statement": [{
        "Sid": f"Breach{''.join(c for c in incident_id if c.isalnum())[:50]}",
        "Effect": "Deny", "Action": "*", "Resource": "*"}]}
    iam.put_user_policy(UserName=user, PolicyName=USER_QUARANTINE_POLICY,
                        PolicyDocument=json.dumps(document))


def start_logging(cloudtrail: CloudTrailClient, trail: str) -> None:
    cloudtrail.start_logging(Name=trail)


def ensure_data_events(cloudtrail: CloudTrailClient, trail: str, buckets: list[str]) -> None:
    """Add S3 data events (reads and writes) on ``buckets`` to the trail's basic event
    selectors, keeping every selector and value it has (PutEventSelectors replaces the whole
    list)."""
    current = cloudtrail.get_event_selectors(TrailName=trail).get("EventSelectors") or []
    selectors: list[dict[str, Any]] = [dict(s) for s in current] or [
        {"ReadWriteType": "All", "IncludeManagementEvents": True, "DataResources": []}]
    first = selectors[0]
    resources: list[dict[str, Any]] = [dict(r) for r in first.get("DataResources") or []]
    objects = next((r for r in resources if r.get("Type") == "AWS::S3::Object"), None)
    if objects is None:
        objects = {"Type": "AWS::S3::Object", "Values": []}
        resources.append(objects)
    values = list(objects.get("Values", []) or [])
    for bucket in buckets:
        value = f"arn:aws:s3:::{bucket}/"
        if value not in values:
            values.append(value)
    objects["Values"] = values
    first["DataResources"] = resources
    first["ReadWriteType"] = "All"
    cloudtrail.put_event_selectors(TrailName=trail, EventSelectors=selectors)  # type: ignore[arg-type]


def publish(sns: SNSClient, topic_arn: str, subject: str, message: str) -> str:
    """Publish to a topic; SNS subjects are at most 100 printable ASCII characters."""
    subject = "".join(c for c in subject if 32 <= ord(c) < 127)[:100]
    return str(sns.publish(TopicArn=topic_arn, Subject=subject, Message=message)["MessageId"])

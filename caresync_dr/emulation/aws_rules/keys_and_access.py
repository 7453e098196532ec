"""KMS, IAM, Secrets Manager and CloudWatch Logs rules: who may use which key, and where."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from caresync_dr.emulation.aws_rules.core import (
    ResourceLike,
    Rule,
    RunView,
    allows,
    arn_region,
    as_list,
    first,
    number,
    policy_statements,
    principals,
)

KEY = "aws:kms/key:Key"
ALIAS = "aws:kms/alias:Alias"
ROLE = "aws:iam/role:Role"
SERVICE_LINKED_ROLE = "aws:iam/serviceLinkedRole:ServiceLinkedRole"
SECRET = "aws:secretsmanager/secret:Secret"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
ASG = "aws:autoscaling/group:Group"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
TOPIC = "aws:sns/topic:Topic"
TRAIL = "aws:cloudtrail/trail:Trail"
# CloudWatch Logs PutRetentionPolicy accepts only these retentionInDays values.
LOG_RETENTION_DAYS = frozenset({1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731,
                                1096, 1827, 2192, 2557, 2922, 3288, 3653})
_SECRET_NAME = re.compile(r"[A-Za-z0-9/_+=.@-]{1,512}")


def _key_of(view: RunView, key_ref: object) -> ResourceLike | None:
    """The key a resource names (by ARN or id), if the run creates it."""
    if not key_ref:
        return None
    return view.with_output(KEY, "arn", key_ref) or view.with_output(KEY, "keyId", key_ref)


def _service_allowed(key: ResourceLike, service: str, action: str) -> bool:
    return any(service in principals(s, "Service") and allows(s, action)
               for s in policy_statements(key.inputs.get("policy")))


def key_policy_principals_exist(key: ResourceLike, view: RunView) -> list[str]:
    """KMS refuses a key policy naming an IAM role that does not exist (yet)."""
    problems = []
    for statement in policy_statements(key.inputs.get("policy")):
        for principal in principals(statement, "AWS"):
            if ":role/" not in principal:
                continue
            role = (view.with_output(ROLE, "arn", principal)
                    or view.with_output(SERVICE_LINKED_ROLE, "arn", principal))
            if role is None:
                problems.append(f"the key policy names {principal}, which this program does not "
                                "create: KMS refuses a policy with a principal that does not exist "
                                "(MalformedPolicyDocumentException)")
            elif not view.depends_on(key, role):
                problems.append(f"the key policy names {principal} but the key does not wait for "
                                "that role to exist")
    return problems


def key_deletion_window(key: ResourceLike, view: RunView) -> list[str]:
    days = number(key.inputs.get("deletionWindowInDays"))
    if days is not None and not 7 <= days <= 30:
        return [f"deletion_window_in_days {days:g} is outside 7-30"]
    return []


def alias_name(alias: ResourceLike, view: RunView) -> list[str]:
    name = str(alias.inputs.get("name") or "")
    if not name.startswith("alias/") or name.startswith("alias/aws/"):
        return [f"alias {name!r} must start with alias/ and not alias/aws/ (reserved for AWS "
                "managed keys)"]
    return []


def _grant_for_aws_resource(statement: Mapping[str, Any]) -> bool:
    condition = statement.get("Condition")
    flag = condition.get("Bool", {}).get("kms:GrantIsForAWSResource") \
        if isinstance(condition, Mapping) else None
    return flag is True or str(flag).lower() == "true"


def ebs_key_grants_autoscaling(group: ResourceLike, view: RunView) -> list[str]:
    template = view.with_output(LAUNCH_TEMPLATE, "id", first(group.inputs.get("launchTemplate"))
                                .get("id"))
    if template is None:
        return []
    account = str(group.outputs.get("arn", "")).split(":")[4:5] or [""]
    role = group.inputs.get("serviceLinkedRoleArn") or (
        f"arn:aws:iam::{account[0]}:role/aws-service-role/"
        "autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling")
    problems = []
    for mapping in as_list(template.inputs.get("blockDeviceMappings")):
        key_ref = first(mapping.get("ebs")).get("kmsKeyId")
        key = _key_of(view, key_ref)
        if key is None:
            continue
        statements = policy_statements(key.inputs.get("policy"))
        use = any(role in principals(s, "AWS") and allows(s, "kms:GenerateDataKeyWithoutPlaintext")
                  and allows(s, "kms:Decrypt") for s in statements)
        grant = any(role in principals(s, "AWS") and allows(s, "kms:CreateGrant")
                    and _grant_for_aws_resource(s) for s in statements)
        if not (use and grant):
            problems.append(f"instances launch volumes encrypted with {key_ref}, but the key "
                            f"policy does not let the group's service-linked role {role} use "
                            "the key and create grants for AWS resources: launches fail")
    return problems


def secret_replicas(secret: ResourceLike, view: RunView) -> list[str]:
    here = view.region_of(secret)
    problems = []
    for replica in as_list(secret.inputs.get("replicas")):
        region = replica.get("region")
        key = replica.get("kmsKeyId")
        if region == here:
            problems.append(f"a replica in the secret's own region {here}")
        if key and arn_region(key) not in (None, region):
            problems.append(f"the replica in {region} is encrypted with {key}, a key of "
                            f"{arn_region(key)}: a replica needs a key of its own region")
    key = secret.inputs.get("kmsKeyId")
    if key and arn_region(key) not in (None, here):
        problems.append(f"kms_key_id {key} is not a key of the secret's region {here}")
    return problems


def secret_name(secret: ResourceLike, view: RunView) -> list[str]:
    name = str(secret.inputs.get("name") or "")
    if name and not _SECRET_NAME.fullmatch(name):
        return [f"secret name {name!r}: letters, digits and /_+=.@- only"]
    return []


def log_group_key_and_retention(group: ResourceLike, view: RunView) -> list[str]:
    problems = []
    days = number(group.inputs.get("retentionInDays"))
    if days is not None and int(days) not in LOG_RETENTION_DAYS:
        problems.append(f"retention_in_days {days:g} is not a CloudWatch Logs retention value")
    key = _key_of(view, group.inputs.get("kmsKeyId"))
    service = f"logs.{view.region_of(group)}.amazonaws.com"
    if key is not None and not _service_allowed(key, service, "kms:GenerateDataKey"):
        problems.append(f"the key policy does not allow {service} to use the key: "
                        "CloudWatch Logs refuses the association")
    return problems


def encrypted_topic_for_alarms(topic: ResourceLike, view: RunView) -> list[str]:
    key = _key_of(view, topic.inputs.get("kmsMasterKeyId"))
    if key is None or not view.of_type("aws:cloudwatch/metricAlarm:MetricAlarm"):
        return []
    if not (_service_allowed(key, "cloudwatch.amazonaws.com", "kms:GenerateDataKey")
            and _service_allowed(key, "cloudwatch.amazonaws.com", "kms:Decrypt")):
        return ["alarms publish to this KMS-encrypted topic, but the key policy does not allow "
                "cloudwatch.amazonaws.com kms:Decrypt and kms:GenerateDataKey*: notifications "
                "are dropped"]
    return []


def trail_key(trail: ResourceLike, view: RunView) -> list[str]:
    key = _key_of(view, trail.inputs.get("kmsKeyId"))
    if key is not None and not _service_allowed(key, "cloudtrail.amazonaws.com",
                                                "kms:GenerateDataKey"):
        return ["the key policy does not allow cloudtrail.amazonaws.com kms:GenerateDataKey*: "
                "CloudTrail cannot encrypt its log files (InsufficientEncryptionPolicyException)"]
    return []


def role_session_duration(role: ResourceLike, view: RunView) -> list[str]:
    seconds = number(role.inputs.get("maxSessionDuration"))
    if seconds is not None and not 3600 <= seconds <= 43200:
        return [f"max_session_duration {seconds:g} s is outside 1-12 hours"]
    return []


KMS_DOC = "https://docs.aws.amazon.com/kms/latest/developerguide/"
RULES = [
    Rule("kms-policy-principals-exist", "IAM roles a key policy names exist before the key",
         KMS_DOC + "key-policy-overview.html; KMS PutKeyPolicy/CreateKey "
         "MalformedPolicyDocumentException", (KEY,), key_policy_principals_exist),
    Rule("kms-deletion-window", "Key deletion waits 7-30 days",
         "pulumi-aws aws.kms.Key docstring, deletion_window_in_days", (KEY,),
         key_deletion_window),
    Rule("kms-alias-name", "Aliases start with alias/ and avoid the reserved alias/aws/",
         "pulumi-aws aws.kms.Alias docstring; " + KMS_DOC + "kms-alias.html", (ALIAS,),
         alias_name),
    Rule("ebs-key-grants-autoscaling", "The key of app volumes lets the Auto Scaling "
         "service-linked role use it and create grants (fault 6)",
         "https://docs.aws.amazon.com/autoscaling/ec2/userguide/key-policy-requirements-EBS-"
         "encryption.html", (ASG,), ebs_key_grants_autoscaling),
    Rule("secrets-replica-key-of-its-region", "A secret's replica is in another region and "
         "encrypted with a key of that region",
         "https://docs.aws.amazon.com/secretsmanager/latest/apireference/"
         "API_ReplicateSecretToRegions.html", (SECRET,), secret_replicas),
    Rule("secrets-name", "Secret names use Secrets Manager's character set",
         "pulumi-aws aws.secretsmanager.Secret docstring, name", (SECRET,), secret_name),
    Rule("logs-key-and-retention", "RDS/app log groups: a retention CloudWatch Logs accepts, "
         "a key whose policy admits CloudWatch Logs (fault 7)",
         "https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/encrypt-log-data-kms.html; "
         "https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/"
         "API_PutRetentionPolicy.html", (LOG_GROUP,), log_group_key_and_retention),
    Rule("sns-encrypted-topic-admits-cloudwatch", "Alarms can publish to a KMS-encrypted topic",
         "https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html#compatibility-with-"
         "aws-services", (TOPIC,), encrypted_topic_for_alarms),
    Rule("cloudtrail-key-admits-cloudtrail", "CloudTrail may encrypt with the trail's key",
         "https://docs.aws.amazon.com/awscloudtrail/latest/userguide/create-kms-key-policy-"
         "for-cloudtrail.html", (TRAIL,), trail_key),
    Rule("iam-role-session-duration", "Role sessions last 1-12 hours",
         "pulumi-aws aws.iam.Role docstring, max_session_duration", (ROLE,),
         role_session_duration),
]

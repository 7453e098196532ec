"""IAM rules about the Resource of an Allow: the resource types AWS authorizes each action
against, and what a missing object costs a reader.

IAM accepts any ARN in a policy (``PutRolePolicy`` checks the grammar, not the meaning), so a
grant on the wrong kind of ARN is stored and then never matches: ``s3:GetObject`` on a bucket
ARN, ``kms:Decrypt`` on an alias ARN, a secret's name without the six random characters
Secrets Manager appends, a ``Describe*`` that has no resource types on anything but ``"*"``.
The operator roles' grants are generated (caresync_dr/operator_permissions.py), so a wrong
resource model is a wrong policy for every role at once; every offline run checks them here.

:data:`RESOURCE_TYPES` is the Service Authorization Reference
(https://docs.aws.amazon.com/service-authorization/latest/reference/, "Actions defined by
<service>", the *Resource types* column; ``*`` marks a required one) for every action the
program's inline policies use: the ARN formats each action may be granted on, and which one
a statement must name. An action missing from the table is a problem too: look it up there.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from caresync_dr.emulation.aws_rules.core import (
    ResourceLike,
    Rule,
    RunView,
    as_list,
    policy_statements,
)
from caresync_dr.emulation.aws_rules.iam import ROLE, ROLE_POLICY

_R = r"[a-z0-9-]+"        # a region
_A = r"\d{12}"            # an account

# Resource type -> the ARN format of the Service Authorization Reference (wildcards allowed
# where a name or id goes). A ``*`` in a policy ARN may stand for any part of the name.
ARN: Mapping[str, str] = {
    "autoScalingGroup": rf"arn:aws:autoscaling:{_R}:{_A}:autoScalingGroup:[^:]+:"
                        r"autoScalingGroupName/.+",
    "backupVault": rf"arn:aws:backup:{_R}:{_A}:backup-vault:.+",
    # AWS Backup: arn:${Partition}:${Vendor}:${Region}:*:${ResourceType}:${RecoveryPointId}
    # (an RDS recovery point is the RDS snapshot awsbackup:job-...)
    "recoveryPoint": rf"arn:aws:(backup:{_R}:{_A}:recovery-point:.+|rds:{_R}:{_A}:snapshot:.+)",
    "trail": rf"arn:aws:cloudtrail:{_R}:{_A}:trail/.+",
    "alarm": rf"arn:aws:cloudwatch:{_R}:{_A}:alarm:.+",
    "launch-template": rf"arn:aws:ec2:{_R}:{_A}:(launch-template/.+|\*)",
    "security-group": rf"arn:aws:ec2:{_R}:{_A}:(security-group/.+|\*)",
    "instance": rf"arn:aws:ec2:{_R}:{_A}:(instance/.+|\*)",
    "network-interface": rf"arn:aws:ec2:{_R}:{_A}:(network-interface/.+|\*)",
    "subnet": rf"arn:aws:ec2:{_R}:{_A}:(subnet/.+|\*)",
    "vpc": rf"arn:aws:ec2:{_R}:{_A}:(vpc/.+|\*)",
    "volume": rf"arn:aws:ec2:{_R}:{_A}:(volume/.+|\*)",
    "snapshot": rf"arn:aws:ec2:{_R}::snapshot/.+",       # no account in an EBS snapshot ARN
    "image": rf"arn:aws:ec2:{_R}::image/.+",             # nor in an AMI's
    "targetgroup": rf"arn:aws:elasticloadbalancing:{_R}:{_A}:targetgroup/.+",
    "user": rf"arn:aws:iam::{_A}:user/.+",
    "role": rf"arn:aws:iam::{_A}:role/.+",
    # a key ARN only: a policy naming an alias ARN does not authorize use of the key
    # (AWS KMS Developer Guide, "Using aliases to control access to KMS keys")
    "key": rf"arn:aws:kms:{_R}:{_A}:key/.+",
    "log-group": rf"arn:aws:logs:{_R}:{_A}:log-group:.+",
    "db": rf"arn:aws:rds:{_R}:{_A}:db:.+",
    "rds-snapshot": rf"arn:aws:rds:{_R}:{_A}:snapshot:.+",
    "og": rf"arn:aws:rds:{_R}:{_A}:og:.+",
    "pg": rf"arn:aws:rds:{_R}:{_A}:pg:.+",
    "subgrp": rf"arn:aws:rds:{_R}:{_A}:subgrp:.+",
    "auto-backup": rf"arn:aws:rds:{_R}:{_A}:auto-backup:.+",
    "hostedzone": r"arn:aws:route53:::hostedzone/.+",
    "healthcheck": r"arn:aws:route53:::healthcheck/.+",
    "bucket": r"arn:aws:s3:::[^/*]+",
    "object": r"arn:aws:s3:::[^/]+/.*",
    # Secrets Manager appends "-" and six random characters to a secret's name: a pattern for
    # a name ends with -?????? or * (Secrets Manager User Guide, "Permissions policy
    # examples": "match the secret ARN ... with -??????").
    "secret": rf"arn:aws:secretsmanager:{_R}:{_A}:secret:.+(-\?{{6}}|\*)",
    "topic": rf"arn:aws:sns:{_R}:{_A}:[^:/]+",
    # a parameter named /a/b is arn:...:parameter/a/b: one slash (SSM User Guide,
    # "Restricting access to Parameter Store parameters using IAM policies")
    "parameter": rf"arn:aws:ssm:{_R}:{_A}:parameter/[^/].*",
}


@dataclass(frozen=True)
class Types:
    """An action's resource types; ``required`` must be named by a statement granting it."""

    required: tuple[str, ...]
    optional: tuple[str, ...] = ()

    @property
    def all(self) -> tuple[str, ...]:
        return (*self.required, *self.optional)


UNSCOPED = Types(())     # no resource types: the action is authorized on "*" only


def _t(*required: str, optional: Sequence[str] = ()) -> Types:
    return Types(tuple(required), tuple(optional))


_EC2_ANY = ("launch-template", "security-group", "instance", "network-interface", "subnet",
            "vpc", "volume", "snapshot", "image")
RESOURCE_TYPES: Mapping[str, Types] = {
    # list_amazonec2autoscaling.html
    "autoscaling:CancelInstanceRefresh": _t("autoScalingGroup"),
    "autoscaling:DescribeAutoScalingGroups": UNSCOPED,
    "autoscaling:DescribeAutoScalingInstances": UNSCOPED,
    "autoscaling:DescribeInstanceRefreshes": UNSCOPED,
    "autoscaling:DetachInstances": _t("autoScalingGroup"),
    "autoscaling:RollbackInstanceRefresh": _t("autoScalingGroup"),
    "autoscaling:SetInstanceProtection": _t("autoScalingGroup"),
    "autoscaling:StartInstanceRefresh": _t("autoScalingGroup"),
    "autoscaling:UpdateAutoScalingGroup": _t("autoScalingGroup"),
    # list_awsbackup.html
    "backup:DescribeRestoreJob": UNSCOPED,
    "backup:ListRecoveryPointsByBackupVault": _t("backupVault"),
    "backup:StartRestoreJob": _t("recoveryPoint"),
    # list_awscloudtrail.html
    "cloudtrail:GetEventSelectors": _t("trail"),
    "cloudtrail:GetTrailStatus": _t("trail"),
    "cloudtrail:LookupEvents": UNSCOPED,
    "cloudtrail:PutEventSelectors": _t("trail"),
    "cloudtrail:StartLogging": _t("trail"),
    # list_amazoncloudwatch.html
    "cloudwatch:DescribeAlarms": _t("alarm"),
    "cloudwatch:GetMetricData": UNSCOPED,
    "cloudwatch:GetMetricStatistics": UNSCOPED,
    # list_amazonec2.html
    "ec2:CreateLaunchTemplateVersion": _t("launch-template"),
    "ec2:CreateSecurityGroup": _t("security-group", "vpc"),
    "ec2:CreateSnapshot": _t("snapshot", "volume", optional=("instance",)),
    "ec2:CreateTags": _t(optional=_EC2_ANY),
    "ec2:DescribeImages": UNSCOPED,
    "ec2:DescribeInstanceAttribute": _t("instance"),
    "ec2:DescribeInstances": UNSCOPED,
    "ec2:DescribeLaunchTemplateVersions": UNSCOPED,
    "ec2:DescribeLaunchTemplates": UNSCOPED,
    "ec2:DescribeSecurityGroups": UNSCOPED,
    "ec2:DescribeSnapshots": UNSCOPED,
    "ec2:DescribeVpcs": UNSCOPED,
    "ec2:ModifyInstanceAttribute": _t("instance", optional=("security-group",)),
    "ec2:ModifyNetworkInterfaceAttribute": _t("network-interface",
                                              optional=("instance", "security-group")),
    "ec2:RevokeSecurityGroupEgress": _t("security-group"),
    "ec2:RevokeSecurityGroupIngress": _t("security-group"),
    "ec2:RunInstances": _t("image", "instance", "network-interface", "security-group",
                           "subnet", "volume", optional=("launch-template",)),
    # list_elasticloadbalancingv2.html
    "elasticloadbalancing:DeregisterTargets": _t("targetgroup"),
    "elasticloadbalancing:DescribeTargetGroups": UNSCOPED,
    "elasticloadbalancing:DescribeTargetHealth": UNSCOPED,
    # list_awsidentityandaccessmanagementiam.html
    "iam:GetAccessKeyLastUsed": _t("user"),
    "iam:GetAccountSummary": UNSCOPED,
    "iam:GetRole": _t("role"),
    "iam:GetRolePolicy": _t("role"),
    "iam:GetUserPolicy": _t("user"),
    "iam:ListAccessKeys": _t("user"),
    "iam:PassRole": _t("role"),
    "iam:PutRolePolicy": _t("role"),
    "iam:PutUserPolicy": _t("user"),
    "iam:UpdateAccessKey": _t("user"),
    # list_awskeymanagementservice.html
    **{f"kms:{name}": _t("key") for name in (
        "CreateGrant", "Decrypt", "DescribeKey", "Encrypt", "GenerateDataKey")},
    # list_amazoncloudwatchlogs.html
    "logs:CreateLogStream": _t("log-group"),
    "logs:FilterLogEvents": _t("log-group"),
    "logs:PutLogEvents": _t("log-group"),
    # list_amazonrds.html
    "rds:AddTagsToResource": _t(optional=("db", "og", "pg", "rds-snapshot", "subgrp")),
    "rds:DeleteDBInstance": _t("db"),
    "rds:DescribeDBInstanceAutomatedBackups": _t("auto-backup"),
    "rds:DescribeDBInstances": _t("db"),
    "rds:DescribeDBSnapshots": _t("rds-snapshot", optional=("db",)),
    "rds:ModifyDBInstance": _t("db", optional=("og", "pg")),
    "rds:PromoteReadReplica": _t("db"),
    "rds:RestoreDBInstanceFromDBSnapshot": _t("db", "rds-snapshot",
                                              optional=("og", "pg", "subgrp")),
    "rds:RestoreDBInstanceToPointInTime": _t("db", optional=("og", "pg", "subgrp",
                                                             "auto-backup")),
    # list_amazonroute53.html
    "route53:ChangeResourceRecordSets": _t("hostedzone"),
    "route53:GetHealthCheck": _t("healthcheck"),
    "route53:GetHealthCheckStatus": _t("healthcheck"),
    "route53:ListResourceRecordSets": _t("hostedzone"),
    "route53:UpdateHealthCheck": _t("healthcheck"),
    # list_amazons3.html
    "s3:GetBucketReplication": _t("bucket"),
    "s3:GetReplicationConfiguration": _t("bucket"),
    "s3:ListBucket": _t("bucket"),
    **{f"s3:{name}": _t("object") for name in (
        "GetObject", "PutObject", "GetObjectVersionAcl", "GetObjectVersionForReplication",
        "GetObjectVersionTagging", "ReplicateDelete", "ReplicateObject", "ReplicateTags")},
    # list_awssecretsmanager.html
    **{f"secretsmanager:{name}": _t("secret") for name in (
        "DescribeSecret", "GetSecretValue", "ListSecretVersionIds", "PutSecretValue",
        "StopReplicationToReplica", "UpdateSecretVersionStage")},
    # list_amazonsns.html
    "sns:Publish": _t("topic"),
    # list_awssystemsmanager.html
    "ssm:DeleteParameter": _t("parameter"),
    "ssm:GetParameter": _t("parameter"),
    "ssm:PutParameter": _t("parameter"),
}
_MATCH = {kind: re.compile(pattern) for kind, pattern in ARN.items()}


def kinds_of(arn: str) -> set[str]:
    """The resource types a policy ARN (wildcards and all) has the format of."""
    return {kind for kind, pattern in _MATCH.items() if pattern.fullmatch(arn)}


def _allows(resource: ResourceLike) -> list[Mapping[str, Any]]:
    raw = resource.inputs.get("policy")
    return [s for s in policy_statements(raw if raw is not None else "{}")
            if s.get("Effect") == "Allow"]


def resource_types(resource: ResourceLike, view: RunView) -> list[str]:
    """Each Allow names, for every action, ARNs of the types AWS authorizes it against."""
    problems: list[str] = []
    for statement in _allows(resource):
        sid = statement.get("Sid") or "?"
        arns = [str(a) for a in as_list(statement.get("Resource"))]
        kinds = [kinds_of(a) for a in arns]
        actions = [str(a) for a in as_list(statement.get("Action"))]
        for action in actions:
            types = RESOURCE_TYPES.get(action)
            if types is None:
                problems.append(f"{sid}: {action} is not in aws_rules/iam_resources.py "
                                f"RESOURCE_TYPES: add its resource types from the Service "
                                f"Authorization Reference")
                continue
            if arns == ["*"]:
                continue        # least privilege is tests/stack/test_operator_role.py's
            if types is UNSCOPED or not types.all:
                problems.append(f"{sid}: {action} has no resource types, so IAM authorizes "
                                f"it on \"*\" only; {', '.join(arns)} never matches")
                continue
            for needed in types.required:
                if not any(needed in k for k in kinds):
                    problems.append(f"{sid}: {action} needs a {needed} ARN "
                                    f"({ARN[needed]}); the statement names none")
        usable = {t for a in actions if a in RESOURCE_TYPES for t in RESOURCE_TYPES[a].all}
        if arns != ["*"]:
            for arn, found in zip(arns, kinds, strict=True):
                if not found & usable:
                    problems.append(f"{sid}: {arn} is not a resource any of "
                                    f"{', '.join(actions)} is authorized against")
    return problems


def _bucket_of(arn: str) -> str | None:
    match = re.fullmatch(r"arn:aws:s3:::([^/]+)/.*", arn)
    return match.group(1) if match else None


def _role_allows(role: ResourceLike, view: RunView) -> list[Mapping[str, Any]]:
    from caresync_dr.emulation.aws_rules.iam import inline_policies_of

    return [s for p in inline_policies_of(role, view) for s in _allows(p)]


def readers_list_their_buckets(role: ResourceLike, view: RunView) -> list[str]:
    """A role that may s3:GetObject objects of a bucket may s3:ListBucket it, or a missing
    key is 403 AccessDenied instead of 404 NoSuchKey (which the commands read as absent)."""
    statements = _role_allows(role, view)

    def grants(action: str, arn: str) -> bool:
        return any(action in as_list(s.get("Action")) and any(
            re.fullmatch(re.escape(str(r)).replace(r"\*", ".*").replace(r"\?", "."), arn)
            for r in as_list(s.get("Resource"))) for s in statements)

    read = {b for s in statements if "s3:GetObject" in as_list(s.get("Action"))
            for r in as_list(s.get("Resource")) if (b := _bucket_of(str(r)))}
    return [f"it may s3:GetObject in {bucket} but not s3:ListBucket it: S3 answers a missing "
            f"key with 403 AccessDenied, not 404 NoSuchKey"
            for bucket in sorted(read) if not grants("s3:ListBucket", f"arn:aws:s3:::{bucket}")]


def _pattern(arn_pattern: str) -> re.Pattern[str]:
    """An IAM Resource (``*`` any run of characters, ``?`` one) as a regex."""
    return re.compile(re.escape(arn_pattern).replace(r"\*", ".*").replace(r"\?", "."))


def _allowed(statements: Sequence[Mapping[str, Any]], action: str, arn: str) -> bool:
    return any(action in as_list(s.get("Action")) and any(
        _pattern(str(r)).fullmatch(arn) for r in as_list(s.get("Resource")))
        for s in statements)


def _key_arns(view: RunView) -> dict[str, str]:
    """Every way the run names a KMS key (ARN, id, alias name) -> the key's ARN."""
    keys: dict[str, str] = {}
    for key in view.of_type("aws:kms/key:Key"):
        arn = str(key.outputs.get("arn") or "")
        if arn:
            keys.update({arn: arn, str(key.outputs.get("keyId") or arn): arn})
    for alias in view.of_type("aws:kms/alias:Alias"):
        target = keys.get(str(alias.inputs.get("targetKeyId") or ""))
        if target:
            keys[str(alias.inputs.get("name"))] = target
    return keys


def _encrypted(view: RunView) -> list[tuple[str, str, str, str]]:
    """(action on the resource, resource ARN, the KMS action AWS then asks of the caller, key
    ARN) for every resource of the run whose service encrypts with a customer managed key."""
    keys = _key_arns(view)
    found: list[tuple[str, str, str, str]] = []
    for parameter in view.of_type("aws:ssm/parameter:Parameter"):
        key = keys.get(str(parameter.inputs.get("keyId") or ""))
        arn = str(parameter.outputs.get("arn") or "")
        if parameter.inputs.get("type") == "SecureString" and key and arn:
            found += [("ssm:GetParameter", arn, "kms:Decrypt", key),
                      ("ssm:PutParameter", arn, "kms:Encrypt", key)]
    for topic in view.of_type("aws:sns/topic:Topic"):
        key = keys.get(str(topic.inputs.get("kmsMasterKeyId") or ""))
        arn = str(topic.outputs.get("arn") or "")
        if key and arn:
            found += [("sns:Publish", arn, "kms:GenerateDataKey", key),
                      ("sns:Publish", arn, "kms:Decrypt", key)]
    for sse in view.of_type("aws:s3/bucketServerSideEncryptionConfiguration:"
                            "BucketServerSideEncryptionConfiguration"):
        for rule in as_list(sse.inputs.get("rules")):
            default = rule.get("applyServerSideEncryptionByDefault") or {}
            key = keys.get(str(default.get("kmsMasterKeyId") or ""))
            if default.get("sseAlgorithm") == "aws:kms" and key:
                objects = f"arn:aws:s3:::{sse.inputs.get('bucket')}/*"
                found += [("s3:PutObject", objects, "kms:GenerateDataKey", key),
                          ("s3:GetObject", objects, "kms:Decrypt", key)]
    return found


def kms_on_the_callers_behalf(role: ResourceLike, view: RunView) -> list[str]:
    """A role allowed to use an encrypted resource is allowed what its service then asks of
    KMS with the caller's permissions; no API call of the caller shows it, so the call
    recorder (tests/iam_calls.py) cannot."""
    statements = _role_allows(role, view)
    problems: list[str] = []
    for action, arn, kms_action, key in _encrypted(view):
        # a bucket's objects (bucket/*) are used by a grant on any of them (bucket/prefix/*)
        prefix = arn[:-1] if arn.endswith("/*") else None
        uses = [str(r) for s in statements if action in as_list(s.get("Action"))
                for r in as_list(s.get("Resource")) if _pattern(str(r)).fullmatch(arn)
                or (prefix and (str(r).startswith(prefix)
                                or _pattern(str(r)).fullmatch(prefix + "x")))]
        if uses and not _allowed(statements, kms_action, key):
            problems.append(f"it may {action} on {uses[0]}, encrypted under {key}, but not "
                            f"{kms_action} on that key")
    return problems


SAR = "https://docs.aws.amazon.com/service-authorization/latest/reference/"
RULES = [
    Rule("iam-action-resource-types", "Every action of an inline Allow is granted on ARNs of "
         "the resource types AWS authorizes it against (its required type named; actions "
         "without resource types on \"*\" only); secret patterns end -?????? or *, KMS grants "
         "name key ARNs, S3 object actions object ARNs",
         SAR + " (Actions defined by each service: Resource types); Secrets Manager User "
         "Guide, auth-and-access_examples; AWS KMS Developer Guide, alias-authorization",
         (ROLE_POLICY,), resource_types),
    Rule("iam-s3-readers-list-the-bucket", "A role that may s3:GetObject in a bucket may "
         "s3:ListBucket it, so a missing key is 404 NoSuchKey rather than 403",
         "https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html (Permissions: "
         "\"If you don't have the s3:ListBucket permission, Amazon S3 returns an HTTP status "
         "code 403\")", (ROLE,), readers_list_their_buckets),
    Rule("iam-kms-on-the-callers-behalf", "A role that may use a resource encrypted under a "
         "customer managed key may use the key as its service asks: kms:Decrypt/kms:Encrypt "
         "for SecureString Get/PutParameter, kms:GenerateDataKey and kms:Decrypt to publish to "
         "an encrypted topic, kms:GenerateDataKey/kms:Decrypt to put/get SSE-KMS objects",
         "https://docs.aws.amazon.com/systems-manager/latest/userguide/secure-string-parameter"
         "-kms-encryption.html; https://docs.aws.amazon.com/sns/latest/dg/sns-key-management"
         ".html; https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html",
         (ROLE,), kms_on_the_callers_behalf),
]

__all__ = ["ARN", "RESOURCE_TYPES", "RULES", "kinds_of"]

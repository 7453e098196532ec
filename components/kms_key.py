"""The site's customer-managed KMS key: RDS storage, backups, S3, SNS, logs, secrets, EBS.

Rotation is on. The key is protected (``ResourceOptions(protect=True)``): deleting the stack
would otherwise schedule deletion of the key every backup, snapshot and replica is encrypted
with; removing it takes a deliberate ``pulumi state unprotect``. The key policy delegates to
IAM in the account (the usual root statement) and names the AWS services that use the key
without an IAM principal of this account:

* CloudWatch alarms publish to the KMS-encrypted alert and security topics;
* EventBridge publishes GuardDuty findings to the KMS-encrypted security topic (SNS developer
  guide, "Enable compatibility between event sources from AWS services and encrypted topics");
* CloudTrail and log delivery (VPC flow logs) encrypt this account's audit logs;
* CloudWatch Logs encrypts the RDS log groups of this region (``logs.<region>.amazonaws.com``,
  limited by the ``aws:logs:arn`` encryption context; CloudWatch Logs user guide, "Encrypt log
  data in CloudWatch Logs using AWS KMS");
* the site's Auto Scaling service-linked role launches app instances whose EBS volumes use this
  key (EC2 Auto Scaling user guide, "Required AWS KMS key policy for use with encrypted
  volumes": the key-use statement and ``kms:CreateGrant`` for AWS resources only).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from caresync_dr.names import site_key_alias
from components.audit import kms_statements

AUTOSCALING_SERVICE = "autoscaling.amazonaws.com"


@dataclass(frozen=True)
class SiteKeyArgs:
    site: str
    account_id: pulumi.Input[str]
    region: str
    # Service-linked roles that launch EBS volumes encrypted with this key (Auto Scaling).
    ebs_service_role_arns: Sequence[pulumi.Input[str]] = field(default_factory=list)


def ebs_service_role_statements(role_arns: Sequence[str]) -> list[dict[str, Any]]:
    """The two statements the EC2 Auto Scaling user guide requires for encrypted volumes."""
    if not role_arns:
        return []
    principal = {"AWS": sorted(role_arns)}
    return [
        {"Sid": "AutoScalingUsesKeyForVolumes", "Effect": "Allow", "Principal": principal,
         "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*",
                    "kms:DescribeKey"], "Resource": "*"},
        {"Sid": "AutoScalingAttachesVolumes", "Effect": "Allow", "Principal": principal,
         "Action": "kms:CreateGrant", "Resource": "*",
         "Condition": {"Bool": {"kms:GrantIsForAWSResource": True}}},
    ]


def logs_statement(account_id: str, region: str) -> dict[str, Any]:
    return {"Sid": "CloudWatchLogsEncryptsLogGroups", "Effect": "Allow",
            "Principal": {"Service": f"logs.{region}.amazonaws.com"},
            "Action": ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*",
                       "kms:Describe*"], "Resource": "*",
            "Condition": {"ArnLike": {"kms:EncryptionContext:aws:logs:arn":
                                      f"arn:aws:logs:{region}:{account_id}:log-group:*"}}}


def key_policy(account_id: str, region: str, ebs_service_roles: Sequence[str] = ()) -> str:
    return json.dumps({
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "AccountAdministersThroughIam", "Effect": "Allow",
             "Principal": {"AWS": f"arn:aws:iam::{account_id}:root"},
             "Action": "kms:*", "Resource": "*"},
            {"Sid": "CloudWatchAlarmsToEncryptedTopic", "Effect": "Allow",
             "Principal": {"Service": "cloudwatch.amazonaws.com"},
             "Action": ["kms:Decrypt", "kms:GenerateDataKey*"], "Resource": "*"},
            {"Sid": "EventBridgeToEncryptedTopic", "Effect": "Allow",
             "Principal": {"Service": "events.amazonaws.com"},
             "Action": ["kms:Decrypt", "kms:GenerateDataKey*"], "Resource": "*"},
            *kms_statements(account_id, region),  # CloudTrail and flow-log delivery
            logs_statement(account_id, region),
            *ebs_service_role_statements(list(ebs_service_roles)),
        ],
    })


class SiteKey(pulumi.ComponentResource):
    arn: pulumi.Output[str]
    key_id: pulumi.Output[str]
    alias_name: pulumi.Output[str]

    def __init__(self, name: str, args: SiteKeyArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("caresync:dr:SiteKey", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        key = aws.kms.Key(
            f"{name}-key", description=f"CareSync {args.site} site: data at rest",
            enable_key_rotation=True, deletion_window_in_days=30,
            policy=pulumi.Output.all(args.account_id, *args.ebs_service_role_arns).apply(
                lambda v: key_policy(v[0], args.region, v[1:])),
            opts=pulumi.ResourceOptions(parent=self, protect=True))
        alias = aws.kms.Alias(f"{name}-alias", name=site_key_alias(args.site),
                              target_key_id=key.key_id, opts=child)
        self.arn = key.arn
        self.key_id = key.key_id
        # The alias name, once the alias exists: what SecureString parameters name as key_id,
        # the same string failover.py passes as KeyId when it rewrites one.
        self.alias_name = alias.name
        self.register_outputs({"arn": key.arn})

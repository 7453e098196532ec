"""The site's customer-managed KMS key: RDS storage, backups, S3, SNS and secrets of one region.

Rotation is on. The key is protected (``ResourceOptions(protect=True)``): deleting the stack
would otherwise schedule deletion of the key every backup, snapshot and replica is encrypted
with; removing it takes a deliberate ``pulumi state unprotect``. The key policy delegates to
IAM in the account (the usual root statement) and lets CloudWatch use the key, because alarms
publish to the KMS-encrypted alert topic, and lets CloudTrail and log delivery (VPC flow logs)
encrypt this account's audit logs with it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from caresync_dr.site_keys import site_key_alias
from components.audit import kms_statements


@dataclass(frozen=True)
class SiteKeyArgs:
    site: str
    account_id: pulumi.Input[str]
    region: str


def key_policy(account_id: str, region: str) -> str:
    return json.dumps({
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "AccountAdministersThroughIam", "Effect": "Allow",
             "Principal": {"AWS": f"arn:aws:iam::{account_id}:root"},
             "Action": "kms:*", "Resource": "*"},
            {"Sid": "CloudWatchAlarmsToEncryptedTopic", "Effect": "Allow",
             "Principal": {"Service": "cloudwatch.amazonaws.com"},
             "Action": ["kms:Decrypt", "kms:GenerateDataKey*"], "Resource": "*"},
            *kms_statements(account_id, region),  # CloudTrail and flow-log delivery
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
            policy=pulumi.Output.from_input(args.account_id).apply(
                lambda account: key_policy(account, args.region)),
            opts=pulumi.ResourceOptions(parent=self, protect=True))
        alias = aws.kms.Alias(f"{name}-alias", name=site_key_alias(args.site),
                              target_key_id=key.key_id, opts=child)
        self.arn = key.arn
        self.key_id = key.key_id
        # The alias name, once the alias exists: what SecureString parameters name as key_id,
        # the same string failover.py passes as KeyId when it rewrites one.
        self.alias_name = alias.name
        self.register_outputs({"arn": key.arn})

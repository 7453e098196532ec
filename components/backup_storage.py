"""Backup storage of one site: the encrypted backup bucket, and on the primary its replication.

The primary bucket replicates every object to the standby bucket once the dr stack exists
(its bucket and key ARNs come from ``standbyStack``). Replication needs versioning on both
sides (the standby's is part of its SecureBucket); delete markers written by lifecycle expiry
are not replicated, so the standby bucket carries its own expiry lifecycle.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from caresync_dr.names import backup_bucket_name, site_prefix
from caresync_dr.retention import BACKUP_PREFIX, INCIDENT_PREFIX, RECORDS_RETENTION_DAYS
from components.iam import service_trust_policy
from components.secure_bucket import SecureBucket, SecureBucketArgs

NONCURRENT_DAYS = 30


@dataclass(frozen=True)
class ReplicationTarget:
    """The standby side of replication, read from the dr stack's outputs."""

    bucket_arn: str
    kms_key_arn: str


@dataclass(frozen=True)
class BackupStorageArgs:
    site: str
    account_id: pulumi.Input[str]
    kms_key_arn: pulumi.Input[str]
    retention_days: int
    replicate_to: ReplicationTarget | None


def replication_policy(source_bucket_arn: str, source_key_arn: str,
                       target: ReplicationTarget) -> str:
    """Least privilege for S3 replication of SSE-KMS objects (S3 user guide, replication)."""
    statements: list[dict[str, Any]] = [
        {"Sid": "ReadSourceConfiguration", "Effect": "Allow",
         "Action": ["s3:GetReplicationConfiguration", "s3:ListBucket"],
         "Resource": source_bucket_arn},
        {"Sid": "ReadSourceVersions", "Effect": "Allow",
         "Action": ["s3:GetObjectVersionForReplication", "s3:GetObjectVersionAcl",
                    "s3:GetObjectVersionTagging"],
         "Resource": f"{source_bucket_arn}/*"},
        {"Sid": "WriteReplicas", "Effect": "Allow",
         "Action": ["s3:ReplicateObject", "s3:ReplicateDelete", "s3:ReplicateTags"],
         "Resource": f"{target.bucket_arn}/*"},
        {"Sid": "DecryptWithSourceKey", "Effect": "Allow", "Action": ["kms:Decrypt"],
         "Resource": source_key_arn},
        {"Sid": "EncryptWithStandbyKey", "Effect": "Allow",
         "Action": ["kms:Encrypt", "kms:GenerateDataKey"], "Resource": target.kms_key_arn},
    ]
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


class BackupStorage(pulumi.ComponentResource):
    bucket: SecureBucket
    replication: aws.s3.BucketReplicationConfig | None

    def __init__(self, name: str, args: BackupStorageArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("caresync:dr:BackupStorage", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        bucket_name = pulumi.Output.from_input(args.account_id).apply(
            lambda account: backup_bucket_name(args.site, account))
        self.bucket = SecureBucket(f"{name}-bucket", SecureBucketArgs(
            bucket_name=bucket_name, kms_key_arn=args.kms_key_arn,
            expire_after_days=args.retention_days, noncurrent_days=NONCURRENT_DAYS,
            # Only backups expire at backupRetentionDays; incident timelines (failover writes
            # them under incidents/) are HIPAA documentation, kept six years.
            expire_prefix=BACKUP_PREFIX,
            kept_prefixes={INCIDENT_PREFIX: RECORDS_RETENTION_DAYS}), opts=child)
        self.replication = None
        target = args.replicate_to
        if target is not None:
            role = aws.iam.Role(
                f"{name}-replication-role", name=f"{site_prefix(args.site)}-backup-replication",
                assume_role_policy=service_trust_policy("s3.amazonaws.com"), opts=child)
            aws.iam.RolePolicy(
                f"{name}-replication-policy", role=role.id,
                policy=pulumi.Output.all(self.bucket.arn, args.kms_key_arn).apply(
                    lambda v: replication_policy(v[0], v[1], target)), opts=child)
            self.replication = aws.s3.BucketReplicationConfig(
                f"{name}-replication", bucket=self.bucket.bucket.id, role=role.arn,
                rules=[aws.s3.BucketReplicationConfigRuleArgs(
                    id="to-standby", status="Enabled",
                    filter=aws.s3.BucketReplicationConfigRuleFilterArgs(prefix=""),
                    delete_marker_replication=aws.s3.BucketReplicationConfigRuleDeleteMarkerReplicationArgs(
                        status="Disabled"),
                    source_selection_criteria=aws.s3.BucketReplicationConfigRuleSourceSelectionCriteriaArgs(
                        sse_kms_encrypted_objects=aws.s3.BucketReplicationConfigRuleSourceSelectionCriteriaSseKmsEncryptedObjectsArgs(
                            status="Enabled")),
                    destination=aws.s3.BucketReplicationConfigRuleDestinationArgs(
                        bucket=target.bucket_arn, storage_class="STANDARD_IA",
                        encryption_configuration=aws.s3.BucketReplicationConfigRuleDestinationEncryptionConfigurationArgs(
                            replica_kms_key_id=target.kms_key_arn)))],
                # Both sides must be versioned first; the standby's is in the dr stack.
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.bucket.versioning]))
        self.register_outputs({"bucketName": self.bucket.name, "bucketArn": self.bucket.arn,
                               "replicates": target is not None})

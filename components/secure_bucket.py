"""An S3 bucket with the HIPAA defaults every CareSync bucket gets.

Encryption by default (SSE-KMS with a bucket key, or SSE-S3 AES-256 where anonymous readers
must be served), versioning, a lifecycle (under ``expire_prefix``, "" = the whole bucket,
current versions expire after ``expire_after_days`` unless that is None and noncurrent versions
after ``noncurrent_days``; each prefix in ``kept_prefixes`` keeps current and noncurrent
versions for its own number of days; incomplete multipart uploads are aborted bucket-wide),
all four public-access blocks, and a bucket policy that denies any request made
without TLS. Extra policy statements are appended to that policy.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

ABORT_INCOMPLETE_UPLOAD_DAYS = 7


@dataclass(frozen=True)
class SecureBucketArgs:
    bucket_name: pulumi.Input[str]
    kms_key_arn: pulumi.Input[str] | None  # None: SSE-S3 (AES-256), for anonymous readers
    expire_after_days: int | None
    noncurrent_days: int
    extra_statements: pulumi.Input[Sequence[dict[str, Any]]] = field(default_factory=list)
    expire_prefix: str = ""  # the prefix expire_after_days/noncurrent_days apply to
    kept_prefixes: Mapping[str, int] = field(default_factory=dict)  # prefix -> days kept


def lifecycle_rules(args: SecureBucketArgs) -> list[aws.s3.BucketLifecycleConfigurationRuleArgs]:
    """The retention rule, one rule per kept prefix, and the bucket-wide upload abort."""
    rule = aws.s3.BucketLifecycleConfigurationRuleArgs
    filter_ = aws.s3.BucketLifecycleConfigurationRuleFilterArgs
    expiration = aws.s3.BucketLifecycleConfigurationRuleExpirationArgs
    noncurrent = aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs
    for prefix in args.kept_prefixes:
        if not prefix or prefix.startswith(args.expire_prefix) or args.expire_prefix.startswith(
                prefix):
            raise ValueError(f"kept prefix {prefix!r} overlaps the expiring prefix "
                             f"{args.expire_prefix!r}: S3 applies the shorter expiry")
    rules = [rule(
        id="retention", status="Enabled", filter=filter_(prefix=args.expire_prefix),
        expiration=None if args.expire_after_days is None else expiration(
            days=args.expire_after_days),
        noncurrent_version_expiration=noncurrent(noncurrent_days=args.noncurrent_days))]
    for prefix, days in sorted(args.kept_prefixes.items()):
        rules.append(rule(
            id=f"keep-{prefix.strip('/')}", status="Enabled", filter=filter_(prefix=prefix),
            expiration=expiration(days=days),
            noncurrent_version_expiration=noncurrent(noncurrent_days=days)))
    rules.append(rule(
        id="abort-incomplete-uploads", status="Enabled", filter=filter_(prefix=""),
        abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
            days_after_initiation=ABORT_INCOMPLETE_UPLOAD_DAYS)))
    return rules


def tls_only_statement(bucket_arn: str) -> dict[str, Any]:
    return {"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*",
            "Action": "s3:*", "Resource": [bucket_arn, f"{bucket_arn}/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}}}


class SecureBucket(pulumi.ComponentResource):
    bucket: aws.s3.Bucket
    versioning: aws.s3.BucketVersioning
    name: pulumi.Output[str]
    arn: pulumi.Output[str]

    def __init__(self, name: str, args: SecureBucketArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("caresync:dr:SecureBucket", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        bucket = aws.s3.Bucket(name, bucket=args.bucket_name, opts=child)
        self.versioning = aws.s3.BucketVersioning(
            f"{name}-versioning", bucket=bucket.id,
            versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(
                status="Enabled"), opts=child)
        if args.kms_key_arn is None:
            default = aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(  # noqa: E501
                sse_algorithm="AES256")
        else:
            default = aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(  # noqa: E501
                sse_algorithm="aws:kms", kms_master_key_id=args.kms_key_arn)
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-sse", bucket=bucket.id,
            rules=[aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                apply_server_side_encryption_by_default=default,
                bucket_key_enabled=args.kms_key_arn is not None)], opts=child)
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle", bucket=bucket.id,
            rules=lifecycle_rules(args),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.versioning]))
        block = aws.s3.BucketPublicAccessBlock(
            f"{name}-public-access-block", bucket=bucket.id, block_public_acls=True,
            block_public_policy=True, ignore_public_acls=True, restrict_public_buckets=True,
            opts=child)
        policy = pulumi.Output.all(bucket.arn, args.extra_statements).apply(
            lambda v: json.dumps({"Version": "2012-10-17",
                                  "Statement": [tls_only_statement(v[0]), *v[1]]}))
        aws.s3.BucketPolicy(f"{name}-policy", bucket=bucket.id, policy=policy,
                            opts=pulumi.ResourceOptions(parent=self, depends_on=[block]))
        self.bucket = bucket
        self.name = bucket.bucket
        self.arn = bucket.arn
        self.register_outputs({"name": bucket.bucket, "arn": bucket.arn})

"""Audit logging of one site (DESIGN principle 7; HIPAA 45 CFR 164.312(b) audit controls).

* **CloudTrail**: a trail with log file validation (SHA-256 digest files, so tampering is
  detectable), encrypted with the site's KMS key, delivering to the site's audit bucket, with
  S3 data events (object reads and writes) on the site's PHI-bearing buckets.
  One trail per site, not one per account: the prod trail is multi-region (every region and the
  global services, so activity in a region nobody uses is recorded too) but delivers to a bucket
  in the primary region; during a primary-region outage its delivery stalls exactly when the
  failover happens. The dr trail is single-region and delivers to the standby region's audit
  bucket, so the failover's own API calls are recorded in the region that survives. The standby
  region's management events are therefore recorded twice (the second copy is billed; see
  docs/costs.md); data events are not duplicated: each trail selects only its own site's buckets.
* **Audit bucket** ``caresync-<site>-audit-<account>``: SSE-KMS with the site key, versioned,
  public access blocked, TLS-only policy plus CloudTrail's and VPC flow-log delivery's
  documented statements (each restricted to this account and trail), objects and noncurrent
  versions kept 2190 days (six years, HIPAA 164.316(b)(2)(i)).
* **CloudTrail to CloudWatch Logs** (issue 13): the trail also delivers to the log group
  ``/caresync-dr/<site>/cloudtrail`` (site key, ``trailLogRetentionDays``), through a role only
  CloudTrail may assume that may only create streams and put events in that group (AWS
  CloudTrail user guide, "Sending events to CloudWatch Logs": the group ARN with the ``:*``
  stream wildcard, ``logs:CreateLogStream`` and ``logs:PutLogEvents`` on the trail's streams
  ``<account>_CloudTrail_<region>``). The breach signals (components/detection.py) filter it.
* **VPC flow logs** (all traffic) to the audit bucket under ``vpc-flow-logs/``: kept six years
  by the same lifecycle, at S3 prices instead of CloudWatch Logs storage.
* **ALB access logs** to ``caresync-<site>-alb-logs-<account>``, a separate bucket because
  Elastic Load Balancing writes access logs only to buckets encrypted with SSE-S3 ("The only
  server-side encryption option that's supported is Amazon S3-managed keys (SSE-S3)", ELB user
  guide, "Enable access logs"). Same versioning, public-access blocks, TLS-only policy and
  six-year lifecycle; the guardrails' SSE-S3 exception names it with that reason.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from caresync_dr.names import (
    alb_log_bucket_name,
    audit_bucket_name,
    trail_log_group_name,
    trail_logs_role_name,
    trail_name,
)
from caresync_dr.retention import RECORDS_RETENTION_DAYS
from components.secure_bucket import SecureBucket, SecureBucketArgs

FLOW_LOG_PREFIX = "vpc-flow-logs"
ALB_LOG_PREFIX = "alb"
# Elastic Load Balancing's log-delivery account per region (ELB user guide, "Enable access
# logs", regions available before August 2022). Regions launched later use the service
# principal logdelivery.elasticloadbalancing.amazonaws.com instead.
ELB_LOG_ACCOUNTS = {
    "us-east-1": "127311923021", "us-east-2": "033677994240", "us-west-1": "027434742980",
    "us-west-2": "797873946194", "eu-west-1": "156460612806", "eu-central-1": "054676820928",
    "ap-southeast-1": "114774131450", "ap-southeast-2": "783225319266",
    "ap-northeast-1": "582318560864",
}
ELB_LOG_SERVICE = "logdelivery.elasticloadbalancing.amazonaws.com"


def trail_arn(region: str, account_id: str, site: str) -> str:
    return f"arn:aws:cloudtrail:{region}:{account_id}:trail/{trail_name(site)}"


def trail_logs_trust_policy() -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [{
        "Sid": "CloudTrailDeliversLogs", "Effect": "Allow",
        "Principal": {"Service": "cloudtrail.amazonaws.com"}, "Action": "sts:AssumeRole"}]})


def trail_logs_policy(log_group_arn: str, account_id: str) -> str:
    """What CloudTrail needs to deliver into the group (CloudTrail user guide, "Role policy
    document for CloudTrail to use CloudWatch Logs for monitoring"). A multi-region trail
    writes one stream per region, ``<account>_CloudTrail_<region>``, hence the wildcard."""
    group = log_group_arn.removesuffix(":*")
    streams = f"{group}:log-stream:{account_id}_CloudTrail_*"
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "CloudTrailCreatesItsStreams", "Effect": "Allow",
         "Action": "logs:CreateLogStream", "Resource": streams},
        {"Sid": "CloudTrailPutsEvents", "Effect": "Allow", "Action": "logs:PutLogEvents",
         "Resource": streams}]})


def audit_bucket_statements(bucket_arn: str, account_id: str, region: str,
                            trail: str) -> list[dict[str, Any]]:
    """CloudTrail (AWS CloudTrail user guide, "Amazon S3 bucket policy for CloudTrail") and VPC
    flow-log delivery (VPC user guide, "Flow logs to Amazon S3"), each limited to this account
    and, for CloudTrail, to this trail (aws:SourceArn, the confused-deputy guard)."""
    owner_full_control = {"s3:x-amz-acl": "bucket-owner-full-control"}
    logs_source = {"aws:SourceArn": f"arn:aws:logs:{region}:{account_id}:*"}
    return [
        {"Sid": "CloudTrailAclCheck", "Effect": "Allow",
         "Principal": {"Service": "cloudtrail.amazonaws.com"}, "Action": "s3:GetBucketAcl",
         "Resource": bucket_arn, "Condition": {"StringEquals": {"aws:SourceArn": trail}}},
        {"Sid": "CloudTrailWrite", "Effect": "Allow",
         "Principal": {"Service": "cloudtrail.amazonaws.com"}, "Action": "s3:PutObject",
         "Resource": f"{bucket_arn}/AWSLogs/{account_id}/*",
         "Condition": {"StringEquals": {**owner_full_control, "aws:SourceArn": trail}}},
        {"Sid": "FlowLogsAclCheck", "Effect": "Allow",
         "Principal": {"Service": "delivery.logs.amazonaws.com"},
         "Action": ["s3:GetBucketAcl", "s3:ListBucket"], "Resource": bucket_arn,
         "Condition": {"StringEquals": {"aws:SourceAccount": account_id},
                       "ArnLike": logs_source}},
        {"Sid": "FlowLogsWrite", "Effect": "Allow",
         "Principal": {"Service": "delivery.logs.amazonaws.com"}, "Action": "s3:PutObject",
         "Resource": f"{bucket_arn}/{FLOW_LOG_PREFIX}/AWSLogs/{account_id}/*",
         "Condition": {"StringEquals": {**owner_full_control, "aws:SourceAccount": account_id},
                       "ArnLike": logs_source}},
    ]


def alb_log_statement(bucket_arn: str, account_id: str, region: str) -> dict[str, Any]:
    """ELB access-log delivery into ``<bucket>/alb/AWSLogs/<account>/``."""
    elb_account = ELB_LOG_ACCOUNTS.get(region)
    principal: dict[str, str] = ({"AWS": f"arn:aws:iam::{elb_account}:root"} if elb_account
                                 else {"Service": ELB_LOG_SERVICE})
    return {"Sid": "ElbAccessLogsWrite", "Effect": "Allow", "Principal": principal,
            "Action": "s3:PutObject",
            "Resource": f"{bucket_arn}/{ALB_LOG_PREFIX}/AWSLogs/{account_id}/*"}


@dataclass(frozen=True)
class AuditArgs:
    site: str
    region: str
    account_id: pulumi.Input[str]
    kms_key_arn: pulumi.Input[str]
    vpc_id: pulumi.Input[str]
    multi_region: bool  # prod: every region and the global services; dr: its own region
    data_event_bucket_names: Sequence[pulumi.Input[str]]  # S3 data events on these buckets
    trail_log_retention_days: int = 365  # the CloudWatch Logs copy of the trail


class Audit(pulumi.ComponentResource):
    bucket: SecureBucket
    alb_log_bucket: SecureBucket
    trail: aws.cloudtrail.Trail
    flow_log: aws.ec2.FlowLog
    trail_arn: pulumi.Output[str]
    trail_log_group: aws.cloudwatch.LogGroup

    def __init__(self, name: str, args: AuditArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("caresync:dr:Audit", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        account = pulumi.Output.from_input(args.account_id)
        trail = account.apply(lambda a: trail_arn(args.region, a, args.site))
        bucket_name = account.apply(lambda a: audit_bucket_name(args.site, a))
        statements = pulumi.Output.all(bucket_name, account, trail).apply(
            lambda v: audit_bucket_statements(f"arn:aws:s3:::{v[0]}", v[1], args.region, v[2]))
        self.bucket = SecureBucket(f"{name}-bucket", SecureBucketArgs(
            bucket_name=bucket_name, kms_key_arn=args.kms_key_arn,
            expire_after_days=RECORDS_RETENTION_DAYS, noncurrent_days=RECORDS_RETENTION_DAYS,
            extra_statements=statements), opts=child)

        alb_bucket_name = account.apply(lambda a: alb_log_bucket_name(args.site, a))
        alb_statements = pulumi.Output.all(alb_bucket_name, account).apply(
            lambda v: [alb_log_statement(f"arn:aws:s3:::{v[0]}", v[1], args.region)])
        # SSE-S3: the only default encryption ELB access-log delivery supports.
        self.alb_log_bucket = SecureBucket(f"{name}-alb-logs", SecureBucketArgs(
            bucket_name=alb_bucket_name, kms_key_arn=None,
            expire_after_days=RECORDS_RETENTION_DAYS, noncurrent_days=RECORDS_RETENTION_DAYS,
            extra_statements=alb_statements), opts=child)

        self.trail_log_group = aws.cloudwatch.LogGroup(
            f"{name}-trail-logs", name=trail_log_group_name(args.site),
            kms_key_id=args.kms_key_arn, retention_in_days=args.trail_log_retention_days,
            tags={"caresync:site": args.site}, opts=child)
        delivery_role = aws.iam.Role(
            f"{name}-trail-logs-role", name=trail_logs_role_name(args.site),
            assume_role_policy=trail_logs_trust_policy(),
            description="CloudTrail delivers this site's trail to its CloudWatch Logs group",
            opts=child)
        delivery_policy = aws.iam.RolePolicy(
            f"{name}-trail-logs-policy", name="deliver-trail", role=delivery_role.id,
            policy=pulumi.Output.all(self.trail_log_group.arn, account).apply(
                lambda v: trail_logs_policy(v[0], v[1])), opts=child)

        data_values = [pulumi.Output.concat("arn:aws:s3:::", b, "/")
                       for b in args.data_event_bucket_names]
        self.trail = aws.cloudtrail.Trail(
            f"{name}-trail", name=trail_name(args.site), s3_bucket_name=self.bucket.name,
            kms_key_id=args.kms_key_arn, enable_log_file_validation=True, enable_logging=True,
            is_multi_region_trail=args.multi_region,
            include_global_service_events=args.multi_region,
            event_selectors=[aws.cloudtrail.TrailEventSelectorArgs(
                read_write_type="All", include_management_events=True,
                data_resources=[aws.cloudtrail.TrailEventSelectorDataResourceArgs(
                    type="AWS::S3::Object", values=data_values)])],
            # CloudTrail requires the log stream wildcard on the group's ARN (pulumi-aws
            # aws.cloudtrail.Trail docstring, cloud_watch_logs_group_arn).
            cloud_watch_logs_group_arn=pulumi.Output.concat(self.trail_log_group.arn, ":*"),
            cloud_watch_logs_role_arn=delivery_role.arn,
            tags={"caresync:site": args.site},
            # CloudTrail checks the bucket policy and that it may assume the delivery role
            # (InvalidCloudWatchLogsRoleArnException) when the trail is created or updated.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.bucket, delivery_policy]))
        self.flow_log = aws.ec2.FlowLog(
            f"{name}-vpc-flow-log", vpc_id=args.vpc_id, traffic_type="ALL",
            log_destination_type="s3",
            log_destination=pulumi.Output.concat(self.bucket.arn, f"/{FLOW_LOG_PREFIX}/"),
            max_aggregation_interval=600, tags={"caresync:site": args.site},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.bucket]))
        self.trail_arn = trail
        self.register_outputs({"bucketName": self.bucket.name, "trailArn": trail,
                               "albLogBucketName": self.alb_log_bucket.name,
                               "trailLogGroupName": self.trail_log_group.name})


def kms_statements(account_id: str, region: str) -> list[dict[str, Any]]:
    """What the site key's policy must allow for audit logging: CloudTrail encrypting log files
    of this account's trails, and log delivery (flow logs) writing SSE-KMS objects."""
    return [
        {"Sid": "CloudTrailEncryptsLogs", "Effect": "Allow",
         "Principal": {"Service": "cloudtrail.amazonaws.com"}, "Action": "kms:GenerateDataKey*",
         "Resource": "*",
         "Condition": {"StringLike": {"kms:EncryptionContext:aws:cloudtrail:arn":
                                      f"arn:aws:cloudtrail:*:{account_id}:trail/*"}}},
        {"Sid": "CloudTrailDescribesKey", "Effect": "Allow",
         "Principal": {"Service": "cloudtrail.amazonaws.com"}, "Action": "kms:DescribeKey",
         "Resource": "*"},
        {"Sid": "LogDeliveryEncryptsFlowLogs", "Effect": "Allow",
         "Principal": {"Service": "delivery.logs.amazonaws.com"},
         "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*",
                    "kms:DescribeKey"], "Resource": "*",
         "Condition": {"StringEquals": {"aws:SourceAccount": account_id},
                       "ArnLike": {"aws:SourceArn": f"arn:aws:logs:{region}:{account_id}:*"}}},
    ]


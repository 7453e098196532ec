"""The traffic switch: one object in a standby-region bucket that Route 53's data plane reads.

The object ``traffic-switch`` holds ``PRIMARY`` (normal) or ``FAILOVER``. A Route 53
``HTTPS_STR_MATCH`` health check probes it with ``search_string=FAILOVER`` and
``invert_healthcheck=True``:

* ``PRIMARY``  -> string not found -> check "unhealthy" -> inverted: healthy (primary serves);
* ``FAILOVER`` -> string found -> "healthy" -> inverted: unhealthy -> the PRIMARY record's
  calculated check fails -> Route 53 answers with the SECONDARY record;
* the standby region's S3 down (or the object missing) -> "unhealthy" -> inverted: healthy, so
  an outage of the *standby* never drains the primary.

failover.py flips it with one S3 PutObject in the standby region: no Route 53 API call, no
us-east-1 control plane. The bucket is SSE-S3 (AES-256) because Route 53's checkers read
anonymously and cannot decrypt SSE-KMS; the bucket policy lets only Route 53 health-checker IP
ranges (``aws:SourceIp``) get that one key, which S3 classifies as non-public, so all four
public-access blocks stay on. ``pulumi up`` creates the object once and never rewrites it
(``ignore_changes``), so a later `pulumi up` cannot silently undo a failover.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from caresync_dr.inventory import FAILOVER_VALUE, PRIMARY_VALUE
from caresync_dr.names import switch_bucket_name
from components.secure_bucket import SecureBucket, SecureBucketArgs

SWITCH_KEY = "traffic-switch"
NONCURRENT_DAYS = 30


def health_checker_read_statement(bucket_arn: str, cidrs: Sequence[str]) -> dict[str, Any]:
    return {"Sid": "Route53HealthCheckersReadTheSwitch", "Effect": "Allow", "Principal": "*",
            "Action": "s3:GetObject", "Resource": f"{bucket_arn}/{SWITCH_KEY}",
            "Condition": {"IpAddress": {"aws:SourceIp": sorted(cidrs)}}}


@dataclass(frozen=True)
class TrafficSwitchArgs:
    region: str  # the standby region
    account_id: pulumi.Input[str]
    interval_seconds: int
    failure_threshold: int
    checker_regions: Sequence[str]


class TrafficSwitch(pulumi.ComponentResource):
    bucket_name: pulumi.Output[str]
    key: str
    health_check: aws.route53.HealthCheck

    def __init__(self, name: str, args: TrafficSwitchArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("caresync:dr:TrafficSwitch", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        ranges = aws.get_ip_ranges_output(services=["route53_healthchecks"])
        cidrs = pulumi.Output.all(ranges.cidr_blocks, ranges.ipv6_cidr_blocks).apply(
            lambda v: [*v[0], *v[1]])
        bucket_name = pulumi.Output.from_input(args.account_id).apply(switch_bucket_name)
        bucket_arn = bucket_name.apply(lambda b: f"arn:aws:s3:::{b}")
        statements = pulumi.Output.all(bucket_arn, cidrs).apply(
            lambda v: [health_checker_read_statement(v[0], v[1])])
        # Current versions never expire: an expired switch would silently mean PRIMARY again.
        bucket = SecureBucket(f"{name}-bucket", SecureBucketArgs(
            bucket_name=bucket_name, kms_key_arn=None, expire_after_days=None,
            noncurrent_days=NONCURRENT_DAYS, extra_statements=statements), opts=child)
        aws.s3.BucketObjectv2(
            f"{name}-object", bucket=bucket.bucket.id, key=SWITCH_KEY, content=PRIMARY_VALUE,
            content_type="text/plain", server_side_encryption="AES256",
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["content"],
                                        depends_on=[bucket]))
        self.health_check = aws.route53.HealthCheck(
            f"{name}-check", type="HTTPS_STR_MATCH",
            fqdn=bucket.name.apply(lambda b: f"{b}.s3.{args.region}.amazonaws.com"),
            port=443, enable_sni=True, resource_path=f"/{SWITCH_KEY}",
            search_string=FAILOVER_VALUE, invert_healthcheck=True,
            request_interval=args.interval_seconds, failure_threshold=args.failure_threshold,
            regions=list(args.checker_regions),
            tags={"Name": "caresync-traffic-switch"}, opts=child)
        self.bucket_name = bucket.name
        self.key = SWITCH_KEY
        self.register_outputs({"bucket": bucket.name, "key": SWITCH_KEY,
                               "healthCheckId": self.health_check.id})

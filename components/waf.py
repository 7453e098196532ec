"""A web application firewall (AWS WAF, regional) in front of the site's public load balancer.

AWS managed rule groups, enforced (``override_action: none``), cheapest first:

* ``AWSManagedRulesAmazonIpReputationList``: sources AWS threat intelligence lists as bots or
  attackers;
* ``AWSManagedRulesCommonRuleSet``: the OWASP Top 10 baseline (its ``SizeRestrictions_BODY``
  rule, which blocks request bodies over 8 KB, only counts: the app accepts uploads);
* ``AWSManagedRulesKnownBadInputsRuleSet``: request patterns of known exploits (Log4j, ...);
* ``AWSManagedRulesSQLiRuleSet``: SQL injection, the app being backed by PostgreSQL.

Together 1,125 web ACL capacity units, under the 1,500 a web ACL gets without extra charge
(AWS WAF developer guide, "Web ACL capacity units"). Route 53's health checks of
``/api/health`` come from AWS's own ranges, which the reputation list does not block.

Every request's log goes to ``aws-waf-logs-caresync-<site>-<account>`` (WAF only delivers to
buckets whose names start with ``aws-waf-logs-``: WAF developer guide, "Amazon S3 bucket"),
SSE-KMS with the site key, kept six years like the other audit records; the ``authorization``
and ``cookie`` headers are redacted, so no credential or session lands in a log.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from caresync_dr.names import site_prefix, waf_log_bucket_name
from caresync_dr.retention import RECORDS_RETENTION_DAYS
from components.secure_bucket import SecureBucket, SecureBucketArgs

MANAGED_RULE_GROUPS = ("AWSManagedRulesAmazonIpReputationList", "AWSManagedRulesCommonRuleSet",
                       "AWSManagedRulesKnownBadInputsRuleSet", "AWSManagedRulesSQLiRuleSet")
# Rules of a group that only count (name of the group -> its rules).
COUNT_ONLY = {"AWSManagedRulesCommonRuleSet": ("SizeRestrictions_BODY",)}
REDACTED_HEADERS = ("authorization", "cookie")


def log_delivery_statements(bucket_arn: str, account_id: str,
                            region: str) -> list[dict[str, Any]]:
    """WAF log delivery to S3 (the log delivery service; WAF developer guide, "Permissions
    to publish logs to Amazon S3"), limited to this account's log sources."""
    conditions = {"StringEquals": {"aws:SourceAccount": account_id},
                  "ArnLike": {"aws:SourceArn": f"arn:aws:logs:{region}:{account_id}:*"}}
    return [
        {"Sid": "WafLogDeliveryAclCheck", "Effect": "Allow",
         "Principal": {"Service": "delivery.logs.amazonaws.com"}, "Action": "s3:GetBucketAcl",
         "Resource": bucket_arn, "Condition": conditions},
        {"Sid": "WafLogDeliveryWrite", "Effect": "Allow",
         "Principal": {"Service": "delivery.logs.amazonaws.com"}, "Action": "s3:PutObject",
         "Resource": f"{bucket_arn}/AWSLogs/{account_id}/*",
         "Condition": {**conditions, "StringEquals": {
             "aws:SourceAccount": account_id, "s3:x-amz-acl": "bucket-owner-full-control"}}},
    ]


def _visibility(metric: str) -> aws.wafv2.WebAclRuleVisibilityConfigArgs:
    return aws.wafv2.WebAclRuleVisibilityConfigArgs(
        cloudwatch_metrics_enabled=True, metric_name=metric, sampled_requests_enabled=True)


def managed_rule(priority: int, group: str) -> aws.wafv2.WebAclRuleArgs:
    overrides = [aws.wafv2.WebAclRuleStatementManagedRuleGroupStatementRuleActionOverrideArgs(
        name=rule, action_to_use=aws.wafv2.WebAclRuleStatementManagedRuleGroupStatementRuleActionOverrideActionToUseArgs(  # noqa: E501
            count=aws.wafv2.WebAclRuleStatementManagedRuleGroupStatementRuleActionOverrideActionToUseCountArgs()))
        for rule in COUNT_ONLY.get(group, ())]
    return aws.wafv2.WebAclRuleArgs(
        name=group, priority=priority,
        override_action=aws.wafv2.WebAclRuleOverrideActionArgs(
            none=aws.wafv2.WebAclRuleOverrideActionNoneArgs()),  # type: ignore[no-untyped-call]
        statement=aws.wafv2.WebAclRuleStatementArgs(
            managed_rule_group_statement=aws.wafv2.WebAclRuleStatementManagedRuleGroupStatementArgs(
                vendor_name="AWS", name=group, rule_action_overrides=overrides or None)),
        visibility_config=_visibility(group))


@dataclass(frozen=True)
class WafArgs:
    site: str
    region: str
    account_id: pulumi.Input[str]
    kms_key_arn: pulumi.Input[str]
    load_balancer_arn: pulumi.Input[str]


class Waf(pulumi.ComponentResource):
    web_acl: aws.wafv2.WebAcl
    log_bucket: SecureBucket

    def __init__(self, name: str, args: WafArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("caresync:dr:Waf", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        prefix = site_prefix(args.site)
        self.web_acl = aws.wafv2.WebAcl(
            f"{name}-acl", name=prefix, scope="REGIONAL",
            description=f"CareSync {args.site}: AWS managed rule groups in front of the ALB",
            default_action=aws.wafv2.WebAclDefaultActionArgs(
                allow=aws.wafv2.WebAclDefaultActionAllowArgs()),
            rules=[managed_rule(i, group) for i, group in enumerate(MANAGED_RULE_GROUPS)],
            visibility_config=aws.wafv2.WebAclVisibilityConfigArgs(
                cloudwatch_metrics_enabled=True, metric_name=prefix,
                sampled_requests_enabled=True),
            tags={"caresync:site": args.site}, opts=child)
        aws.wafv2.WebAclAssociation(
            f"{name}-alb", resource_arn=args.load_balancer_arn,
            web_acl_arn=self.web_acl.arn, opts=child)

        account = pulumi.Output.from_input(args.account_id)
        bucket_name = account.apply(lambda a: waf_log_bucket_name(args.site, a))
        statements = pulumi.Output.all(bucket_name, account).apply(
            lambda v: log_delivery_statements(f"arn:aws:s3:::{v[0]}", v[1], args.region))
        self.log_bucket = SecureBucket(f"{name}-logs", SecureBucketArgs(
            bucket_name=bucket_name, kms_key_arn=args.kms_key_arn,
            expire_after_days=RECORDS_RETENTION_DAYS, noncurrent_days=RECORDS_RETENTION_DAYS,
            extra_statements=statements), opts=child)
        aws.wafv2.WebAclLoggingConfiguration(
            f"{name}-logging", resource_arn=self.web_acl.arn,
            log_destination_configs=[self.log_bucket.arn],
            redacted_fields=[aws.wafv2.WebAclLoggingConfigurationRedactedFieldArgs(
                single_header=aws.wafv2.WebAclLoggingConfigurationRedactedFieldSingleHeaderArgs(
                    name=header)) for header in REDACTED_HEADERS],
            # WAF checks that it may write to the bucket when logging is configured.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.log_bucket]))
        self.register_outputs({"webAclArn": self.web_acl.arn,
                               "logBucketName": self.log_bucket.name})

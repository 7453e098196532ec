"""DNS failover (dr stack): site health checks, the PRIMARY/SECONDARY records and their alarms.

The PRIMARY alias record (to the primary ALB) is guarded by a CALCULATED health check that is
healthy only while both children are: the primary's ``/api/health`` check and the traffic
switch (see :mod:`components.traffic_switch`). The SECONDARY alias record (standby ALB) has the
standby's ``/api/health`` check. Everything here is created ahead of time by ``pulumi up``;
failover itself never edits Route 53.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from caresync_dr.names import site_prefix

PRIMARY_SET_ID = "primary"
SECONDARY_SET_ID = "standby"
# Route 53 publishes health-check metrics in us-east-1 only, so their alarms live there.
ROUTE53_METRICS_REGION = "us-east-1"


@dataclass(frozen=True)
class SiteEndpoint:
    site: str
    alb_dns_name: pulumi.Input[str]
    alb_zone_id: pulumi.Input[str]


@dataclass(frozen=True)
class DnsFailoverArgs:
    hosted_zone_id: str
    record_name: str
    health_check_path: str
    interval_seconds: int
    failure_threshold: int
    checker_regions: Sequence[str]
    primary: SiteEndpoint
    standby: SiteEndpoint
    switch_health_check_id: pulumi.Input[str]
    alarm_topic_arn: pulumi.Input[str] | None  # an SNS topic in us-east-1 (prod's alerts)


class DnsFailover(pulumi.ComponentResource):
    primary_check: aws.route53.HealthCheck
    standby_check: aws.route53.HealthCheck
    primary_record_check: aws.route53.HealthCheck

    def __init__(self, name: str, args: DnsFailoverArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("caresync:dr:DnsFailover", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        def endpoint_check(site: SiteEndpoint) -> aws.route53.HealthCheck:
            return aws.route53.HealthCheck(
                f"{name}-{site.site}-health", type="HTTPS", fqdn=site.alb_dns_name, port=443,
                enable_sni=True, resource_path=args.health_check_path,
                request_interval=args.interval_seconds,
                failure_threshold=args.failure_threshold, regions=list(args.checker_regions),
                measure_latency=False, tags={"Name": f"{site_prefix(site.site)}-api-health"},
                opts=child)

        self.primary_check = endpoint_check(args.primary)
        self.standby_check = endpoint_check(args.standby)
        self.primary_record_check = aws.route53.HealthCheck(
            f"{name}-primary-record-health", type="CALCULATED",
            child_healthchecks=[self.primary_check.id, args.switch_health_check_id],
            child_health_threshold=2,
            tags={"Name": "caresync-primary-record (api health AND traffic switch)"},
            opts=child)

        def record(set_id: str, failover: str, site: SiteEndpoint,
                   check: aws.route53.HealthCheck) -> aws.route53.Record:
            return aws.route53.Record(
                f"{name}-{set_id}-record", zone_id=args.hosted_zone_id, name=args.record_name,
                type="A", set_identifier=set_id,
                failover_routing_policies=[aws.route53.RecordFailoverRoutingPolicyArgs(
                    type=failover)],
                aliases=[aws.route53.RecordAliasArgs(
                    name=site.alb_dns_name, zone_id=site.alb_zone_id,
                    evaluate_target_health=True)],
                health_check_id=check.id, opts=child)

        record(PRIMARY_SET_ID, "PRIMARY", args.primary, self.primary_record_check)
        record(SECONDARY_SET_ID, "SECONDARY", args.standby, self.standby_check)

        if args.alarm_topic_arn is not None:
            for key, check in (("primary", self.primary_check),
                               ("standby", self.standby_check),
                               ("primary-record", self.primary_record_check)):
                aws.cloudwatch.MetricAlarm(
                    f"{name}-{key}-health-alarm", name=f"{site_prefix(key)}-route53-health",
                    alarm_description=f"Route 53 health check {key} reports unhealthy",
                    namespace="AWS/Route53", metric_name="HealthCheckStatus",
                    dimensions={"HealthCheckId": check.id}, statistic="Minimum", period=60,
                    evaluation_periods=1, threshold=1, comparison_operator="LessThanThreshold",
                    treat_missing_data="breaching", alarm_actions=[args.alarm_topic_arn],
                    ok_actions=[args.alarm_topic_arn], region=ROUTE53_METRICS_REGION,
                    opts=child)
        self.register_outputs({"primaryHealthCheckId": self.primary_check.id,
                               "standbyHealthCheckId": self.standby_check.id,
                               "primaryRecordHealthCheckId": self.primary_record_check.id})

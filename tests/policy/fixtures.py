"""A compliant stack described by hand (camelCase inputs, as the engine sends them)."""

from __future__ import annotations

import json
from typing import Any

from caresync_dr.db.pgaudit import parameter_group_settings
from caresync_dr.detection import (
    GUARDDUTY_FEATURES,
    METRIC_NAMESPACE,
    guardduty_finding_pattern,
    signals_for,
)
from policy import detection_rules as dr
from policy.context import (
    AUTOSCALING_GROUP,
    BACKUP_PLAN,
    BUCKET,
    BUCKET_LIFECYCLE,
    BUCKET_PAB,
    BUCKET_POLICY,
    BUCKET_SSE,
    BUCKET_VERSIONING,
    DEFAULT_SECURITY_GROUP,
    LOAD_BALANCER,
    RDS_INSTANCE,
    RDS_PARAMETER_GROUP,
    ROUTE53_HEALTH_CHECK,
    ROUTE53_RECORD,
    SECURITY_GROUP,
    SG_INGRESS_RULE,
    SSM_PARAMETER,
    VPC,
    WAF_ASSOCIATION,
    WAF_WEB_ACL,
)
from policy.local import Resource

KEY = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
DR_VAULT = "arn:aws:backup:us-west-2:111122223333:backup-vault:caresync-dr"
ALB = "arn:aws:elasticloadbalancing:us-east-1:111122223333:loadbalancer/app/caresync/0a1b"
WEB_ACL = "arn:aws:wafv2:us-east-1:111122223333:regional/webacl/caresync/1234"
MONITORING = {"monitoringInterval": 60.0,
              "monitoringRoleArn": "arn:aws:iam::111122223333:role/rds-monitoring"}
PRIMARY_VAULT = "arn:aws:backup:us-east-1:111122223333:backup-vault:caresync-prod"
PGAUDIT_PARAMETERS = [{"name": p.name, "value": p.value} for p in parameter_group_settings()]


def tls_policy(bucket: str) -> str:
    arn = f"arn:aws:s3:::{bucket}"
    return json.dumps({"Version": "2012-10-17", "Statement": [{
        "Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
        "Resource": [arn, f"{arn}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]})


def bucket_set(name: str, bucket: str, *, backup: bool) -> list[Resource]:
    """A bucket and its five v7 sub-resources, targeting it by name as resolved values do."""
    resources = [
        Resource(BUCKET[0], name, {"bucket": bucket, "tags": {"purpose": "backups"} if backup
                                   else {"purpose": "traffic-switch"}}, resource_id=bucket),
        Resource(BUCKET_SSE[0], f"{name}-sse", {"bucket": bucket, "rules": [{
            "applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms",
                                                   "kmsMasterKeyId": KEY},
            "bucketKeyEnabled": True}]}),
        Resource(BUCKET_VERSIONING[0], f"{name}-versioning",
                 {"bucket": bucket, "versioningConfiguration": {"status": "Enabled"}}),
        Resource(BUCKET_PAB[0], f"{name}-pab", {
            "bucket": bucket, "blockPublicAcls": True, "blockPublicPolicy": True,
            "ignorePublicAcls": True, "restrictPublicBuckets": True}),
        Resource(BUCKET_POLICY[0], f"{name}-tls", {"bucket": bucket,
                                                   "policy": tls_policy(bucket)}),
    ]
    if backup:
        resources.append(Resource(BUCKET_LIFECYCLE[0], f"{name}-lifecycle", {
            "bucket": bucket, "rules": [
                {"id": "retention", "status": "Enabled", "filter": {"prefix": "backups/"},
                 "expiration": {"days": 30},
                 "noncurrentVersionExpiration": {"noncurrentDays": 30}},
                {"id": "keep-incidents", "status": "Enabled",
                 "filter": {"prefix": "incidents/"}, "expiration": {"days": 2190}},
                {"id": "abort", "status": "Enabled", "filter": {"prefix": ""},
                 "abortIncompleteMultipartUpload": {"daysAfterInitiation": 7}}]}))
    return resources


def database() -> list[Resource]:
    return [
        Resource(RDS_PARAMETER_GROUP[0], "db-params", {
            "name": "caresync-pg15", "family": "postgres15",
            "parameters": [{"name": "rds.force_ssl", "value": "1"},
                           {"name": "log_connections", "value": "1"},
                           *PGAUDIT_PARAMETERS]},
                 resource_id="caresync-pg15"),
        Resource(RDS_INSTANCE[0], "db", {
            "engine": "postgres", "storageEncrypted": True, "kmsKeyId": KEY,
            "publiclyAccessible": False, "deletionProtection": True,
            "backupRetentionPeriod": 30.0, "parameterGroupName": "caresync-pg15",
            **MONITORING}),
        # In-region replicas name their source by ARN; they need no deletion protection.
        Resource(RDS_INSTANCE[0], "db-replica-1", {
            "replicateSourceDb": "arn:aws:rds:us-east-1:111122223333:db:caresync-db",
            "kmsKeyId": KEY, "publiclyAccessible": False,
            "deletionProtection": False, "parameterGroupName": "caresync-pg15", **MONITORING}),
        # The other site's copy of a writer: a cross-region replica, a key of its region.
        Resource(RDS_INSTANCE[0], "db-standby", {
            "replicateSourceDb": "arn:aws:rds:us-west-2:111122223333:db:caresync-standby-db",
            "storageEncrypted": True, "kmsKeyId": KEY, "publiclyAccessible": False,
            "deletionProtection": True, "backupRetentionPeriod": 30.0,
            "parameterGroupName": "caresync-pg15", **MONITORING}),
        Resource(SSM_PARAMETER[0], "db-endpoint", {
            "name": "/caresync-dr/primary/database-host", "type": "SecureString",
            "keyId": "alias/caresync-primary", "value": "db.example:5432"}),
    ]


def network() -> list[Resource]:
    return [
        Resource(SECURITY_GROUP[0], "lb-sg", {"ingress": [
            {"protocol": "tcp", "fromPort": 443.0, "toPort": 443.0, "cidrBlocks": ["0.0.0.0/0"]},
            {"protocol": "tcp", "fromPort": 80.0, "toPort": 80.0, "cidrBlocks": ["0.0.0.0/0"]},
        ]}, resource_id="sg-0lb"),
        Resource(SECURITY_GROUP[0], "app-sg", {"ingress": []}, resource_id="sg-0app"),
        Resource(SG_INGRESS_RULE[0], "app-from-lb", {
            "securityGroupId": "sg-0app", "referencedSecurityGroupId": "sg-0lb",
            "ipProtocol": "tcp", "fromPort": 8080.0, "toPort": 8080.0}),
        Resource(LOAD_BALANCER[0], "alb", {"loadBalancerType": "application",
                                           "securityGroups": ["sg-0lb"]}, resource_id=ALB),
        Resource(WAF_WEB_ACL[0], "web-acl", {"scope": "REGIONAL", "rules": [
            {"name": group, "priority": float(i), "overrideAction": {"none": {}},
             "statement": {"managedRuleGroupStatement": {"vendorName": "AWS", "name": group}}}
            for i, group in enumerate(("AWSManagedRulesCommonRuleSet",
                                       "AWSManagedRulesKnownBadInputsRuleSet"))]},
                 resource_id=WEB_ACL),
        Resource(WAF_ASSOCIATION[0], "web-acl-alb", {"resourceArn": ALB, "webAclArn": WEB_ACL}),
        Resource(VPC[0], "vpc", {"cidrBlock": "10.10.0.0/16"}, resource_id="vpc-0"),
        Resource(DEFAULT_SECURITY_GROUP[0], "vpc-default-sg", {
            "vpcId": "vpc-0", "ingress": [], "egress": []}),
        Resource(AUTOSCALING_GROUP[0], "app-asg", {
            "name": "caresync-primary-app", "minSize": 2.0, "maxSize": 6.0,
            "launchTemplate": {"id": "lt-0123456789abcdef0", "version": "3"}},
            ignore_changes=("launchTemplate.version",)),
    ]


def failover_dns() -> list[Resource]:
    return [
        Resource(ROUTE53_HEALTH_CHECK[0], "primary-health", {
            "type": "HTTPS", "fqdn": "primary.example", "resourcePath": "/api/health",
            "requestInterval": 10.0, "failureThreshold": 3.0}, resource_id="hc-1"),
        Resource(ROUTE53_RECORD[0], "app-primary", {
            "name": "app.caresync.health", "type": "A", "setIdentifier": "primary",
            "failoverRoutingPolicies": [{"type": "PRIMARY"}], "healthCheckId": "hc-1",
            "aliases": [{"name": "p.elb", "zoneId": "Z1", "evaluateTargetHealth": True}]}),
        Resource(ROUTE53_RECORD[0], "app-secondary", {
            "name": "app.caresync.health", "type": "A", "setIdentifier": "secondary",
            "failoverRoutingPolicies": [{"type": "SECONDARY"}],
            "aliases": [{"name": "s.elb", "zoneId": "Z2", "evaluateTargetHealth": True}]}),
    ]


def backup_plan(schedule: str = "cron(0 */6 * * ? *)",
                copy_to: str | None = DR_VAULT) -> Resource:
    rule: dict[str, Any] = {"ruleName": "every-6h", "targetVaultName": "caresync",
                            "schedule": schedule, "lifecycle": {"deleteAfter": 30.0}}
    if copy_to is not None:
        rule["copyActions"] = [{"destinationVaultArn": copy_to,
                                "lifecycle": {"deleteAfter": 30.0}}]
    return Resource(BACKUP_PLAN[0], "backup-plan", {"name": "caresync", "rules": [rule]})


def detection(stack: str = "prod") -> list[Resource]:
    """GuardDuty routed to the security topic, the trail in CloudWatch Logs, every signal."""
    site, region = ("primary", "us-east-1") if stack == "prod" else ("standby", "us-west-2")
    topic = f"arn:aws:sns:{region}:111122223333:caresync-{site}-security"
    group = f"/caresync-dr/{site}/cloudtrail"
    group_arn = f"arn:aws:logs:{region}:111122223333:log-group:{group}"
    rule = f"caresync-{site}-guardduty-findings"
    resources = [
        Resource(dr.TOPIC[0], "security-topic", {"name": f"caresync-{site}-security",
                                           "kmsMasterKeyId": KEY},
                 outputs={"arn": topic}, resource_id=topic),
        Resource(dr.TOPIC_SUBSCRIPTION[0], "security-email-1", {
            "topic": topic, "protocol": "email", "endpoint": "security@caresync.health"}),
        Resource(dr.DETECTOR[0], "guardduty", {"enable": True}, resource_id="0123abcd" * 4),
        *(Resource(dr.DETECTOR_FEATURE[0], f"guardduty-{name.lower()}", {
            "detectorId": "0123abcd" * 4, "name": name, "status": "ENABLED"})
          for name in GUARDDUTY_FEATURES),
        Resource(dr.EVENT_RULE[0], "findings-rule", {
            "name": rule, "eventPattern": guardduty_finding_pattern(4.0)}, resource_id=rule),
        Resource(dr.EVENT_TARGET[0], "findings-to-topic", {"rule": rule, "arn": topic}),
        Resource(dr.LOG_GROUP[0], "trail-logs", {"name": group, "kmsKeyId": KEY,
                                           "retentionInDays": 365.0},
                 outputs={"arn": group_arn}, resource_id=group),
        Resource(dr.TRAIL[0], "trail", {
            "cloudWatchLogsGroupArn": f"{group_arn}:*",
            "cloudWatchLogsRoleArn": "arn:aws:iam::111122223333:role/trail-logs",
            "includeGlobalServiceEvents": stack == "prod"}),
    ]
    for signal in signals_for(stack == "prod"):
        resources += [
            Resource(dr.METRIC_FILTER[0], f"{signal.key}-filter", {
                "name": signal.key, "logGroupName": group, "pattern": signal.pattern,
                "metricTransformation": {"name": signal.metric_name,
                                         "namespace": METRIC_NAMESPACE, "value": "1"}}),
            Resource(dr.METRIC_ALARM[0], f"{signal.key}-alarm", {
                "namespace": METRIC_NAMESPACE, "metricName": signal.metric_name,
                "threshold": float(signal.threshold), "alarmActions": [topic]}),
        ]
    return resources


def compliant_stack(stack: str = "prod") -> list[Resource]:
    """Compliant for ``stack``: its backups copy to the other site's region."""
    vault = DR_VAULT if stack == "prod" else PRIMARY_VAULT
    return [*bucket_set("backups", "caresync-backups-prod", backup=True),
            *bucket_set("switch", "caresync-switch", backup=False),
            *database(), *network(), *failover_dns(), backup_plan(copy_to=vault),
            *detection(stack)]

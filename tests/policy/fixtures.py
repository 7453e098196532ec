"""A compliant stack described by hand (camelCase inputs, as the engine sends them)."""

from __future__ import annotations

import json
from typing import Any

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
                           {"name": "log_connections", "value": "1"}]},
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


def compliant_stack(stack: str = "prod") -> list[Resource]:
    """Compliant for ``stack``: its backups copy to the other site's region."""
    vault = DR_VAULT if stack == "prod" else PRIMARY_VAULT
    return [*bucket_set("backups", "caresync-backups-prod", backup=True),
            *bucket_set("switch", "caresync-switch", backup=False),
            *database(), *network(), *failover_dns(), backup_plan(copy_to=vault)]

"""The IAM actions a failover or switchover run needs: the single source for the operator role
(dr stack).

failover.py's tests record every AWS call a run makes and check each one is listed here, so the
role stays least-privilege and never falls behind the code. Grouped by the resource scope the
policy can narrow them to.
"""

from __future__ import annotations

from dataclasses import dataclass

# The IAM role an operator assumes to run failover (components/operator_role.py creates it;
# commands name it when AWS credentials are missing). Named in caresync_dr.names.
from caresync_dr.names import OPERATOR_ROLE_NAME

__all__ = ["OPERATOR_GRANTS", "OPERATOR_ROLE_NAME", "Grant"]


@dataclass(frozen=True)
class Grant:
    """Actions and a description of the resources they are limited to in the role policy."""

    sid: str
    actions: tuple[str, ...]
    scope: str


OPERATOR_GRANTS: tuple[Grant, ...] = (
    Grant("ReadInventoryLockJournal", (
        "ssm:GetParameter", "ssm:PutParameter", "ssm:DeleteParameter",
    ), "the inventory, lock and journal parameters under /caresync-dr/ in the standby region"),
    Grant("DatabaseEndpointParameters", (
        "ssm:GetParameter", "ssm:PutParameter",
    ), "each site's database endpoint parameter"),
    Grant("DescribeDatabases", (
        "rds:DescribeDBInstances",
    ), "the site databases and replicas"),
    Grant("PromoteDatabases", (
        "rds:PromoteReadReplica", "rds:ModifyDBInstance",
    ), "the standby replica and the primary's in-region replicas"),
    Grant("ReplicaLagMetrics", (
        "cloudwatch:GetMetricStatistics", "cloudwatch:GetMetricData",
    ), "CloudWatch metrics (no resource-level scoping exists for these reads)"),
    Grant("ScaleAppTier", (
        "autoscaling:DescribeAutoScalingGroups", "autoscaling:UpdateAutoScalingGroup",
        "autoscaling:StartInstanceRefresh", "autoscaling:DescribeInstanceRefreshes",
    ), "the two sites' Auto Scaling groups"),
    Grant("LaunchTemplateReads", (
        "ec2:DescribeLaunchTemplates",
    ), "launch template reads for the readiness check (no resource-level scoping exists)"),
    Grant("TargetHealth", (
        "elasticloadbalancing:DescribeTargetHealth",
    ), "target health reads (no resource-level scoping exists)"),
    Grant("FenceOldPrimaryIngress", (
        "ec2:DescribeSecurityGroups", "ec2:RevokeSecurityGroupIngress",
    ), "the primary database security group"),
    Grant("TrafficSwitchAndTimeline", (
        "s3:GetObject", "s3:PutObject",
    ), "the traffic-switch object and the incident-timeline prefix of the standby backup bucket"),
    Grant("BucketKeys", (
        "kms:GenerateDataKey", "kms:Decrypt",
    ), "the standby region's backup key (SSE-KMS objects)"),
    Grant("ParameterKeys", (
        "kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey",
    ), "the two site keys: the endpoint parameters and the inventory are SecureStrings, which "
       "SSM decrypts and encrypts with the caller's permissions on the key"),
    Grant("ReadMasterSecret", (
        "secretsmanager:GetSecretValue",
    ), "the caresync/db/master secret in each region: a planned switchover logs in to both "
       "databases as the master user to fence the writer and open the new one"),
    Grant("Notify", (
        "sns:Publish",
    ), "both sites' alert topics: incident e-mail goes to the standby's first, the primary's "
       "when the standby does not answer"),
    Grant("NotifySecret", (
        "secretsmanager:GetSecretValue",
    ), "the notify secret (notifySecretName: chat webhook URL, Statuspage API key) in both "
       "regions, standby first"),
    Grant("BestEffortRoute53", (
        "route53:GetHealthCheckStatus", "route53:ChangeResourceRecordSets",
        "route53:ListResourceRecordSets", "route53:UpdateHealthCheck", "route53:GetHealthCheck",
    ), "the failover records' zone and the two sites' health checks (best effort only; a "
       "reversed failover pins the primary record's calculated check)"),
)


def required_actions() -> frozenset[str]:
    return frozenset(action for grant in OPERATOR_GRANTS for action in grant.actions)


# The in-region operations (issue 14): app.py (status, restart, deploy, rollback) and pitr.py,
# on either site in its own region. A second policy on the operator role (components/
# operator_role.py); tests/inregion/test_permissions.py records every call of every mode and
# checks it is listed here.
IN_REGION_GRANTS: tuple[Grant, ...] = (
    Grant("InRegionLockJournal", (
        "ssm:GetParameter", "ssm:PutParameter", "ssm:DeleteParameter",
    ), "each site's in-region lock and journals (/caresync-dr/<site>/in-region/*)"),
    Grant("InRegionEndpoints", (
        "ssm:GetParameter", "ssm:PutParameter",
    ), "each site's database endpoint parameter (pitr.py repoints it)"),
    Grant("InRegionAppTier", (
        "autoscaling:DescribeAutoScalingGroups", "autoscaling:StartInstanceRefresh",
        "autoscaling:DescribeInstanceRefreshes", "autoscaling:RollbackInstanceRefresh",
    ), "the two sites' Auto Scaling groups"),
    Grant("InRegionTemplates", (
        "ec2:CreateLaunchTemplateVersion",
    ), "the two sites' launch templates (rollback --to-ami)"),
    Grant("InRegionReads", (
        "ec2:DescribeLaunchTemplateVersions", "ec2:DescribeImages", "ec2:DescribeVpcs",
        "ec2:DescribeSecurityGroups", "elasticloadbalancing:DescribeTargetHealth",
        "elasticloadbalancing:DescribeTargetGroups", "cloudwatch:GetMetricData",
    ), "reads without resource-level permissions"),
    # The Service Authorization Reference gives these resource types (db*, auto-backup*):
    # they are scoped to each site's region and account. A call that names no instance (the
    # writer is found by its endpoint; a region's automated backups, replicated ones
    # included) is authorized against the region's wildcard ARN, so the grant is the
    # region's ``db:*`` and ``auto-backup:*``, not one identifier pattern.
    Grant("InRegionDatabaseReads", (
        "rds:DescribeDBInstances", "rds:DescribeDBInstanceAutomatedBackups",
    ), "the instances and automated backups in each site's region"),
    Grant("InRegionAlarms", (
        "cloudwatch:DescribeAlarms",
    ), "each site's alarms (caresync-<site>-*)"),
    Grant("PointInTimeRestore", (
        "rds:RestoreDBInstanceToPointInTime", "rds:AddTagsToResource",
    ), "each site's database generations, their subnet and parameter groups, the default "
       "option groups and automated backups"),
    Grant("FenceDamagedWriter", (
        "rds:ModifyDBInstance",
    ), "each site's database generations (moved into the no-access group)"),
    Grant("RestoreKeys", (
        "kms:DescribeKey", "kms:CreateGrant", "kms:Decrypt", "kms:Encrypt",
        "kms:GenerateDataKey",
    ), "the two site keys: the restored instance's key, the SecureString endpoint, the app "
       "secret, the incident timelines"),
    Grant("AppCredentialsForChecks", (
        "secretsmanager:GetSecretValue",
    ), "caresync/db/app in each region (pitr.py verifies as the app's login)"),
    Grant("InRegionTimelines", (
        "s3:PutObject",
    ), "the incident-timeline prefix of each site's backup bucket"),
)


def in_region_actions() -> frozenset[str]:
    return frozenset(action for grant in IN_REGION_GRANTS for action in grant.actions)

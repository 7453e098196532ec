"""The resources each grant of the app-operator, incident-responder, credential-rotation and
backup roles is narrowed to (the dr stack knows both sites: its own values and the prod stack's
outputs). Grant sid -> ARNs, for :class:`components.command_roles.CommandRole`.

Names come from :mod:`caresync_dr.names`, as the commands' own do, so a policy names exactly
what a command touches. Where a command may act on any resource of a kind (a breach names any
instance, any IAM user or role of the account), the grant is the kind's ARN pattern in each
site's region, never ``"*"``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from caresync_dr import names
from caresync_dr.db.secrets import secret_arn_pattern
from caresync_dr.retention import INCIDENT_PREFIX
from components.operator_role import AWS_SERVICE_GRANTS_ONLY, Conditioned, GrantScope

BACKUP_PREFIX = "backups/"   # caresync_dr.backup.storage.DEFAULT_PREFIX (a test keeps them equal)


@dataclass(frozen=True)
class Sites:
    """What the policies need of the two sites, resolved."""

    account: str
    primary_region: str
    standby_region: str
    site_keys: Sequence[str]          # both sites' KMS key ARNs
    alert_topics: Sequence[str]       # both sites' alert topic ARNs
    backup_vaults: Sequence[str]      # both sites' AWS Backup vault ARNs

    @property
    def regions(self) -> tuple[tuple[str, str], ...]:
        return (("primary", self.primary_region), ("standby", self.standby_region))

    def arn(self, service: str, region: str, resource: str, account: bool = True) -> str:
        return f"arn:aws:{service}:{region}:{self.account if account else ''}:{resource}"

    def each(self, service: str, resource: str, account: bool = True) -> list[str]:
        """``resource`` (``{site}`` filled in) in each site's region."""
        return [self.arn(service, region, resource.format(site=site), account)
                for site, region in self.regions]

    def parameters(self, *paths: str) -> list[str]:
        return [self.arn("ssm", region, f"parameter{path.format(site=site)}")
                for site, region in self.regions for path in paths]

    def secrets(self, name: str, regions: Sequence[str] | None = None) -> list[str]:
        return [secret_arn_pattern(region, self.account, name)
                for region in (regions or (self.standby_region, self.primary_region))]

    @property
    def app_groups(self) -> list[str]:
        return [self.arn("autoscaling", region, f"autoScalingGroup:*:autoScalingGroupName/"
                         f"{names.app_name(site)}") for site, region in self.regions]

    @property
    def backup_buckets(self) -> list[str]:
        return [f"arn:aws:s3:::{names.backup_bucket_name(site, self.account)}"
                for site, _ in self.regions]

    @property
    def timelines(self) -> list[str]:
        return [f"{bucket}/{INCIDENT_PREFIX}*" for bucket in self.backup_buckets]


def rotation_resources(s: Sites) -> dict[str, Sequence[str]]:
    """ROTATION_GRANTS (the credential-rotation role; the incident responder's 2nd policy)."""
    return {
        "RotationLockJournal": s.parameters(names.ROTATION_PARAMETERS),
        "RotationEndpoints": s.parameters(names.endpoint_parameter_name("{site}")),
        "DatabaseSecrets": s.secrets("caresync/db/*"),
        "PromoteSecretReplicas": s.secrets("caresync/db/*", [s.standby_region]),
        "RotationAppRefresh": s.app_groups,
        "RotationTimelines": s.timelines,
        "RotationKeys": s.site_keys,
    }


def breach_resources(s: Sites) -> dict[str, Sequence[str]]:
    """BREACH_GRANTS and BREACH_DENIES (the incident responder's 1st policy)."""
    instances = s.each("ec2", "instance/*")
    groups = s.each("ec2", "security-group/*")
    iam = f"arn:aws:iam::{s.account}"
    return {
        "BreachLockJournal": s.parameters(names.BREACH_PARAMETERS),
        "IsolateInstances": [*instances, *s.each("ec2", "network-interface/*"), *groups],
        "QuarantineGroups": [*groups, *s.each("ec2", "vpc/*")],
        # EBS snapshot ARNs carry no account (Service Authorization Reference, Amazon EC2).
        "EvidenceSnapshots": [*s.each("ec2", "volume/*"),
                              *s.each("ec2", "snapshot/*", account=False), *instances,
                              *groups],
        "DetachFromAppTier": s.app_groups,
        "DeregisterTargets": s.each("elasticloadbalancing", "targetgroup/*"),
        "RevokeUserKeys": [f"{iam}:user/*"],
        "RevokeRoleSessions": [f"{iam}:role/*"],
        "NoPoliciesOnOperatorRoles": [f"{iam}:role/{names.ROLE_NAME_PREFIX}*"],
        "NoPoliciesOnServiceRoles": [
            f"{iam}:role/{name}" for site, _ in s.regions for name in (
                names.trail_logs_role_name(site), names.backup_service_role_name(site),
                names.rds_monitoring_role_name(site))],
        "TrailLogging": s.each("cloudtrail", "trail/" + names.trail_name("{site}")),
        # ``log-group:NAME*`` matches the group's ARN with and without its ``:*`` suffix.
        "Investigate": [*s.each("logs", "log-group:" + names.trail_log_group_name("{site}")
                                + "*"),
                        *s.each("logs", "log-group:/aws/rds/instance/"
                                + names.db_identifier("{site}") + "*")],
        "BreachNotify": [*s.each("sns", names.security_topic_name("{site}")),
                         *s.alert_topics],
        "BreachNotifySecret": s.secrets(names.NOTIFY_SECRET_NAME),
        "BreachReads": ["*"],
    }


def backup_resources(s: Sites) -> dict[str, GrantScope]:
    """BACKUP_GRANTS (the backup role: backup.py, rollback.sh, restore_check.py)."""
    scratch = s.each("rds", "db:" + names.db_identifier("{site}") + "*-restoretest-*")
    return {
        "BackupDataKeys": s.site_keys,
        "BackupObjects": [f"{bucket}/{BACKUP_PREFIX}*" for bucket in s.backup_buckets],
        "ListBackups": s.backup_buckets,
        "RestoreTestSnapshots": [
            *scratch, *s.each("rds", "snapshot:rds:" + names.db_identifier("{site}") + "*"),
            *s.each("rds", "subgrp:" + names.db_identifier("{site}")),
            *s.each("rds", "pg:" + names.site_prefix("{site}") + "-postgres*"),
            *s.each("rds", "og:default:postgres-*")],
        "RestoreTestInstances": scratch,
        "RestoreTestSources": [*s.each("rds", "db:" + names.db_identifier("{site}") + "*"),
                               *s.each("rds", "snapshot:*")],
        "RestoreTestKeys": s.site_keys,
        "RestoreTestKeyGrants": Conditioned(s.site_keys, AWS_SERVICE_GRANTS_ONLY),
        # An RDS recovery point of AWS Backup is an RDS snapshot named awsbackup:job-...
        "RestoreTestRecoveryPoints": [*s.backup_vaults,
                                      *s.each("rds", "snapshot:awsbackup:*")],
        "PassRestoreRole": Conditioned(
            [f"arn:aws:iam::{s.account}:role/{names.backup_service_role_name(site)}"
             for site, _ in s.regions],
            {"StringEquals": {"iam:PassedToService": "backup.amazonaws.com"}}),
    }


def command_role_resources(s: Sites) -> Mapping[str, GrantScope]:
    """Grant sid -> ARNs for every grant of the incident-responder, credential-rotation and
    backup roles (the app operator's come from components.operator_role.in_region_resources)."""
    return {**rotation_resources(s), **breach_resources(s), **backup_resources(s)}

"""The IAM actions every operator command needs, and the role each command runs as: the single
source for the operator roles of the dr stack (components/operator_role.py,
components/command_roles.py).

:data:`ROLES` says which role runs which command and why the roles are separate;
:func:`role_of` answers for one command (its missing-credentials message names that role).
Every test that runs a command records each AWS call it makes and fails when the command's role
does not grant it (tests/iam_calls.py), so each role stays least-privilege and never falls
behind the code. Grants are grouped by the resource scope the policy can narrow them to.
"""

from __future__ import annotations

from dataclasses import dataclass

# The IAM role an operator assumes to run failover (components/operator_role.py creates it;
# commands name it when AWS credentials are missing). Named in caresync_dr.names.
from caresync_dr.names import (
    APP_OPERATOR_ROLE_NAME,
    BACKUP_ROLE_NAME,
    CREDENTIAL_ROTATION_ROLE_NAME,
    INCIDENT_RESPONDER_ROLE_NAME,
    OPERATOR_ROLE_NAME,
)

__all__ = ["OPERATOR_GRANTS", "OPERATOR_ROLE_NAME", "ROLES", "Grant", "role_of"]


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
    # S3 answers a GetObject of a missing key with 403 AccessDenied, not 404 NoSuchKey, to a
    # caller without s3:ListBucket on the bucket (Amazon S3 API Reference, GetObject,
    # "Permissions"); failover reads NoSuchKey as "no switch object". The backup buckets'
    # ListBucket is FailbackBucketReplication's.
    Grant("TrafficSwitchMissingObject", (
        "s3:ListBucket",
    ), "the traffic-switch bucket (its one key)"),
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
# on either site in its own region. The policy of the app operator role (ROLES below;
# components/command_roles.py); tests/inregion/test_permissions.py records every call of every
# mode and checks it is listed here.
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
        "kms:DescribeKey", "kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey",
    ), "the two site keys: the restored instance's key, the SecureString endpoint, the app "
       "secret, the incident timelines"),
    # kms:CreateGrant unconditioned lets a session give any principal, of any account, lasting
    # use of a site key (a grant outlives the session); RDS creates the restored instance's
    # grant itself, which kms:GrantIsForAWSResource says (AWS KMS Developer Guide, "AWS KMS
    # condition keys": kms:GrantIsForAWSResource).
    Grant("RestoreKeyGrants", (
        "kms:CreateGrant",
    ), "the two site keys, only for grants an AWS service (RDS) creates for the restore"),
    Grant("AppCredentialsForChecks", (
        "secretsmanager:GetSecretValue",
    ), "caresync/db/app in each region (pitr.py verifies as the app's login)"),
    Grant("InRegionTimelines", (
        "s3:PutObject",
    ), "the incident-timeline prefix of each site's backup bucket"),
    # Checked by Auto Scaling on the caller, never called by the code: a refresh whose
    # DesiredConfiguration names a launch template version (deploy, rollback) needs
    # ec2:RunInstances from that template and iam:PassRole for its instance profile's role
    # (EC2 Auto Scaling User Guide, "Control Amazon EC2 launch template usage in Auto Scaling
    # groups"); tests/iam_calls.py records both for such a request.
    Grant("LaunchFromSiteTemplates", (
        "ec2:RunInstances",
    ), "anything of each site's region, only when launched from one of the two sites' "
       "launch templates (condition ec2:LaunchTemplate)"),
    Grant("PassAppInstanceRole", (
        "iam:PassRole",
    ), "the app instance roles caresync-<site>-app, passed to EC2 only"),
)


def in_region_actions() -> frozenset[str]:
    return frozenset(action for grant in IN_REGION_GRANTS for action in grant.actions)


# --- Every operator command's role -----------------------------------------------------------
#
# Failover is not the only command that calls AWS at 3 a.m.; each command below runs as one IAM
# role of the dr stack, and every test that runs a command checks each AWS call it makes is
# granted to that command's role (tests/iam_calls.py, tests/conftest.py). The grants above keep
# their names; what follows adds the other commands' grants and says which role holds what.

# failback.py re-protects the old primary: it checks each backup bucket exists and reads its
# replication before pointing replication back (a second policy on the operator role).
FAILBACK_GRANTS: tuple[Grant, ...] = (
    Grant("FailbackBucketReplication", (
        "s3:ListBucket", "s3:GetBucketReplication",
    ), "the two sites' backup buckets (HeadBucket is authorized as s3:ListBucket)"),
    Grant("FailbackRegionAnswers", (
        "rds:DescribeDBInstances",
    ), "every database of each site's region: the 'other region answers' check lists "
       "instances without naming one, which IAM authorizes against the region's db:*"),
)

# The scheduled rotation of the database credentials (rotate_db_credentials.py) and db_roles.py
# (it creates the database roles as the master user, each with its secret's password); the
# breach response runs the same rotation, so this is also a policy of the incident responder.
ROTATION_GRANTS: tuple[Grant, ...] = (
    Grant("RotationLockJournal", (
        "ssm:GetParameter", "ssm:PutParameter", "ssm:DeleteParameter",
    ), "the rotation's lock and journal parameters (/caresync-dr/rotation/*) in both "
       "regions, standby first"),
    Grant("RotationEndpoints", (
        "ssm:GetParameter",
    ), "each site's database endpoint parameter (the run logs in as the master user)"),
    Grant("DatabaseSecrets", (
        "secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret",
        "secretsmanager:ListSecretVersionIds", "secretsmanager:PutSecretValue",
        "secretsmanager:UpdateSecretVersionStage",
    ), "the database secrets caresync/db/* in both regions (master, app, backup, restore)"),
    Grant("PromoteSecretReplicas", (
        "secretsmanager:StopReplicationToReplica",
    ), "the database secrets' replicas in the standby region: with the primary region down, "
       "the replica is made standalone so the new password can be written"),
    Grant("RotationAppRefresh", (
        "autoscaling:StartInstanceRefresh", "autoscaling:DescribeAutoScalingGroups",
        "autoscaling:DescribeInstanceRefreshes",
    ), "the two sites' Auto Scaling groups (the instances boot with the new secret)"),
    Grant("RotationTimelines", (
        "s3:PutObject",
    ), "the incident-timeline prefix of each site's backup bucket"),
    Grant("RotationKeys", (
        "kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey",
    ), "the two site keys: Secrets Manager and SSM (SecureString) encrypt and decrypt with the "
       "caller's permissions on the key, and the timelines are SSE-KMS objects"),
)

# The data-breach response (breach.py): contain instances, revoke credentials, more logging,
# investigate, notify. Only the security team assumes it (it can quarantine any instance and
# disable any access key of the account); its second policy is ROTATION_GRANTS.
BREACH_GRANTS: tuple[Grant, ...] = (
    Grant("BreachLockJournal", (
        "ssm:GetParameter", "ssm:PutParameter", "ssm:DeleteParameter",
    ), "the breach response's lock and journal parameters (/caresync-dr/breach/*) in both "
       "regions, standby first"),
    Grant("IsolateInstances", (
        "ec2:ModifyInstanceAttribute", "ec2:ModifyNetworkInterfaceAttribute",
        "ec2:DescribeInstanceAttribute",
    ), "any instance, its network interfaces and security groups in either site's region (an "
       "incident may name any instance of the account)"),
    Grant("QuarantineGroups", (
        "ec2:CreateSecurityGroup", "ec2:RevokeSecurityGroupEgress",
    ), "security groups and VPCs in either site's region (a rule-less group per VPC)"),
    Grant("EvidenceSnapshots", (
        "ec2:CreateSnapshot", "ec2:CreateTags",
    ), "volumes, snapshots, instances and security groups in either site's region (evidence "
       "snapshots and the incident tag)"),
    Grant("DetachFromAppTier", (
        "autoscaling:DetachInstances", "autoscaling:SetInstanceProtection",
        "autoscaling:CancelInstanceRefresh",
    ), "the two sites' Auto Scaling groups (a breach cancels a rotation's refresh that would "
       "boot instances with the compromised login)"),
    Grant("DeregisterTargets", (
        "elasticloadbalancing:DeregisterTargets",
    ), "target groups in either site's region"),
    Grant("RevokeUserKeys", (
        "iam:ListAccessKeys", "iam:GetAccessKeyLastUsed", "iam:UpdateAccessKey",
        "iam:GetUserPolicy", "iam:PutUserPolicy",
    ), "the account's IAM users (a leaked key may belong to any of them)"),
    Grant("RevokeRoleSessions", (
        "iam:GetRole", "iam:GetRolePolicy", "iam:PutRolePolicy",
    ), "the account's IAM roles (AWSRevokeOlderSessions), except the caresync-dr-* roles: "
       "see BREACH_DENIES"),
    Grant("TrailLogging", (
        "cloudtrail:GetTrailStatus", "cloudtrail:GetEventSelectors",
        "cloudtrail:PutEventSelectors", "cloudtrail:StartLogging",
    ), "each site's trail caresync-<site>-audit"),
    Grant("Investigate", (
        "logs:FilterLogEvents",
    ), "each site's trail log group and its databases' PostgreSQL log groups"),
    Grant("BreachNotify", (
        "sns:Publish",
    ), "both sites' security and alert topics"),
    Grant("BreachNotifySecret", (
        "secretsmanager:GetSecretValue",
    ), "the notify secret caresync/notify in both regions (chat webhook, Statuspage key)"),
    Grant("BreachReads", (
        "ec2:DescribeInstances", "ec2:DescribeSecurityGroups", "ec2:DescribeSnapshots",
        "autoscaling:DescribeAutoScalingInstances", "elasticloadbalancing:DescribeTargetGroups",
        "elasticloadbalancing:DescribeTargetHealth", "cloudtrail:LookupEvents",
        "iam:GetAccountSummary",
    ), "reads without resource-level permissions"),
)
# Statements that deny: the responder may write AWSRevokeOlderSessions on any role but never a
# policy on the operator roles themselves (it would grant itself anything). IAM has no
# condition key for an inline policy's name or content, so the Allow of iam:PutRolePolicy /
# iam:PutUserPolicy lets a responder session write any policy on any other role or user
# (docs/operator-roles.md, "What the incident responder can still do"); the denies close what
# can be closed by resource: every way to change an operator role's permissions or trust, and
# the service roles a breach response must keep working.
BREACH_DENIES: tuple[Grant, ...] = (
    Grant("NoPoliciesOnOperatorRoles", (
        "iam:PutRolePolicy", "iam:DeleteRolePolicy", "iam:AttachRolePolicy",
        "iam:DetachRolePolicy", "iam:UpdateAssumeRolePolicy", "iam:PutRolePermissionsBoundary",
        "iam:DeleteRolePermissionsBoundary", "iam:UpdateRole", "iam:PassRole",
    ), "every caresync-dr-* role: revoking their sessions is the account administrators' job"),
    Grant("NoPoliciesOnServiceRoles", (
        "iam:PutRolePolicy",
    ), "the sites' service roles: the trail's log delivery (a Deny written there blinds the "
       "trail's CloudWatch Logs copy mid-incident), AWS Backup's and RDS Enhanced "
       "Monitoring's; AWS services hold their sessions, no intruder does"),
)

# backup.py (scheduled, every 6 h), rollback.sh and restore_check.py (daily): the backup's data
# key wrapped under both site keys, the backup objects in each site's bucket, and the RDS side
# of the restore test (a scratch instance from the newest automated snapshot, or an AWS Backup
# recovery point, deleted afterwards).
BACKUP_GRANTS: tuple[Grant, ...] = (
    Grant("BackupDataKeys", (
        "kms:GenerateDataKey", "kms:Encrypt", "kms:Decrypt",
    ), "the two site keys: each backup's data key is wrapped under both (decision D2), either "
       "unwraps it; the objects are SSE-KMS"),
    Grant("BackupObjects", (
        "s3:PutObject", "s3:GetObject",
    ), "the backups/ prefix of each site's backup bucket"),
    Grant("ListBackups", (
        "s3:ListBucket",
    ), "each site's backup bucket (the newest backup is found by listing)"),
    Grant("RestoreTestSnapshots", (
        "rds:DescribeDBSnapshots", "rds:RestoreDBInstanceFromDBSnapshot",
        "rds:AddTagsToResource",
    ), "each site's database automated snapshots, its subnet, parameter and default option "
       "groups, and the scratch instances caresync-<site>-db*-restoretest-*"),
    Grant("RestoreTestInstances", (
        "rds:DescribeDBInstances", "rds:DeleteDBInstance",
    ), "the scratch instances caresync-<site>-db*-restoretest-*"),
    # latest_source lists the tested instance's automated snapshots and reads its ARN for
    # the AWS Backup recovery points: the site's own databases, not only the scratch ones, and
    # a snapshot listing that names no snapshot is authorized against the region's
    # snapshot:* (as a DescribeDBInstances naming no instance is against db:*).
    Grant("RestoreTestSources", (
        "rds:DescribeDBInstances", "rds:DescribeDBSnapshots",
    ), "each site's databases caresync-<site>-db* and the snapshots of each site's region"),
    Grant("RestoreTestKeys", (
        "kms:DescribeKey",
    ), "the two site keys: RDS restores an encrypted snapshot with the caller's grant"),
    Grant("RestoreTestKeyGrants", (
        "kms:CreateGrant",
    ), "the two site keys, only for grants RDS creates for the scratch instance "
       "(kms:GrantIsForAWSResource, as RestoreKeyGrants)"),
    Grant("RestoreTestRecoveryPoints", (
        "backup:ListRecoveryPointsByBackupVault", "backup:StartRestoreJob",
        "backup:DescribeRestoreJob",
    ), "each site's backup vault, its recovery points and restore jobs"),
    Grant("PassRestoreRole", (
        "iam:PassRole",
    ), "each site's AWS Backup service role caresync-<site>-backup (the restore job's "
       "--restore-role-arn), passed to AWS Backup only"),
)


@dataclass(frozen=True)
class Policy:
    """One inline policy of a role: its name and the grants it is made of."""

    name: str
    grants: tuple[Grant, ...]
    denies: tuple[Grant, ...] = ()


@dataclass(frozen=True)
class OperatorRoleSpec:
    """An IAM role operators assume (with MFA) to run some commands."""

    name: str                     # the IAM role name (caresync_dr.names)
    commands: tuple[str, ...]     # what run_command's ``command=`` says for each
    policies: tuple[Policy, ...]
    purpose: str                  # the role's description in IAM

    def actions(self) -> frozenset[str]:
        return frozenset(a for p in self.policies for g in p.grants for a in g.actions)


# Why five roles and not one: each role is what one kind of on-call work needs, so a session
# stolen from one kind of work cannot do another's damage, and each is assumed by the people
# (or the ops host) that do that work:
# - the operator (failover, switchover, failback, notify): promotes databases, flips traffic
#   and DNS across regions; the DR on-call engineer.
# - the app operator (app.py, pitr.py): in-region repairs (restart, deploy, rollback, PITR) of
#   either site; it cannot promote a cross-region replica, move traffic or read the master
#   secret.
# - the incident responder (breach.py): quarantine instances, disable keys, revoke sessions of
#   any principal, plus the rotation; the security team only, break-glass.
# - the credential rotation (rotate_db_credentials.py, db_roles.py): database secrets, the
#   app tier's instance refresh; what the scheduled rotation on the ops host needs, without
#   any of the breach's IAM or EC2 powers.
# - the backup role (backup.py, rollback.sh, restore_check.py): the site keys and the backup
#   objects, scratch restore-test instances; no secret, no parameter, no instance.
ROLES: tuple[OperatorRoleSpec, ...] = (
    OperatorRoleSpec(OPERATOR_ROLE_NAME, ("failover", "switchover", "failback", "notify"),
                     (Policy("failover", OPERATOR_GRANTS), Policy("failback", FAILBACK_GRANTS)),
                     "CareSync DR: failover.py, switchover.py, failback.py, notify.py"),
    OperatorRoleSpec(APP_OPERATOR_ROLE_NAME, ("app", "pitr"),
                     (Policy("in-region", IN_REGION_GRANTS),),
                     "CareSync DR: app.py and pitr.py, in each site's own region"),
    OperatorRoleSpec(INCIDENT_RESPONDER_ROLE_NAME, ("breach",),
                     (Policy("breach", BREACH_GRANTS, BREACH_DENIES),
                      Policy("rotation", ROTATION_GRANTS)),
                     "CareSync DR: breach.py (security team, break-glass)"),
    OperatorRoleSpec(CREDENTIAL_ROTATION_ROLE_NAME, ("rotate_db_credentials", "db_roles"),
                     (Policy("rotation", ROTATION_GRANTS),),
                     "CareSync DR: rotate_db_credentials.py and db_roles.py"),
    OperatorRoleSpec(BACKUP_ROLE_NAME, ("backup", "rollback", "restore_check"),
                     (Policy("backup", BACKUP_GRANTS),),
                     "CareSync DR: backup.py, rollback.sh and restore_check.py"),
)
# Commands that never call AWS (no role): the drill's AWS is the emulator on this machine.
NO_AWS_COMMANDS = ("drill", "health_check", "objectives", "preview", "security_scan")


def role_of(command: str) -> OperatorRoleSpec | None:
    """The role ``command`` (run_command's ``command=``) runs as; None for a command that calls
    no AWS. Raises KeyError for a command nobody has placed (a test forces every one)."""
    for role in ROLES:
        if command in role.commands:
            return role
    if command in NO_AWS_COMMANDS:
        return None
    raise KeyError(command)


def api_operations(command: str, services: tuple[str, ...]) -> dict[str, frozenset[str]]:
    """The API operations ``command``'s role may call in each of ``services`` (IAM prefixes
    that are also botocore service names, e.g. ``ec2``): its granted ``service:Action`` names,
    whose actions are the API's operation names for these services. Empty sets for a command
    without a role. A service granted by a pattern (``ec2:Describe*``, ``*``) is left out:
    its grants name no list of operations, and a client cut to the exact names would lack
    calls IAM allows."""
    role = role_of(command)
    actions = role.actions() if role is not None else frozenset()
    granted = {}
    for service in services:
        names = [a.split(":", 1)[1] for a in actions if a.startswith(f"{service}:")]
        if "*" not in actions and not any("*" in n or "?" in n for n in names):
            granted[service] = frozenset(names)
    return granted


def role_name_of(command: str) -> str:
    """The IAM role to name when ``command`` has no usable credentials (the operator role for
    a command this table does not know)."""
    try:
        role = role_of(command)
    except KeyError:
        return OPERATOR_ROLE_NAME
    return role.name if role is not None else OPERATOR_ROLE_NAME

"""The operator role (dr stack): exactly the actions failover, switchover, failback and notify
need, each on its own resources.

The actions come from :data:`caresync_dr.operator_permissions.OPERATOR_GRANTS` and
``FAILBACK_GRANTS``; this module only decides the resources of each grant (the other commands'
roles: components/command_roles.py, with the same policy rendering). A few read actions have
no resource-level permissions in IAM (they must use ``"*"``); those go into a separate
``...Unscoped`` statement so every mutating action stays narrowed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from caresync_dr.names import OPERATOR_ROLE_NAME
from caresync_dr.operator_permissions import (
    FAILBACK_GRANTS,
    IN_REGION_GRANTS,
    OPERATOR_GRANTS,
    ROLES,
    Grant,
    Policy,
)

# Every operator role's MaxSessionDuration: a breach response or a PITR outlasts the default
# hour (IAM allows 1-12 h); docs/operator-roles.md's profile asks for it (duration_seconds).
SESSION_SECONDS = 4 * 3600

# IAM's service authorization reference lists no resource types for these actions.
UNSCOPED_ACTIONS = frozenset({
    "cloudwatch:GetMetricStatistics", "cloudwatch:GetMetricData",
    "autoscaling:DescribeAutoScalingGroups", "elasticloadbalancing:DescribeTargetHealth",
    "ec2:DescribeSecurityGroups", "ec2:DescribeLaunchTemplates",
    "autoscaling:DescribeInstanceRefreshes", "ec2:DescribeLaunchTemplateVersions",
    "ec2:DescribeImages", "ec2:DescribeVpcs", "elasticloadbalancing:DescribeTargetGroups",
    # breach.py's reads and the RDS restore test's job status
    "ec2:DescribeInstances", "ec2:DescribeSnapshots", "autoscaling:DescribeAutoScalingInstances",
    "cloudtrail:LookupEvents", "iam:GetAccountSummary", "backup:DescribeRestoreJob",
})


@dataclass(frozen=True)
class Conditioned:
    """A grant's resources with the IAM condition that narrows them further (e.g. the
    launch templates ``ec2:RunInstances`` may launch from, ``iam:PassedToService``)."""

    resources: Sequence[str]
    condition: Mapping[str, Mapping[str, str | Sequence[str]]]


# kms:CreateGrant only as an AWS service creates it for the caller (AWS KMS Developer Guide,
# "AWS KMS condition keys": kms:GrantIsForAWSResource).
AWS_SERVICE_GRANTS_ONLY: Mapping[str, Mapping[str, str | Sequence[str]]] = {
    "Bool": {"kms:GrantIsForAWSResource": "true"}}

# What a grant is narrowed to: its resource ARNs, or those with a condition.
GrantScope = Sequence[str] | Conditioned


def _arns(scope: GrantScope) -> list[str]:
    return sorted(set(scope.resources if isinstance(scope, Conditioned) else scope))


@dataclass(frozen=True)
class OperatorResources:
    """Resolved ARNs each grant is narrowed to (plain strings, inside an apply)."""

    ssm_failover_parameters: Sequence[str]
    endpoint_parameters: Sequence[str]
    databases: Sequence[str]
    promotable_databases: Sequence[str]
    auto_scaling_groups: Sequence[str]
    primary_db_security_group: str
    switch_object: str
    incident_prefix: str
    standby_key: str
    standby_topic: str
    route53: Sequence[str]
    parameter_keys: Sequence[str] = ()  # the site keys of the SecureString parameters
    in_region: InRegionResources | None = None  # app.py and pitr.py: the app operator's role
    primary_topic: str | None = None    # incident e-mail when the standby does not answer
    notify_secrets: Sequence[str] = ()  # the notify secret in both regions
    master_secrets: Sequence[str] = ()  # caresync/db/master in each region (switchover)
    reversed_failover: ReversedFailoverResources | None = None  # only while activeSite standby
    backup_buckets: Sequence[str] = ()  # both sites' backup buckets (failback's reads)
    switch_bucket: str = ""             # the traffic switch's bucket (its ListBucket)
    database_regions: Sequence[str] = ()  # each site region's db:* (failback's probe)


@dataclass(frozen=True)
class ReversedFailoverResources:
    """What a regional failover standby -> primary (after a failback) acts on besides the
    usual: it promotes the primary site's replica generation, fences the standby's database
    and writes its timeline into the primary region's backup bucket."""

    primary_database: str
    standby_db_security_group: str
    incident_prefix: str
    primary_key: str        # the primary backup bucket's SSE-KMS key


@dataclass(frozen=True)
class InRegionResources:
    """What app.py and pitr.py act on in each site's own region (issue 14)."""

    lock_journal_parameters: Sequence[str]  # /caresync-dr/<site>/in-region/*
    endpoint_parameters: Sequence[str]
    auto_scaling_groups: Sequence[str]
    launch_templates: Sequence[str]
    alarms: Sequence[str]                   # caresync-<site>-*
    restore: Sequence[str]                  # db generations, subnet/parameter/option groups,
    generations: Sequence[str]              # automated backups; db generations
    database_reads: Sequence[str]           # each site region's db:* and auto-backup:*
    site_keys: Sequence[str]
    app_secrets: Sequence[str]
    incident_prefixes: Sequence[str]
    # ec2:RunInstances from the launch templates above (any resource of each site's region,
    # images included) and the app instance roles their instance profiles hold
    launch_resources: Sequence[str] = ()
    instance_roles: Sequence[str] = ()


def grant_resources(r: OperatorResources) -> Mapping[str, Sequence[str]]:
    """Grant sid -> resources. Every grant in OPERATOR_GRANTS must appear here."""
    rev = r.reversed_failover
    return {
        "ReadInventoryLockJournal": r.ssm_failover_parameters,
        "DatabaseEndpointParameters": r.endpoint_parameters,
        "DescribeDatabases": r.databases,
        "PromoteDatabases": [*r.promotable_databases, *([rev.primary_database] if rev else [])],
        "ReplicaLagMetrics": ["*"],
        "ScaleAppTier": r.auto_scaling_groups,
        "TargetHealth": ["*"],
        "LaunchTemplateReads": ["*"],
        "FenceOldPrimaryIngress": [r.primary_db_security_group,
                                   *([rev.standby_db_security_group] if rev else [])],
        "TrafficSwitchAndTimeline": [r.switch_object, r.incident_prefix,
                                     *([rev.incident_prefix] if rev else [])],
        "TrafficSwitchMissingObject": [r.switch_bucket],
        "BucketKeys": [r.standby_key, *([rev.primary_key] if rev else [])],
        "ParameterKeys": r.parameter_keys,
        "ReadMasterSecret": r.master_secrets,
        "Notify": [r.standby_topic, *([r.primary_topic] if r.primary_topic else [])],
        "NotifySecret": r.notify_secrets,
        "BestEffortRoute53": r.route53,
    }


def in_region_resources(r: InRegionResources) -> Mapping[str, GrantScope]:
    """Grant sid -> resources for IN_REGION_GRANTS."""
    return {
        "InRegionLockJournal": r.lock_journal_parameters,
        "InRegionEndpoints": r.endpoint_parameters,
        "InRegionAppTier": r.auto_scaling_groups,
        "InRegionTemplates": r.launch_templates,
        "InRegionReads": ["*"],
        "InRegionDatabaseReads": r.database_reads,
        "InRegionAlarms": r.alarms,
        "PointInTimeRestore": r.restore,
        "FenceDamagedWriter": r.generations,
        "RestoreKeys": r.site_keys,
        "RestoreKeyGrants": Conditioned(r.site_keys, AWS_SERVICE_GRANTS_ONLY),
        "AppCredentialsForChecks": r.app_secrets,
        "InRegionTimelines": r.incident_prefixes,
        # Only from the sites' own templates (Amazon EC2 User Guide, "Control the use of
        # launch templates": the ec2:LaunchTemplate condition key of RunInstances).
        "LaunchFromSiteTemplates": Conditioned(
            r.launch_resources, {"ArnLike": {"ec2:LaunchTemplate": sorted(r.launch_templates)}}),
        "PassAppInstanceRole": Conditioned(
            r.instance_roles, {"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}}),
    }


def in_region_policy(r: InRegionResources) -> str:
    return _policy(IN_REGION_GRANTS, in_region_resources(r))


def failback_policy(r: OperatorResources) -> str:
    return _policy(FAILBACK_GRANTS, {"FailbackBucketReplication": r.backup_buckets,
                                     "FailbackRegionAnswers": r.database_regions})


def operator_policy(r: OperatorResources) -> str:
    return _policy(OPERATOR_GRANTS, grant_resources(r))


def _policy(grants: Sequence[Grant], resources: Mapping[str, GrantScope],
            denies: Sequence[Grant] = ()) -> str:
    missing = [g.sid for g in (*grants, *denies) if g.sid not in resources]
    if missing:
        raise ValueError(f"operator grants without resources: {', '.join(missing)}")
    statements: list[dict[str, Any]] = []
    for grant in grants:
        scoped = sorted(a for a in grant.actions if a not in UNSCOPED_ACTIONS)
        unscoped = sorted(a for a in grant.actions if a in UNSCOPED_ACTIONS)
        scope = resources[grant.sid]
        if scoped:
            statements.append({"Sid": grant.sid, "Effect": "Allow", "Action": scoped,
                               "Resource": _arns(scope)})
            if isinstance(scope, Conditioned):
                statements[-1]["Condition"] = {
                    operator: {key: sorted(value) if isinstance(value, list | tuple) else value
                               for key, value in keys.items()}
                    for operator, keys in scope.condition.items()}
        if unscoped:
            statements.append({"Sid": f"{grant.sid}Unscoped", "Effect": "Allow",
                               "Action": unscoped, "Resource": "*"})
    statements += [{"Sid": deny.sid, "Effect": "Deny", "Action": sorted(deny.actions),
                     "Resource": _arns(resources[deny.sid])} for deny in denies]
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


def policy_document(policy: Policy, resources: Mapping[str, GrantScope]) -> str:
    """The JSON of one inline policy of a role in :data:`ROLES`: each grant narrowed to
    ``resources[sid]`` (the few reads IAM cannot narrow in a separate ``...Unscoped``
    statement), then each deny. Raises ValueError for a sid without resources."""
    return _policy(policy.grants, resources, policy.denies)


def mfa_trust_policy(account: str) -> str:
    """Operators of this account may assume the role, only with MFA."""
    return json.dumps({
        "Version": "2012-10-17", "Statement": [{
            "Sid": "OperatorsOfThisAccountWithMfa", "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
            "Action": "sts:AssumeRole",
            "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}}}]})


@dataclass(frozen=True)
class OperatorRoleArgs:
    account_id: pulumi.Input[str]
    values: dict[str, pulumi.Input[Any]]
    resources: Callable[[dict[str, Any]], OperatorResources]  # resolved values -> ARNs


OPERATOR_ROLE = next(role for role in ROLES if role.name == OPERATOR_ROLE_NAME)


class OperatorRole(pulumi.ComponentResource):
    role: aws.iam.Role
    policy_document: pulumi.Output[str]
    failback_document: pulumi.Output[str]

    def __init__(self, name: str, args: OperatorRoleArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("caresync:dr:OperatorRole", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        trust = pulumi.Output.from_input(args.account_id).apply(mfa_trust_policy)
        self.role = aws.iam.Role(
            f"{name}-role", name=OPERATOR_ROLE_NAME, assume_role_policy=trust,
            max_session_duration=SESSION_SECONDS, description=OPERATOR_ROLE.purpose, opts=child)
        self.policy_document = pulumi.Output.all(**args.values).apply(
            lambda v: operator_policy(args.resources(v)))
        aws.iam.RolePolicy(f"{name}-policy", name="failover", role=self.role.id,
                           policy=self.policy_document, opts=child)
        # failback.py's reads of the backup buckets' replication (FAILBACK_GRANTS).
        self.failback_document = pulumi.Output.all(**args.values).apply(
            lambda v: failback_policy(args.resources(v)))
        aws.iam.RolePolicy(f"{name}-failback-policy", name="failback", role=self.role.id,
                           policy=self.failback_document, opts=child)
        self.register_outputs({"roleArn": self.role.arn})

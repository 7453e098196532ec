"""The operator roles: exactly the actions of their grants (caresync_dr/operator_permissions.py),
each narrowed to its resources."""

from __future__ import annotations

from typing import Any

import pytest

from caresync_dr.offline.runtime import ProgramRun, RegisteredResource, of_type
from caresync_dr.operator_permissions import (
    OPERATOR_GRANTS,
    ROLES,
    OperatorRoleSpec,
    required_actions,
    role_of,
)
from components.operator_role import UNSCOPED_ACTIONS
from tests.stack.checks import allows, listify, one, policy


def _statements(dr: ProgramRun) -> list[dict[str, object]]:
    role_policy = one(dr, "aws:iam/rolePolicy:RolePolicy", "operator-policy")
    statements: list[dict[str, object]] = policy(role_policy)["Statement"]
    return statements


def test_role_grants_exactly_the_failover_actions(dr: ProgramRun) -> None:
    granted = {a for s in _statements(dr) for a in listify(s["Action"])}
    assert granted == required_actions()
    assert all(s["Effect"] == "Allow" for s in _statements(dr))


def test_only_reads_without_resource_level_permissions_use_a_wildcard(dr: ProgramRun) -> None:
    for statement in _statements(dr):
        if statement["Resource"] == "*":
            assert set(listify(statement["Action"])) <= UNSCOPED_ACTIONS, statement
        else:
            assert "*" not in listify(statement["Resource"]), statement
    for action in UNSCOPED_ACTIONS:
        assert any(f":{verb}" in action for verb in ("Describe", "Get", "Lookup")), \
            f"{action} is not a read"


def test_each_grant_is_scoped_to_its_resources(prod_bootstrap: ProgramRun,
                                               dr: ProgramRun) -> None:
    by_sid = {s["Sid"]: listify(s["Resource"]) for s in _statements(dr)}
    assert {g.sid for g in OPERATOR_GRANTS} <= set(by_sid) | {
        g.sid for g in OPERATOR_GRANTS if set(g.actions) <= UNSCOPED_ACTIONS}
    assert by_sid["PromoteDatabases"] == sorted([
        "arn:aws:rds:us-east-1:111122223333:db:caresync-primary-db-replica-1",
        "arn:aws:rds:us-west-2:111122223333:db:caresync-standby-db"])
    assert by_sid["FenceOldPrimaryIngress"] == [
        f"arn:aws:ec2:us-east-1:111122223333:security-group/"
        f"{prod_bootstrap.outputs['dbSecurityGroupId']}"]
    assert by_sid["TrafficSwitchAndTimeline"] == sorted([
        f"arn:aws:s3:::{dr.outputs['trafficSwitchBucket']}/traffic-switch",
        f"{dr.outputs['backupBucketArn']}/incidents/*"])
    assert by_sid["BucketKeys"] == [dr.outputs["kmsKeyArn"]]
    assert by_sid["Notify"] == sorted([dr.outputs["alertTopicArn"],
                                       prod_bootstrap.outputs["alertTopicArn"]])
    assert by_sid["NotifySecret"] == [
        "arn:aws:secretsmanager:us-east-1:111122223333:secret:caresync/notify-??????",
        "arn:aws:secretsmanager:us-west-2:111122223333:secret:caresync/notify-??????"]
    assert "arn:aws:ssm:us-west-2:111122223333:parameter/caresync-dr/failover/lock" in \
        by_sid["ReadInventoryLockJournal"]
    assert "arn:aws:ssm:us-east-1:111122223333:parameter/caresync-dr/primary/database-host" in \
        by_sid["DatabaseEndpointParameters"]


def test_every_journal_and_lock_of_the_operator_roles_commands_is_granted(
        dr: ProgramRun) -> None:
    """failover, switchover and failback keep their lock and journals in the standby region
    (caresync_dr/names.py). failback's journal was missing from the role's parameters: a real
    failback.py would have met AccessDenied at its first journal read (tests/conftest.py checks
    actions, not resources)."""
    from caresync_dr import names

    operator = role_of("failover")
    assert operator is not None
    bookkeeping = sorted(value for key, value in vars(names).items()
                         if key.endswith("_PARAMETER") and isinstance(value, str)
                         and value.startswith(tuple(f"/{names.PROJECT}/{operation}/"
                                                    for operation in operator.commands
                                                    if operation != "notify")))
    assert {"/caresync-dr/failover/lock", "/caresync-dr/failback/journal"} <= set(bookkeeping)
    granted = {s["Sid"]: listify(s["Resource"]) for s in _statements(dr)}[
        "ReadInventoryLockJournal"]
    missing = [name for name in bookkeeping
               if f"arn:aws:ssm:us-west-2:111122223333:parameter{name}" not in granted]
    assert missing == []


def test_role_is_assumable_only_with_mfa_from_this_account(dr: ProgramRun) -> None:
    role = one(dr, "aws:iam/role:Role", "operator-role")
    assert role.inputs["name"] == "caresync-dr-operator"
    (trust,) = policy(role, "assumeRolePolicy")["Statement"]
    assert trust["Principal"] == {"AWS": "arn:aws:iam::111122223333:root"}
    assert trust["Condition"] == {"Bool": {"aws:MultiFactorAuthPresent": "true"}}
    assert dr.outputs["operatorRoleArn"] == role.outputs["arn"]


def _in_region_statements(dr: ProgramRun) -> list[dict[str, object]]:
    role_policy = one(dr, "aws:iam/rolePolicy:RolePolicy", "app-operator-in-region-policy")
    statements: list[dict[str, object]] = policy(role_policy)["Statement"]
    return statements


def test_app_operator_role_grants_app_and_pitr_on_both_sites_only(dr: ProgramRun) -> None:
    from caresync_dr.operator_permissions import in_region_actions

    statements = _in_region_statements(dr)
    assert {a for s in statements for a in listify(s["Action"])} == in_region_actions()
    by_sid = {s["Sid"]: listify(s["Resource"]) for s in statements}
    for statement in statements:
        if statement["Resource"] == "*":
            assert set(listify(statement["Action"])) <= UNSCOPED_ACTIONS, statement
    assert by_sid["FenceDamagedWriter"] == sorted([
        "arn:aws:rds:us-east-1:111122223333:db:caresync-primary-db*",
        "arn:aws:rds:us-west-2:111122223333:db:caresync-standby-db*"])
    assert "arn:aws:ssm:us-east-1:111122223333:parameter/caresync-dr/primary/in-region/*" in \
        by_sid["InRegionLockJournal"]
    assert by_sid["InRegionTimelines"] == sorted(
        f"{bucket}/incidents/*" for bucket in (
            dr.outputs["backupBucketArn"],
            "arn:aws:s3:::caresync-primary-backups-111122223333"))
    # DescribeDBInstances and DescribeDBInstanceAutomatedBackups have resource types (db*,
    # auto-backup*; IAM Service Authorization Reference): never "*", each site's region only.
    assert by_sid["InRegionDatabaseReads"] == sorted(
        f"arn:aws:rds:{region}:111122223333:{kind}:*"
        for region in ("us-east-1", "us-west-2") for kind in ("db", "auto-backup"))
    assert not {a for s in statements if s["Resource"] == "*"
                for a in listify(s["Action"]) if a.startswith("rds:")}


def test_failover_describes_only_its_own_databases(dr: ProgramRun) -> None:
    by_sid = {s["Sid"]: listify(s["Resource"]) for s in _statements(dr)}
    assert "DescribeDatabasesUnscoped" not in by_sid
    assert "arn:aws:rds:us-west-2:111122223333:db:caresync-standby-db" in \
        by_sid["DescribeDatabases"]


def _role(dr: ProgramRun, spec: OperatorRoleSpec) -> RegisteredResource:
    (role,) = [r for r in of_type(dr.resources, "aws:iam/role:Role")
               if r.inputs["name"] == spec.name]
    return role


def _role_statements(dr: ProgramRun, spec: OperatorRoleSpec) -> list[dict[str, object]]:
    role = _role(dr, spec)
    policies = [p for p in of_type(dr.resources, "aws:iam/rolePolicy:RolePolicy")
                if p.inputs["role"] == role.outputs["id"]]
    assert sorted(p.inputs["name"] for p in policies) == sorted(q.name for q in spec.policies)
    return [s for p in policies for s in policy(p)["Statement"]]


@pytest.mark.parametrize("spec", ROLES, ids=[r.name for r in ROLES])
def test_each_role_grants_exactly_its_commands_actions(dr: ProgramRun,
                                                      spec: OperatorRoleSpec) -> None:
    statements = _role_statements(dr, spec)
    allowed = {a for s in statements if s["Effect"] == "Allow" for a in listify(s["Action"])}
    assert allowed == spec.actions()
    for statement in statements:
        if statement["Resource"] == "*":
            assert statement["Effect"] == "Allow"
            assert set(listify(statement["Action"])) <= UNSCOPED_ACTIONS, statement
        else:
            assert "*" not in listify(statement["Resource"]), statement
    role = _role(dr, spec)
    (trust,) = policy(role, "assumeRolePolicy")["Statement"]
    assert trust["Principal"] == {"AWS": "arn:aws:iam::111122223333:root"}
    assert trust["Condition"] == {"Bool": {"aws:MultiFactorAuthPresent": "true"}}
    assert dr.outputs["roleArns"][spec.name] == role.outputs["arn"]


def test_breach_and_rotation_may_cancel_and_watch_instance_refreshes(dr: ProgramRun) -> None:
    """The named case: a breach cancels a rotation's instance refresh and both watch theirs;
    no role granted autoscaling:DescribeInstanceRefreshes/CancelInstanceRefresh to them."""
    responder = {a for s in _role_statements(dr, role_of("breach") or ROLES[0])
                 if s["Effect"] == "Allow" for a in listify(s["Action"])}
    assert {"autoscaling:DescribeInstanceRefreshes", "autoscaling:CancelInstanceRefresh",
            "autoscaling:StartInstanceRefresh", "secretsmanager:PutSecretValue"} <= responder
    rotation = role_of("rotate_db_credentials")
    assert rotation is not None and "autoscaling:CancelInstanceRefresh" not in \
        rotation.actions() and "iam:PutRolePolicy" not in rotation.actions()


ESCALATIONS = ("iam:PutRolePolicy", "iam:DeleteRolePolicy", "iam:AttachRolePolicy",
               "iam:DetachRolePolicy", "iam:UpdateAssumeRolePolicy",
               "iam:PutRolePermissionsBoundary", "iam:DeleteRolePermissionsBoundary",
               "iam:UpdateRole", "iam:PassRole")


def test_the_responder_cannot_write_policies_on_the_operator_roles(
        prod_bootstrap: ProgramRun, dr: ProgramRun) -> None:
    """The Deny named iam:PutRolePolicy only: every other way to change an operator role's
    permissions or trust (attach a managed policy, rewrite its trust, drop its boundary, pass
    it) was one grant away from the responder. It also wrote any policy on the trail's log
    delivery role, where a Deny blinds the trail's CloudWatch Logs copy mid-incident."""
    spec = role_of("breach")
    assert spec is not None
    statements = _role_statements(dr, spec)
    assert all(role.name.startswith("caresync-dr-") for role in ROLES)
    everything: list[dict[str, object]] = [
        {"Effect": "Allow", "Action": "*", "Resource": "*"},
        *[s for s in statements if s["Effect"] == "Deny"]]
    for role in ROLES:
        for action in ESCALATIONS:
            assert not allows(everything, action, f"arn:aws:iam::111122223333:role/{role.name}")
    service_roles = {r.inputs["name"] for run in (prod_bootstrap, dr)
                     for r in of_type(run.resources, "aws:iam/role:Role")
                     if str(r.inputs["name"]).endswith(("-cloudtrail-logs", "-backup",
                                                        "-rds-monitoring"))}
    assert len(service_roles) == 6
    for name in service_roles:
        assert not allows(statements, "iam:PutRolePolicy",
                          f"arn:aws:iam::111122223333:role/{name}"), name
    # what the breach does stays possible: older sessions of any other role, e.g. the app's
    for name in ("caresync-primary-app", "caresync-standby-app", "some-team-role"):
        assert allows(statements, "iam:PutRolePolicy", f"arn:aws:iam::111122223333:role/{name}")


def test_the_backup_role_touches_backups_and_scratch_instances_only(dr: ProgramRun) -> None:
    spec = role_of("backup")
    assert spec is not None
    by_sid = {s["Sid"]: listify(s["Resource"]) for s in _role_statements(dr, spec)}
    assert by_sid["BackupObjects"] == sorted(
        f"arn:aws:s3:::caresync-{site}-backups-111122223333/backups/*"
        for site in ("primary", "standby"))
    assert by_sid["RestoreTestInstances"] == sorted(
        f"arn:aws:rds:{region}:111122223333:db:caresync-{site}-db*-restoretest-*"
        for site, region in (("primary", "us-east-1"), ("standby", "us-west-2")))


def test_the_backup_grant_names_the_prefix_backups_are_written_under() -> None:
    from caresync_dr.backup.storage import DEFAULT_PREFIX
    from components.role_resources import BACKUP_PREFIX

    assert BACKUP_PREFIX == DEFAULT_PREFIX


def test_rotation_and_breach_grants_name_what_the_stacks_create(prod_bootstrap: ProgramRun,
                                                               dr: ProgramRun) -> None:
    rotation = role_of("rotate_db_credentials")
    breach = role_of("breach")
    assert rotation is not None and breach is not None
    rot = {s["Sid"]: listify(s["Resource"]) for s in _role_statements(dr, rotation)}
    groups = sorted(
        f"arn:aws:autoscaling:{region}:111122223333:autoScalingGroup:*:autoScalingGroupName/"
        f"{name}" for region, name in (
            ("us-east-1", prod_bootstrap.outputs["autoScalingGroupName"]),
            ("us-west-2", dr.outputs["autoScalingGroupName"])))
    assert rot["RotationAppRefresh"] == groups
    assert rot["DatabaseSecrets"] == sorted(
        f"arn:aws:secretsmanager:{region}:111122223333:secret:caresync/db/*-??????"
        for region in ("us-east-1", "us-west-2"))
    assert rot["PromoteSecretReplicas"] == [
        "arn:aws:secretsmanager:us-west-2:111122223333:secret:caresync/db/*-??????"]
    assert rot["RotationKeys"] == sorted([prod_bootstrap.outputs["kmsKeyArn"],
                                          dr.outputs["kmsKeyArn"]])
    responder = {s["Sid"]: listify(s["Resource"]) for s in _role_statements(dr, breach)}
    assert responder["DetachFromAppTier"] == groups
    assert responder["RevokeUserKeys"] == ["arn:aws:iam::111122223333:user/*"]
    assert responder["TrailLogging"] == sorted(
        f"arn:aws:cloudtrail:{region}:111122223333:trail/caresync-{site}-audit"
        for site, region in (("primary", "us-east-1"), ("standby", "us-west-2")))


def test_a_refresh_to_a_template_version_may_launch_from_the_sites_templates_only(
        prod_bootstrap: ProgramRun, dr: ProgramRun) -> None:
    """Auto Scaling checks ec2:RunInstances and iam:PassRole on whoever starts a refresh to a
    launch template version (EC2 Auto Scaling User Guide, "Control Amazon EC2 launch template
    usage in Auto Scaling groups"): app.py deploy and rollback were refused in AWS, with every
    test green, because the app operator role had neither."""
    statements = {s["Sid"]: s for s in _in_region_statements(dr)}
    launch = statements["LaunchFromSiteTemplates"]
    assert listify(launch["Action"]) == ["ec2:RunInstances"]
    assert launch["Condition"] == {"ArnLike": {"ec2:LaunchTemplate": sorted(
        f"arn:aws:ec2:{region}:111122223333:launch-template/{run.outputs['launchTemplateId']}"
        for region, run in (("us-east-1", prod_bootstrap), ("us-west-2", dr)))}}
    assert all(r.startswith(("arn:aws:ec2:us-east-1:", "arn:aws:ec2:us-west-2:"))
               for r in listify(launch["Resource"]))
    passing = statements["PassAppInstanceRole"]
    instance_roles = {f"arn:aws:iam::111122223333:role/{r.inputs['name']}"
                      for run in (prod_bootstrap, dr)
                      for r in of_type(run.resources, "aws:iam/role:Role")
                      if r.name.endswith("-app-instance-role")}
    assert set(listify(passing["Resource"])) == instance_roles and len(instance_roles) == 2
    assert passing["Condition"] == {"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}}


def test_the_recorder_adds_what_auto_scaling_checks_for_a_launch_template() -> None:
    from tests.iam_calls import implied_actions

    versioned = {"AutoScalingGroupName": "g", "DesiredConfiguration": {
        "LaunchTemplate": {"LaunchTemplateId": "lt-1", "Version": "3"}}}
    assert implied_actions("autoscaling:StartInstanceRefresh", versioned) == (
        "ec2:RunInstances", "iam:PassRole")
    assert implied_actions("autoscaling:UpdateAutoScalingGroup", {
        "AutoScalingGroupName": "g", "LaunchTemplate": {"LaunchTemplateId": "lt-1"}}) == (
        "ec2:RunInstances", "iam:PassRole")
    # a restart (same configuration) and a capacity change name no template: nothing checked
    assert implied_actions("autoscaling:StartInstanceRefresh",
                           {"AutoScalingGroupName": "g"}) == ()
    assert implied_actions("autoscaling:UpdateAutoScalingGroup",
                           {"AutoScalingGroupName": "g", "MinSize": 2}) == ()


def test_calls_that_name_no_resource_are_granted_on_the_region_wildcard(dr: ProgramRun) -> None:
    """IAM authorizes an RDS Describe that names no instance or snapshot against the region's
    ``db:*`` / ``snapshot:*``, which a grant naming each instance never matches: failback's
    'other region answers' (DescribeDBInstances, MaxRecords only) and the restore test's
    listing of its source's automated snapshots were refused in AWS. The restore test also
    reads its source instance's ARN (recovery points), which the scratch-only grant missed."""
    operator = _role_statements(dr, ROLES[0])
    for region in ("us-east-1", "us-west-2"):
        assert allows(operator, "rds:DescribeDBInstances",
                      f"arn:aws:rds:{region}:111122223333:db:*")
    backup = role_of("restore_check")
    assert backup is not None
    statements = _role_statements(dr, backup)
    for site, region in (("primary", "us-east-1"), ("standby", "us-west-2")):
        source = f"arn:aws:rds:{region}:111122223333:db:caresync-{site}-db"
        assert allows(statements, "rds:DescribeDBInstances", source)
        assert allows(statements, "rds:DescribeDBSnapshots", source)
        assert allows(statements, "rds:DescribeDBSnapshots",
                      f"arn:aws:rds:{region}:111122223333:snapshot:*")
        # still least privilege: the backup role deletes scratch instances only
        assert not allows(statements, "rds:DeleteDBInstance", source)
        assert allows(statements, "rds:DeleteDBInstance", f"{source}-restoretest-20261130")


def test_a_missing_traffic_switch_is_a_404_to_the_operator(dr: ProgramRun) -> None:
    """failover reads NoSuchKey as 'no switch object'; S3 says 403 to a reader without
    s3:ListBucket (the rule iam-s3-readers-list-the-bucket checks every role)."""
    bucket = f"arn:aws:s3:::{dr.outputs['trafficSwitchBucket']}"
    operator = _role_statements(dr, ROLES[0])
    assert allows(operator, "s3:ListBucket", bucket)
    assert allows(operator, "s3:GetObject", f"{bucket}/traffic-switch")
    assert not allows(operator, "s3:PutObject", f"{bucket}/anything-else")


def test_key_grants_only_as_rds_creates_them_and_roles_passed_to_their_service(
        dr: ProgramRun) -> None:
    """kms:CreateGrant without kms:GrantIsForAWSResource let an app-operator or backup session
    give any principal, of any account, lasting use of a site key (a grant outlives the
    session); iam:PassRole without iam:PassedToService let the backup role hand AWS Backup's
    role to any service. Every CreateGrant and PassRole of every role is conditioned now."""
    checked = 0
    for spec in ROLES:
        for statement in _role_statements(dr, spec):
            actions = listify(statement["Action"])
            if statement["Effect"] != "Allow":
                continue
            if "kms:CreateGrant" in actions:
                assert actions == ["kms:CreateGrant"], statement
                assert statement["Condition"] == {
                    "Bool": {"kms:GrantIsForAWSResource": "true"}}, statement
                checked += 1
            if "iam:PassRole" in actions:
                assert actions == ["iam:PassRole"], statement
                condition: Any = statement["Condition"]
                assert set(condition["StringEquals"]) == {"iam:PassedToService"}, statement
                checked += 1
    assert checked == 4   # app operator and backup: CreateGrant; PassRole of each

"""The operator role: exactly the actions in OPERATOR_GRANTS, each narrowed to its resources."""

from __future__ import annotations

from caresync_dr.offline.runtime import ProgramRun
from caresync_dr.operator_permissions import OPERATOR_GRANTS, required_actions
from components.operator_role import UNSCOPED_ACTIONS
from tests.stack.checks import listify, one, policy


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
        assert ":Describe" in action or ":Get" in action, f"{action} is not a read"


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


def test_role_is_assumable_only_with_mfa_from_this_account(dr: ProgramRun) -> None:
    role = one(dr, "aws:iam/role:Role", "operator-role")
    assert role.inputs["name"] == "caresync-dr-operator"
    (trust,) = policy(role, "assumeRolePolicy")["Statement"]
    assert trust["Principal"] == {"AWS": "arn:aws:iam::111122223333:root"}
    assert trust["Condition"] == {"Bool": {"aws:MultiFactorAuthPresent": "true"}}
    assert dr.outputs["operatorRoleArn"] == role.outputs["arn"]


def _in_region_statements(dr: ProgramRun) -> list[dict[str, object]]:
    role_policy = one(dr, "aws:iam/rolePolicy:RolePolicy", "operator-in-region-policy")
    statements: list[dict[str, object]] = policy(role_policy)["Statement"]
    return statements


def test_in_region_policy_grants_app_and_pitr_on_both_sites_only(dr: ProgramRun) -> None:
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

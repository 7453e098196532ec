"""--scope database: promote the primary's in-region replica and repoint the app to it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from caresync_dr.cli import ExitCode
from tests.failover import world as w
from tests.failover.test_region_failover import mutating


def test_database_scope_promotes_the_in_region_replica_and_repoints_the_app(
        world: w.World, failover: Any, tmp_path: Path) -> None:
    report_path = tmp_path / "db.json"
    result = failover("--scope", "database", "--yes", "--report", str(report_path))
    assert result.code == ExitCode.OK, result.out
    replica = w.client("rds", w.PRIMARY).describe_db_instances(
        DBInstanceIdentifier=w.PRIMARY_REPLICA)["DBInstances"][0]
    assert "ReadReplicaSourceDBInstanceIdentifier" not in replica
    endpoint = f"{replica['Endpoint']['Address']}:{replica['Endpoint']['Port']}"
    parameter = world.inventory.primary.database.endpoint_parameter
    assert world.parameter(w.PRIMARY, parameter) == endpoint
    # Still a SecureString under the primary site's key: an overwrite without KeyId would
    # have fallen back to aws/ssm, a String overwrite to plain text.
    [meta] = w.client("ssm", w.PRIMARY).describe_parameters(ParameterFilters=[
        {"Key": "Name", "Values": [parameter]}])["Parameters"]
    assert (meta["Type"], meta["KeyId"]) == ("SecureString", "alias/caresync-primary")
    assert [r["AutoScalingGroupName"] for r in world.refreshes] == ["prod-app"]
    # The standby region is not touched by an in-region repair.
    assert world.switch_value() == "PRIMARY"
    assert world.db(w.STANDBY, w.STANDBY_DB).source_db_instance_identifier
    # The old primary is fenced (its security group has no ingress left) before the app was
    # repointed; the promoted replica's own group is untouched.
    ec2 = w.client("ec2", w.PRIMARY)
    old_sg = world.inventory.primary.database.security_group_id
    assert ec2.describe_security_groups(GroupIds=[old_sg])["SecurityGroups"][0][
        "IpPermissions"] == []
    replica_sgs = [g["VpcSecurityGroupId"] for g in replica["VpcSecurityGroups"]]
    assert old_sg not in replica_sgs
    assert all(ec2.describe_security_groups(GroupIds=[g])["SecurityGroups"][0]["IpPermissions"]
               for g in replica_sgs)
    seen = world.calls.seen     # the endpoint parameter is the only put in the primary region
    assert seen.index(("ec2", "RevokeSecurityGroupIngress", w.PRIMARY)) < seen.index(
        ("ssm", "PutParameter", w.PRIMARY))
    report = json.loads(report_path.read_text())
    assert report["scope"] == "database" and report["fenced"] == "fenced"
    assert [s["name"] for s in report["steps"]] == [
        "promote-database", "fence-primary-database", "point-app-at-database", "refresh-app",
        "verify"]
    assert report["newWriter"]["identifier"] == w.PRIMARY_REPLICA
    assert report["dataLossExposureSeconds"] == 0.5
    # Running it again finds everything done.
    world.calls.seen.clear()
    again = failover("--scope", "database", "--yes")
    assert again.code == ExitCode.OK and "already failed over" in again.out
    assert mutating(world) == []


@pytest.mark.parametrize(("breakage", "why"), [
    ("lag", "replica lag within RPO: 1200 s"),
    ("not-a-replica", "is not a read replica"),
])
def test_database_scope_refuses_and_changes_nothing(
        world: w.World, failover: Any, caplog: pytest.LogCaptureFixture, breakage: str,
        why: str) -> None:
    if breakage == "lag":
        w.put_lag(w.PRIMARY, w.PRIMARY_REPLICA, 1200, minutes_ago=0.5)
    else:
        w.complete_promotion({"DBInstanceIdentifier": w.PRIMARY_REPLICA})
    before = world.parameter(w.PRIMARY, world.inventory.primary.database.endpoint_parameter)
    result = failover("--scope", "database", "--yes")
    assert result.code == ExitCode.REFUSED
    assert why in caplog.text
    assert world.calls.count("PromoteReadReplica") == 0
    assert world.refreshes == []
    assert world.parameter(w.PRIMARY, world.inventory.primary.database.endpoint_parameter) \
        == before
    assert world.parameter(w.STANDBY, world.inventory.lock_parameter) is None


def test_after_a_database_failover_the_dr_replica_must_be_rebuilt(
        world: w.World, failover: Any) -> None:
    """The cross-region replica still follows the old (now fenced) primary: the follow-ups
    say so, and the daily region --check fails until it is rebuilt from the new writer."""
    assert failover("--check").code == ExitCode.OK
    result = failover("--scope", "database", "--yes")
    assert result.code == ExitCode.OK, result.out
    follow_ups = result.out.split("Follow-ups:")[1]
    assert (f"{w.STANDBY_DB} in {w.STANDBY} still replicates from the old primary "
            f"{w.PRIMARY_DB}") in follow_ups
    assert f"rebuild it as a replica of {w.PRIMARY_REPLICA}" in follow_ups
    assert "a region failover now would lose" in follow_ups
    check = failover("--check")
    assert check.code == ExitCode.NOT_READY, check.out
    failing = [line for line in check.out.splitlines() if "  FAIL  " in line]
    assert len(failing) == 1, check.out
    assert failing[0].startswith("replica follows the writer")
    assert f"the app writes to {w.PRIMARY_REPLICA}" in failing[0]


def test_verification_accepts_an_answer_without_region_inside_one_region(
        world: w.World, failover: Any) -> None:
    world.overrides["health"] = {"status": "ok", "database": {"writable": True,
                                                              "role": "primary"}}
    result = failover("--scope", "database", "--yes")
    assert result.code == ExitCode.OK, result.out

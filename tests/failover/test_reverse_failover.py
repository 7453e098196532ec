"""The regional failover in the reverse direction (issue 15, last point): after a failback the
standby site writes (activeSite standby) and the primary site's new generation replicates from
it. When us-west-2 then fails, failover.py promotes the primary site with every us-west-2
endpoint refused: its inventory, lock, journal and timeline are all in us-east-1.

The world is the failover tests' world after the round trip's first half: the standby database
promoted, a new primary generation replicating from it, traffic on the standby site, the
inventory in both regions (the dr stack writes the copy while activeSite is standby). The
public URL answers the way Route 53 does: an unreachable switch reads as PRIMARY (the inverted
string-match check fails open, components/traffic_switch.py).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from caresync_dr.cli import ExitCode
from caresync_dr.failover.inputs import inventory_regions
from caresync_dr.inventory import Inventory
from caresync_dr.names import site_key_alias
from caresync_dr.settings import settings_from_stack_file
from tests.failover import world as w
from tests.failover.conftest import ROOT

PRIMARY_G2 = "caresync-prod-db-g2"
PRIMARY_BACKUPS = "caresync-prod-backups-test"


def _flip(world: w.World) -> Inventory:
    """The state after failover + failback re-protection, in place: returns the inventory."""
    w.complete_promotion({"DBInstanceIdentifier": w.STANDBY_DB})    # the earlier failover
    standby_arn = world.db(w.STANDBY, w.STANDBY_DB).arn
    inv = world.inventory
    p_rds = w.client("rds", w.PRIMARY)
    g2 = p_rds.create_db_instance_read_replica(
        DBInstanceIdentifier=PRIMARY_G2, SourceDBInstanceIdentifier=standby_arn,
        DBInstanceClass="db.r6g.large",
        VpcSecurityGroupIds=[inv.primary.database.security_group_id])["DBInstance"]
    w.put_lag(w.PRIMARY, PRIMARY_G2, 1.0, minutes_ago=3)
    w.client("s3", w.STANDBY).put_object(Bucket=world.switch_bucket, Key=w.SWITCH_KEY,
                                         Body=b"FAILOVER")
    autoscaling = {region: w.client("autoscaling", region) for region in (w.PRIMARY, w.STANDBY)}
    autoscaling[w.STANDBY].update_auto_scaling_group(
        AutoScalingGroupName="dr-app", MinSize=2, DesiredCapacity=2)
    autoscaling[w.PRIMARY].update_auto_scaling_group(
        AutoScalingGroupName="prod-app", MinSize=1, DesiredCapacity=1)
    w.client("s3", w.PRIMARY).create_bucket(Bucket=PRIMARY_BACKUPS)
    warm = inv.standby.app.capacity
    flipped = dataclasses.replace(
        inv, active_site="standby", primary_backup_bucket=PRIMARY_BACKUPS,
        primary=dataclasses.replace(
            inv.primary,
            database=dataclasses.replace(inv.primary.database, identifier=PRIMARY_G2,
                                         arn=g2["DBInstanceArn"], replica_identifiers=(),
                                         generation=2),
            app=dataclasses.replace(inv.primary.app, capacity=warm)),
        standby=dataclasses.replace(
            inv.standby, app=dataclasses.replace(inv.standby.app,
                                                 capacity=inv.standby.app.production_capacity)))
    # The dr stack's two parameters: the standby region's and, while activeSite is standby,
    # the primary region's copy under the primary site's key.
    for region, site in ((w.STANDBY, "standby"), (w.PRIMARY, "primary")):
        w.client("ssm", region).put_parameter(
            Name=w.INVENTORY_PARAMETER, Value=flipped.to_json(), Type="SecureString",
            KeyId=site_key_alias(site), Tier="Advanced", Overwrite=True)
    world.inventory = flipped

    def answer() -> dict[str, Any]:
        # Route 53: the switch says PRIMARY, or does not answer (region down) -> primary site.
        if world.overrides.get("standby_down") or world.switch_value() == "PRIMARY":
            writable = w._promoted(world.db(w.PRIMARY, PRIMARY_G2))
            return {"status": "ok", "region": w.PRIMARY,
                    "database": {"writable": writable,
                                 "role": "primary" if writable else "replica"}}
        return {"status": "ok", "region": w.STANDBY,
                "database": {"writable": True, "role": "primary"}}

    world.overrides["answer"] = answer
    return flipped


def _standby_region_down(world: w.World) -> list[str]:
    """us-west-2 gone two minutes ago: RDS reports the replica broken since (D11), every
    us-west-2 endpoint refuses the tool's connections, Route 53 sees the switch fail."""
    world.overrides["standby_down"] = True
    world.replication_status[0] = "error"
    w.put_lag(w.PRIMARY, PRIMARY_G2, -1, minutes_ago=1)
    return w.take_down(world.session, lambda url: "us-west-2" in url)


def _assert_promoted_in_primary(world: w.World) -> None:
    db = w.client("rds", w.PRIMARY).describe_db_instances(
        DBInstanceIdentifier=PRIMARY_G2)["DBInstances"][0]
    assert "ReadReplicaSourceDBInstanceIdentifier" not in db
    assert db["DBInstanceStatus"] == "available"
    asg = w.client("autoscaling", w.PRIMARY).describe_auto_scaling_groups(
        AutoScalingGroupNames=["prod-app"])["AutoScalingGroups"][0]
    assert (asg["MinSize"], asg["DesiredCapacity"]) == (2, 2)
    # The bookkeeping is in the promoted region: lock released, journal completed there.
    inv = world.inventory
    assert world.parameter(w.PRIMARY, inv.lock_parameter) is None
    journal = json.loads(world.parameter(w.PRIMARY, inv.journal_parameter) or "{}")
    assert journal["status"] == "completed"
    assert world.parameter(w.STANDBY, inv.journal_parameter) is None


def test_reverse_failover_with_us_west_2_refused_promotes_the_primary_site(
        world: w.World, failover: Any, tmp_path: Path) -> None:
    """The named case: before, the "direction" check refused this run (exit 3)."""
    _flip(world)
    refused = _standby_region_down(world)
    report_path = tmp_path / "run.json"
    # The committed Pulumi.dr.yaml still says activeSite primary (a stale stack file): the
    # inventory is looked up in us-west-2 first, which does not answer, then in us-east-1.
    result = failover("--yes", "--report", str(report_path), "--outage-started",
                      _minutes_ago(2))
    assert result.code == ExitCode.OK, result.out
    _assert_promoted_in_primary(world)
    assert any("us-west-2" in url for url in refused)
    report = json.loads(report_path.read_text())
    outcomes = {s["name"]: s["outcome"] for s in report["steps"]}
    assert outcomes["promote-database"] == "done" and outcomes["verify"] == "done"
    assert outcomes["scale-standby-app"] == "done"
    assert outcomes["fence-primary-app"] == "not confirmed"      # us-west-2 gone
    details = {s["name"]: s["detail"] for s in report["steps"]}
    assert "reads an unreachable switch as PRIMARY" in details["switch-traffic"]
    # The switch still says FAILOVER in us-west-2: the primary record's calculated check was
    # pinned (Route 53's control plane is in us-east-1) so a recovered us-west-2 cannot take
    # traffic back to the old writer.
    assert outcomes["pin-primary-record"] == "done"
    pinned = w.client("route53", w.PRIMARY).get_health_check(
        HealthCheckId=world.inventory.traffic_switch.primary_health_check_id)["HealthCheck"][
        "HealthCheckConfig"]
    assert pinned["ChildHealthChecks"] == [world.inventory.primary.health_check_id]
    assert pinned["HealthThreshold"] == 1
    assert "us-east-1" in details["verify"] or "ok" in details["verify"]
    # The timeline went to the primary region's backup bucket.
    stored = w.client("s3", w.PRIMARY).get_object(
        Bucket=PRIMARY_BACKUPS, Key=f"incidents/{report['runId']}.md")["Body"].read().decode()
    assert "promote-database" in stored
    assert "caresync-failback" in result.out and "activeSite: primary" in result.out


def _minutes_ago(minutes: int) -> str:
    from datetime import UTC, datetime, timedelta

    return (datetime.now(UTC) - timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_reverse_failover_with_both_regions_answering_writes_primary_into_the_switch(
        world: w.World, failover: Any, tmp_path: Path) -> None:
    """Only the standby's database failed: the switch answers and is flipped to PRIMARY; the
    old writer is fenced; the bookkeeping still lives in us-east-1."""
    flipped = _flip(world)
    project = tmp_path / "project"
    project.mkdir()
    for name in ("Pulumi.yaml", "Pulumi.prod.yaml", "Pulumi.dr.yaml"):
        shutil.copy(ROOT / name, project / name)
    stack = project / "Pulumi.dr.yaml"
    stack.write_text(stack.read_text().replace("caresync-dr:activeSite: primary",
                                               "caresync-dr:activeSite: standby"))
    result = failover("--yes", "--project-dir", str(project))
    assert result.code == ExitCode.OK, result.out
    _assert_promoted_in_primary(world)
    assert world.switch_value() == "PRIMARY"
    dr_app = w.client("autoscaling", w.STANDBY).describe_auto_scaling_groups(
        AutoScalingGroupNames=["dr-app"])["AutoScalingGroups"][0]
    assert dr_app["DesiredCapacity"] == 0                     # the old writer's app fenced
    sg = w.client("ec2", w.STANDBY).describe_security_groups(
        GroupIds=[flipped.standby.database.security_group_id])["SecurityGroups"][0]
    assert sg["IpPermissions"] == []
    # With activeSite standby in the stack file the inventory is read in us-east-1 (first
    # read); us-west-2's SSM is read once, for a live lock of a switchover there.
    ssm_reads = [r for s, o, r in world.calls.seen if (s, o) == ("ssm", "GetParameter")]
    assert ssm_reads[0] == w.PRIMARY and ssm_reads.count(w.STANDBY) == 1


def test_reverse_failover_resumes_from_the_journal_in_us_east_1(
        world: w.World, failover: Any, tmp_path: Path) -> None:
    """A run that stops part-way (verification times out) resumes with us-west-2 still
    refused: the journal and lock are read from us-east-1."""
    _flip(world)
    _standby_region_down(world)
    world.overrides["health"] = {"status": "degraded", "region": w.PRIMARY,
                                 "database": {"writable": False, "role": "replica"}}
    report = tmp_path / "first.json"
    first = failover("--yes", "--report", str(report), "--verify-timeout", "0.3",
                     "--outage-started", _minutes_ago(2))
    assert first.code == ExitCode.FAILED, first.out
    journal = json.loads(world.parameter(w.PRIMARY, world.inventory.journal_parameter) or "{}")
    assert journal["status"] != "completed"
    del world.overrides["health"]
    resumed = failover("--yes", "--resume", "--report", str(tmp_path / "second.json"),
                       "--outage-started", _minutes_ago(2))
    assert resumed.code == ExitCode.OK, resumed.out
    _assert_promoted_in_primary(world)
    assert world.calls.count("PromoteReadReplica") == 1       # not asked twice


def test_reverse_check_reports_where_the_bookkeeping_lives(
        world: w.World, failover: Any, tmp_path: Path) -> None:
    _flip(world)
    report = tmp_path / "check.json"
    result = failover("--check", "--report", str(report))
    rows = {c["name"]: c for c in json.loads(report.read_text())["checks"]}
    assert result.code == ExitCode.OK, result.out
    assert rows["bookkeeping region"]["ok"]
    assert f"s3://{PRIMARY_BACKUPS} in us-east-1" in rows["bookkeeping region"]["detail"]
    assert PRIMARY_G2 in rows["replica exists"]["detail"]


def test_a_reversed_inventory_without_the_primary_bucket_is_refused(
        world: w.World, failover: Any) -> None:
    """An inventory written before primaryBackupBucket existed: the preflight names it and
    nothing changes (no promotion)."""
    flipped = dataclasses.replace(_flip(world), primary_backup_bucket=None)
    for region in (w.STANDBY, w.PRIMARY):
        w.client("ssm", region).put_parameter(
            Name=w.INVENTORY_PARAMETER, Value=flipped.to_json(), Type="SecureString",
            KeyId="alias/aws/ssm", Tier="Advanced", Overwrite=True)
    result = failover("--yes")
    assert result.code == ExitCode.REFUSED, result.out
    assert "primaryBackupBucket" in result.out
    assert world.calls.count("PromoteReadReplica") == 0


def test_a_stale_copy_in_the_primary_region_is_refused(world: w.World, failover: Any,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    """The copy exists only while the standby writes; one saying activeSite primary is stale
    and is not used (the standby region, the real home of that document, did not answer)."""
    w.client("ssm", w.PRIMARY).put_parameter(
        Name=w.INVENTORY_PARAMETER, Value=world.inventory.to_json(), Type="SecureString",
        KeyId=site_key_alias("primary"), Tier="Advanced")
    w.take_down(world.session, lambda url: "us-west-2" in url)
    assert failover("--yes").code == ExitCode.USAGE
    assert "a stale copy" in caplog.text
    assert world.calls.count("PromoteReadReplica") == 0


def test_the_stack_file_orders_the_inventory_regions() -> None:
    steady = settings_from_stack_file("dr", ROOT)
    assert inventory_regions(steady) == ("us-west-2", "us-east-1")
    flipped = dataclasses.replace(steady, active_site="standby")
    assert inventory_regions(flipped) == ("us-east-1", "us-west-2")


def test_a_live_run_holding_the_standby_region_lock_refuses_the_reverse_failover(
        world: w.World, failover: Any) -> None:
    """A switchover (or a failover the usual way) locks in us-west-2; the reversed run locks
    in us-east-1. While us-west-2 answers, a live holder there refuses the reversed run."""
    from caresync_dr.operations.lock import LeaseLock, LockHolder

    _flip(world)
    held = LeaseLock(w.client("ssm", w.STANDBY), world.inventory.lock_parameter, "switchover")
    me = LockHolder.me("switchover-elsewhere")
    assert held.acquire(me) is None
    try:
        result = failover("--yes")
    finally:
        held.release(me)
    assert result.code == ExitCode.REFUSED, result.out
    assert "no run in the standby region" in result.out and "held by" in result.out
    assert world.calls.count("PromoteReadReplica") == 0


def test_a_pin_left_behind_fails_the_daily_check(world: w.World, failover: Any,
                                                  tmp_path: Path) -> None:
    """pin-primary-record makes the PRIMARY record's calculated check ignore the switch. Left
    behind (a plain `pulumi up -s dr` compares with its state and does not undo it), writing
    the switch moves no traffic while the primary endpoint passes: a switchover to the
    standby would promote it and leave users on the fenced old writer. Before, `--check`
    passed with the pin in place; it now fails on the row that names it."""
    sw = world.inventory.traffic_switch
    route53 = w.client("route53", w.PRIMARY)
    report = tmp_path / "check.json"
    assert failover("--check").code == ExitCode.OK
    route53.update_health_check(HealthCheckId=sw.primary_health_check_id,
                                ChildHealthChecks=[world.inventory.primary.health_check_id],
                                HealthThreshold=1)
    result = failover("--check", "--report", str(report))
    assert result.code == ExitCode.NOT_READY, result.out
    rows = {c["name"]: c for c in json.loads(report.read_text())["checks"]}
    assert not rows["DNS follows the switch"]["ok"]
    assert "--refresh" in rows["DNS follows the switch"]["detail"]
    route53.update_health_check(HealthCheckId=sw.primary_health_check_id,
                                ChildHealthChecks=[world.inventory.primary.health_check_id,
                                                   sw.health_check_id], HealthThreshold=2)
    assert failover("--check").code == ExitCode.OK


def test_a_resume_after_the_direction_flipped_does_not_fail_over_to_the_stale_writer(
        world: w.World, failover: Any, tmp_path: Path) -> None:
    """A reversed run stops part-way (its journal unfinished in us-east-1); us-west-2 comes
    back, the operator writes PRIMARY into the switch (the runbook's first step there) and the
    stacks say activeSite primary again. `failover.py --resume` now runs the usual direction,
    finds nothing to resume in us-west-2, and before this fix still judged itself "resuming":
    it took the old writer in us-west-2 (promoted long ago, never fenced, stale) as "already
    promoted (resuming)", scaled the real writer's app to 0, revoked its database ingress and
    wrote FAILOVER: every write since the reverse failover cut off. It is refused now."""
    flipped = _flip(world)
    down = [True]
    world.overrides["standby_down"] = True
    world.replication_status[0] = "error"
    w.put_lag(w.PRIMARY, PRIMARY_G2, -1, minutes_ago=1)
    w.take_down(world.session, lambda url: down[0] and "us-west-2" in url)
    world.overrides["health"] = {"status": "degraded", "region": w.PRIMARY,
                                 "database": {"writable": False, "role": "replica"}}
    journal = str(tmp_path / "journal.json")
    first = failover("--yes", "--verify-timeout", "0.3", "--outage-started", _minutes_ago(2),
                     "--journal-file", journal)
    assert first.code == ExitCode.FAILED, first.out
    del world.overrides["health"]
    down[0] = False
    world.overrides["standby_down"] = False
    w.client("s3", w.STANDBY).put_object(Bucket=world.switch_bucket, Key=w.SWITCH_KEY,
                                         Body=b"PRIMARY")
    normal = dataclasses.replace(flipped, active_site="primary")
    w.client("ssm", w.STANDBY).put_parameter(
        Name=w.INVENTORY_PARAMETER, Value=normal.to_json(), Type="SecureString",
        KeyId="alias/aws/ssm", Tier="Advanced", Overwrite=True)
    w.client("ssm", w.PRIMARY).delete_parameter(Name=w.INVENTORY_PARAMETER)
    world.inventory = normal
    for argv in (("--dry-run", "--resume"), ("--yes", "--resume")):
        result = failover(*argv, "--journal-file", journal)
        assert result.code == ExitCode.REFUSED, result.out
        assert "is a read replica" in result.out and "no unfinished run" in result.out
    assert world.switch_value() == "PRIMARY"
    prod_app = w.client("autoscaling", w.PRIMARY).describe_auto_scaling_groups(
        AutoScalingGroupNames=["prod-app"])["AutoScalingGroups"][0]
    assert prod_app["DesiredCapacity"] == 2

"""pitr.py against the emulated AWS and a real PostgreSQL standing in for the restored
instance: the restore's settings, the cut-over, the window refusals, dry runs, bad input, a
failed verification, and the standby region restoring from replicated automated backups."""

from __future__ import annotations

import io
import json
import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from caresync_dr.commands import pitr as command
from caresync_dr.emulation.autoscaling import InstanceRefreshes
from caresync_dr.emulation.rds_pitr import PointInTimeRestores
from caresync_dr.emulation.server import ACCOUNT_ID, Emulator
from caresync_dr.pg.cluster import PostgresCluster, PostgresNotFoundError, find_pg_bin, temp_cluster
from caresync_dr.pitr.window import iso
from tests.ci_paths import ROOT
from tests.inregion.world import Site, app_tier, client, database

pytestmark = pytest.mark.postgres
PASSWORD = "app-password-for-the-checks"
MUTATING = ("Restore", "Modify", "Put", "Start", "Create", "Delete", "Update")
NOW = datetime.now(UTC)
EARLIEST, LATEST = NOW - timedelta(days=3), NOW - timedelta(minutes=5)


@pytest.fixture(scope="module")
def stand_in() -> Iterator[PostgresCluster]:
    """What the restore builds: the app's database with its rows, as of T."""
    try:
        find_pg_bin()
    except PostgresNotFoundError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and no PostgreSQL server: {exc}")
        pytest.skip(str(exc))
    cluster = temp_cluster(prefix="caresync-pitr-test-")
    cluster.start()
    cluster.psql(f"create role caresync_app login password '{PASSWORD}'")
    cluster.psql("create database caresync owner caresync_app")
    cluster.psql("create table patients (seq int primary key)", dbname="caresync")
    cluster.psql("insert into patients select generate_series(1, 120)", dbname="caresync")
    cluster.psql("alter table patients owner to caresync_app", dbname="caresync")
    try:
        yield cluster
    finally:
        cluster.stop(mode="immediate")
        shutil.rmtree(cluster.data_dir.parent, ignore_errors=True)


@pytest.fixture
def world(aws: Emulator, stand_in: PostgresCluster,
          monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    monkeypatch.setenv("PGHOSTADDR", "127.0.0.1")   # the emulated VPC's network
    monkeypatch.setenv("PGSSLMODE", "disable")
    site = database(app_tier(), PASSWORD)
    built: list[str] = []

    def restore(source: Any, when: datetime, region: str, target: str) -> int:
        built.append(f"{source.identifier}@{iso(when)}->{target}")
        return stand_in.port

    with InstanceRefreshes(delay_seconds=0.1) as refreshes, \
            PointInTimeRestores(restore_action=restore, delay_seconds=0.1) as pitr:
        pitr.bind(ACCOUNT_ID, site.region, site.writer, lambda: (EARLIEST, LATEST))
        yield {"site": site, "built": built, "refreshes": refreshes, "pitr": pitr}


def run_pitr(tmp_path: Path, *argv: str, project: Path = ROOT) -> tuple[int, dict[str, Any], str]:
    report = tmp_path / "pitr.json"
    out = io.StringIO()
    code = command.run(["--report", str(report), "--journal-file", str(tmp_path / "j.json"),
                        "--poll-seconds", "0.05", "--restore-timeout", "20",
                        "--refresh-timeout", "20", "--lock-heartbeat-seconds", "1",
                        "--project-dir", str(project), *argv],
                       session=boto3.Session(), stdin=io.StringIO(""), out=out)
    data = json.loads(report.read_text()) if report.exists() else {}
    return code, data, out.getvalue()


def instance(identifier: str, region: str = "us-east-1") -> dict[str, Any] | None:
    found = client("rds", region).describe_db_instances()["DBInstances"]
    return next((dict(d) for d in found if d["DBInstanceIdentifier"] == identifier), None)


def endpoint(site: Site) -> str:
    return str(client("ssm", site.region).get_parameter(
        Name=f"/caresync-dr/{site.name}/database-host", WithDecryption=True)[
        "Parameter"]["Value"])


def test_a_restore_to_t_is_verified_then_cut_over(world: dict[str, Any],
                                                  tmp_path: Path) -> None:
    site: Site = world["site"]
    when = iso(LATEST - timedelta(minutes=30))
    code, report, out = run_pitr(tmp_path, "--restore-time", when, "--yes",
                                 "--check", "select count(*) > 100 from patients")
    assert code == 0, report.get("message")
    assert world["built"] == [f"caresync-primary-db@{when}->caresync-primary-db-g2"]
    restored = instance("caresync-primary-db-g2")
    assert restored is not None and restored["DBInstanceStatus"] == "available"
    writer = instance(site.writer)
    assert writer is not None
    # The site's own settings, copied: never the defaults RDS would pick.
    assert restored["DBSubnetGroup"]["DBSubnetGroupName"] == "caresync-primary-db"
    assert restored["DBSubnetGroup"]["VpcId"] == site.vpc
    assert [g["VpcSecurityGroupId"] for g in restored["VpcSecurityGroups"]] == [site.db_group]
    assert restored["DBParameterGroups"][0]["DBParameterGroupName"] == \
        "caresync-primary-postgres15"
    assert restored["MultiAZ"] and not restored["PubliclyAccessible"]
    assert restored["KmsKeyId"] == site.key_arn and restored["DeletionProtection"]
    tags = {t["Key"]: t["Value"] for t in restored["TagList"]}
    assert tags["caresync:generation"] == "2" and tags["caresync:restore-time"] == when
    # Cut over: the damaged writer fenced (kept), the app repointed and refreshed.
    assert [g["VpcSecurityGroupId"] for g in writer["VpcSecurityGroups"]] == [site.fence_group]
    assert writer["DBInstanceStatus"] == "available", "kept for forensics"
    address = restored["Endpoint"]["Address"]
    assert endpoint(site) == f"{address}:{restored['Endpoint']['Port']}"
    assert len(world["refreshes"].refreshes) == 1
    assert world["refreshes"].refreshes[0].desired_version is None
    checks = {c["name"]: c for c in report["checksRestored"]}
    assert checks["writable"]["value"] is True and checks["rows in patients"]["value"] == 120
    assert checks["check 1"]["ok"]
    assert report["fenced"] is True and report["restored"] == "caresync-primary-db-g2"
    assert any("pulumi import aws:rds/instance:Instance primary-database-g2-instance "
               "caresync-primary-db-g2" in step for step in report["reconcile"])
    assert "PITR COMPLETE" in out
    again, second, _ = run_pitr(tmp_path, "--restore-time", when, "--yes")
    assert again == 0 and second["outcome"] == "already restored"


@pytest.mark.parametrize(("when", "code", "fragment"), [
    (iso(EARLIEST - timedelta(hours=1)), 3, "outside every restorable window"),
    (iso(LATEST + timedelta(minutes=2)), 3, "outside every restorable window"),
    (iso(NOW + timedelta(hours=1)), 2, "is in the future"),
    ("2026-11-30T02:00:00", 2, "has no time zone"),
    ("yesterday", 2, "is not an ISO 8601 time"),
])
def test_a_time_no_backup_can_reach_is_refused(world: dict[str, Any], tmp_path: Path,
                                               when: str, code: int, fragment: str) -> None:
    got, report, _ = run_pitr(tmp_path, "--restore-time", when, "--yes")
    assert got == code and fragment in report["message"]
    if code == 3:
        assert iso(EARLIEST) in report["message"] and iso(LATEST) in report["message"], \
            "the refusal names the window"
    assert instance("caresync-primary-db-g2") is None
    assert world["built"] == []


def test_a_dry_run_changes_nothing(world: dict[str, Any], tmp_path: Path) -> None:
    site: Site = world["site"]
    before = endpoint(site)
    code, report, out = run_pitr(tmp_path, "--restore-time",
                                 iso(LATEST - timedelta(hours=1)), "--dry-run")
    assert code == 0, report.get("message")
    calls = [name.split(":", 1)[1] for name in report["awsCalls"]["operations"]]
    assert calls and not [c for c in calls if c.startswith(MUTATING)], calls
    assert report["awsCalls"]["changes"] == 0
    assert instance("caresync-primary-db-g2") is None and endpoint(site) == before
    writer = instance(site.writer)
    assert writer is not None
    assert [g["VpcSecurityGroupId"] for g in writer["VpcSecurityGroups"]] == [site.db_group]
    assert "would restore caresync-primary-db" in out


def test_a_restore_that_fails_its_checks_is_never_cut_over(world: dict[str, Any],
                                                           tmp_path: Path) -> None:
    site: Site = world["site"]
    before = endpoint(site)
    code, report, _ = run_pitr(tmp_path, "--restore-time", iso(LATEST - timedelta(hours=2)),
                               "--yes", "--check", "select count(*) > 1000 from patients")
    assert code == 1 and "fails its checks" in report["message"]
    assert endpoint(site) == before, "the app still uses the damaged writer"
    writer = instance(site.writer)
    assert writer is not None
    assert [g["VpcSecurityGroupId"] for g in writer["VpcSecurityGroups"]] == [site.db_group]
    assert not world["refreshes"].refreshes


def test_only_the_active_site_is_restored(world: dict[str, Any], tmp_path: Path) -> None:
    code, report, _ = run_pitr(tmp_path, "--stack", "dr", "--restore-time",
                               iso(LATEST - timedelta(hours=1)), "--yes")
    assert code == 3 and "activeSite is primary" in report["message"]


def test_after_a_failover_the_standby_restores_from_the_replicated_backups(
        aws: Emulator, stand_in: PostgresCluster, monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    """The corruption predates the regional failover: the promoted standby carries it, its own
    backups start at its promotion, the primary's automated backups replicated into the standby
    region reach back before it. The restore happens in the standby region alone."""
    monkeypatch.setenv("PGHOSTADDR", "127.0.0.1")
    monkeypatch.setenv("PGSSLMODE", "disable")
    project = tmp_path / "project"
    project.mkdir()
    for stack in ("prod", "dr"):
        document = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())
        document["config"]["caresync-dr:activeSite"] = "standby"
        if stack == "prod":
            document["config"]["caresync-dr:dbGeneration"] = 2
        (project / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump(document))
    standby = database(app_tier(Site(name="standby", region="us-west-2")), PASSWORD)
    client("rds").create_db_instance(  # the old writer in us-east-1, whose backups replicate
        DBInstanceIdentifier="caresync-primary-db", DBInstanceClass="db.r6g.large",
        Engine="postgres", MasterUsername="caresync_admin", MasterUserPassword="x" * 24,
        AllocatedStorage=100, BackupRetentionPeriod=30, StorageEncrypted=True,
        KmsKeyId="arn:aws:kms:us-east-1:111122223333:key/the-primary-site-key")
    promoted_at = NOW - timedelta(hours=2)
    built: list[str] = []

    def restore(source: Any, when: datetime, region: str, target: str) -> int:
        built.append(f"{source.identifier}@{iso(when)}->{target} in {region}")
        return stand_in.port

    with InstanceRefreshes(delay_seconds=0.1), \
            PointInTimeRestores(restore_action=restore, delay_seconds=0.1) as pitr:
        pitr.bind(ACCOUNT_ID, "us-east-1", "caresync-primary-db",
                  lambda: (EARLIEST, promoted_at))
        pitr.replicate(ACCOUNT_ID, "us-east-1", "caresync-primary-db", "us-west-2",
                       standby.key_arn)
        pitr.bind(ACCOUNT_ID, "us-west-2", standby.writer, lambda: (promoted_at, LATEST))
        when = iso(promoted_at - timedelta(hours=1))
        code, report, _ = run_pitr(tmp_path, "--stack", "dr", "--restore-time", when,
                                   "--yes", project=project)
    assert code == 0, report.get("message")
    assert built == [f"caresync-primary-db@{when}->caresync-standby-db-g2 in us-west-2"]
    assert "replicated from us-east-1" in report["restoredFrom"]
    restored = instance("caresync-standby-db-g2", "us-west-2")
    assert restored is not None and restored["KmsKeyId"] == standby.key_arn
    assert endpoint(standby).startswith(restored["Endpoint"]["Address"])


def test_a_writer_in_the_default_vpc_is_never_restored_there(
        aws: Emulator, stand_in: PostgresCluster, tmp_path: Path) -> None:
    """A restore copies the damaged writer's network: one in the default VPC (public subnets
    by default, AWS VPC user guide) is refused before any change, not copied."""
    ec2 = client("ec2")
    default_vpc = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])[
        "Vpcs"][0]["VpcId"]
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [default_vpc]}])[
        "Subnets"]
    site = database(app_tier(Site(vpc=default_vpc, subnets=[
        s["SubnetId"] for s in subnets[:2]])), PASSWORD)
    built: list[str] = []

    def restore(source: Any, when: datetime, region: str, target: str) -> int:
        built.append(target)
        return stand_in.port

    with InstanceRefreshes(delay_seconds=0.1) as refreshes, \
            PointInTimeRestores(restore_action=restore, delay_seconds=0.1) as pitr:
        pitr.bind(ACCOUNT_ID, site.region, site.writer, lambda: (EARLIEST, LATEST))
        before = endpoint(site)
        code, report, _ = run_pitr(tmp_path, "--restore-time",
                                   iso(LATEST - timedelta(hours=1)), "--yes")
    assert code == 3 and "in the default VPC" in report["message"], report.get("message")
    assert built == [] and instance("caresync-primary-db-g2") is None
    assert endpoint(site) == before and not refreshes.refreshes

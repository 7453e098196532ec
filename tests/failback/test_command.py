"""caresync-failback against the real program deployed into the emulator (no PostgreSQL: the
drill's round trip adds the data path). RDS's side of a new replica is its ReplicaLag
datapoint, published as RDS would once the replica streams.

One world per module: the tests run in order, each from the state the previous one left, as an
operator meets them (steady, failed over, a run that stops part-way, its resume).
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest

from caresync_dr.commands.failback import main
from caresync_dr.drill import localhttp
from caresync_dr.drill.deploy import Deployment, deploy_stacks
from caresync_dr.drill.round_trip import DrillPulumi, NewReplica, project_copy
from caresync_dr.emulation import cloudwatch
from caresync_dr.emulation.autoscaling import InstanceRefreshes
from caresync_dr.emulation.patching import restore_all
from caresync_dr.emulation.rds import ReplicaPromotions
from caresync_dr.emulation.secretsmanager import ReplicaKeys
from caresync_dr.emulation.server import Emulator, reset_backends
from caresync_dr.failback.deploy import DeployFailedError
from caresync_dr.inventory import parse_inventory
from caresync_dr.settings import settings_from_stack_file
from tests.ci_paths import ROOT

PRIMARY, STANDBY = "us-east-1", "us-west-2"


@dataclass
class Site:
    emulator: Emulator
    deployment: Deployment
    project: Path
    work: Path
    session: boto3.Session
    fail_next_up: list[str]

    def client(self, service: str, region: str) -> Any:
        return self.session.client(service, region_name=region,  # type: ignore[call-overload]
                                   endpoint_url=self.emulator.endpoint,
                                   aws_access_key_id="testing",
                                   aws_secret_access_key="testing")

    def db(self, region: str, ident: str) -> dict[str, Any] | None:
        try:
            found: dict[str, Any] = self.client("rds", region).describe_db_instances(
                DBInstanceIdentifier=ident)["DBInstances"][0]
        except self.client("rds", region).exceptions.DBInstanceNotFoundFault:
            return None
        return found

    def deployer(self) -> DrillPulumi:
        def replica(ident: str, region: str, source: str) -> NewReplica | None:
            cloudwatch.publish_replica_lag(self.client("cloudwatch", region), ident, 0.4,
                                           at=datetime.now(UTC))
            return None

        pulumi = DrillPulumi(self.deployment, {"prod": PRIMARY, "dr": STANDBY}, self.project,
                             ROOT, lambda text: None, replica)
        original = pulumi.up

        def up(stack: str, progress: Callable[[str], None]) -> None:
            if stack in self.fail_next_up:
                self.fail_next_up.remove(stack)
                raise DeployFailedError(f"pulumi up -s {stack}: the state backend timed out")
            original(stack, progress)

        pulumi.up = up  # type: ignore[method-assign]
        return pulumi

    def failback(self, *args: str, deployer: DrillPulumi | None = None,
                 name: str = "run") -> tuple[int, dict[str, Any]]:
        report = self.work / f"{name}.json"
        code = main(["--stack", "dr", "--project-dir", str(self.project), "--report",
                     str(report), "--poll-seconds", "0.05", "--wait-timeout", "20", *args],
                    deployer=deployer or self.deployer(), stdin=io.StringIO(""),
                    out=io.StringIO())
        return code, json.loads(report.read_text())

    def stack_files(self) -> dict[str, str]:
        return {n: (self.project / n).read_text() for n in ("Pulumi.prod.yaml",
                                                            "Pulumi.dr.yaml")}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    mp = pytest.MonkeyPatch()
    restore_all()
    reset_backends()
    emulator = Emulator()
    emulator.start()
    keys = ReplicaKeys().arm()
    promotions = ReplicaPromotions(delay_seconds=0.0).arm()
    refreshes = InstanceRefreshes(delay_seconds=0.0).arm()
    try:
        for key, value in emulator.env().items():
            mp.setenv(key, value)
        deployment = deploy_stacks(emulator, ROOT)
        work = tmp_path_factory.mktemp("failback")

        class Options:
            project_dir = ROOT

        project = project_copy(Options(), work)  # type: ignore[arg-type]
        yield Site(emulator, deployment, project, work, boto3.Session(), [])
    finally:
        for shim in (refreshes, promotions, keys):
            shim.disarm()
        emulator.stop()
        reset_backends()
        mp.undo()


def test_1_steady_state_is_already_protected_and_nothing_changes(site: Site) -> None:
    before = site.stack_files()
    code, report = site.failback("--yes", name="steady")
    assert code == 0 and report["outcome"] == "already protected", report.get("message")
    assert report["direction"]["activeSite"] == "primary"
    assert site.stack_files() == before


def _fail_over(site: Site) -> None:
    """What failover.py leaves: the standby promoted, the switch at FAILOVER."""
    settings = settings_from_stack_file("dr", ROOT)
    site.client("rds", STANDBY).promote_read_replica(DBInstanceIdentifier="caresync-standby-db")
    deadline = time.monotonic() + 10
    while (db := site.db(STANDBY, "caresync-standby-db")) is not None and (
            db.get("ReadReplicaSourceDBInstanceIdentifier") or db["DBInstanceStatus"] !=
            "available"):
        assert time.monotonic() < deadline, db
        time.sleep(0.05)
    site.client("s3", STANDBY).put_object(Bucket=site.deployment.outputs["dr"][
                                              "trafficSwitchBucket"],
                                          Key="traffic-switch", Body=b"FAILOVER")
    assert settings.active_site == "primary"


def test_2_dry_run_and_check_change_nothing(site: Site) -> None:
    _fail_over(site)
    before = site.stack_files()
    code, report = site.failback("--dry-run", name="dry-run")
    assert code == 0, report.get("message")
    assert report["awsCalls"]["changes"] == 0 and report["awsCalls"]["blocked"] is True
    assert [row["sees"] for row in report["plan"]][:3] == ["run", "run", "run"]
    assert site.stack_files() == before
    assert site.db(PRIMARY, "caresync-primary-db-g2") is None
    code, report = site.failback("--check", name="check")
    assert code == 0 and report["ready"] is True
    assert report["awsCalls"]["changes"] == 0


def test_3_a_run_stopped_part_way_is_refused_then_resumed(site: Site) -> None:
    site.fail_next_up.append("prod")
    code, report = site.failback("--yes", name="part-way")
    assert code == 1, report.get("message")
    outcomes = {s["name"]: s["outcome"] for s in report["steps"]}
    assert outcomes["deploy-active-stack"] == "done"
    assert outcomes["deploy-protected-stack"] == "failed"
    assert "activeSite: standby" in site.stack_files()["Pulumi.dr.yaml"]
    assert site.db(PRIMARY, "caresync-primary-db-g2") is None
    code, report = site.failback("--yes", name="plain-rerun")
    assert code == 3 and "--resume" in report["message"]
    code, report = site.failback("--yes", "--resume", name="resume")
    assert code == 0, report.get("message")
    assert report["outcome"] == "completed"
    g2 = site.db(PRIMARY, "caresync-primary-db-g2")
    assert g2 is not None and str(g2["ReadReplicaSourceDBInstanceIdentifier"]).endswith(
        ":db:caresync-standby-db")
    assert site.db(PRIMARY, "caresync-primary-db") is None       # retired
    snapshots = site.client("rds", PRIMARY).describe_db_snapshots(
        DBSnapshotIdentifier="caresync-primary-db-final")["DBSnapshots"]
    assert snapshots                                               # its final snapshot
    files = site.stack_files()
    assert 'dbGeneration: "2"' in files["Pulumi.prod.yaml"]
    assert "dbRetiring" not in files["Pulumi.prod.yaml"]
    # failover.py and the switchover read the inventory: it names the new generation.
    inventory = parse_inventory(site.client("ssm", STANDBY).get_parameter(
        Name="/caresync-dr/failover-inventory", WithDecryption=True)["Parameter"]["Value"])
    assert inventory.active_site == "standby"
    assert inventory.primary.database.identifier == "caresync-primary-db-g2"
    assert inventory.standby.database.identifier == "caresync-standby-db"
    # A rerun finds nothing to do.
    code, report = site.failback("--yes", name="after")
    assert code == 0 and report["outcome"] == "already protected"


def test_4_failover_check_is_green_in_the_new_direction(site: Site) -> None:
    """After the failback the region failover's direction is standby -> primary: --check
    judges the primary site's new generation as the replica, and the dry run plans its
    promotion (issue 15: the program put the inventory into us-east-1 too)."""
    from caresync_dr.failover.command import run as failover

    cloudwatch.publish_replica_lag(site.client("cloudwatch", PRIMARY),
                                   "caresync-primary-db-g2", 0.3, at=datetime.now(UTC))
    report = site.work / "failover-check.json"
    code = failover(["--check", "--stack", "dr", "--report", str(report),
                     "--health-url", "http://127.0.0.1:9/api/health"], out=io.StringIO())
    checks = {c["name"]: c for c in json.loads(report.read_text())["checks"]}
    assert code == 0, checks
    assert "caresync-primary-db-g2" in checks["replica exists"]["detail"]
    assert "caresync-standby-db" in checks["is a read replica"]["detail"]
    assert checks["traffic switch"]["ok"] and "FAILOVER" in checks["traffic switch"]["detail"]
    dry = site.work / "failover-dry.json"
    code = failover(["--dry-run", "--stack", "dr", "--report", str(dry), "--project-dir",
                     str(site.project)], out=io.StringIO())
    assert code == 0, dry.read_text()
    plan = {s["step"]: s for s in json.loads(dry.read_text())["plan"]}
    assert "would promote caresync-primary-db-g2" in plan["promote-database"]["sentence"]
    assert "from FAILOVER to PRIMARY" in plan["switch-traffic"]["sentence"]
    assert "caresync-standby-app" in plan["fence-primary-app"]["sentence"]
    # The dr stack (activeSite standby) wrote the same inventory into us-east-1, under the
    # primary site's key: what a failover reads when us-west-2 is the region that failed.
    copies = [site.client("ssm", region).get_parameter(
        Name="/caresync-dr/failover-inventory", WithDecryption=True)["Parameter"]
        for region in (STANDBY, PRIMARY)]
    assert copies[0]["Value"] == copies[1]["Value"]
    assert parse_inventory(copies[1]["Value"]).primary_backup_bucket


def test_5_a_switch_pointing_at_a_replica_is_refused_in_one_line(site: Site,
                                                                 capsys: pytest.CaptureFixture[str]
                                                                 ) -> None:
    """The switch says PRIMARY but the primary site's database is a replica (a switchover
    that has not finished): nothing is written, exit 3, one line naming what to do."""
    bucket = site.deployment.outputs["dr"]["trafficSwitchBucket"]
    s3 = site.client("s3", STANDBY)
    s3.put_object(Bucket=bucket, Key="traffic-switch", Body=b"PRIMARY")
    before = site.stack_files()
    try:
        code, report = site.failback("--yes", name="refused")
    finally:
        s3.put_object(Bucket=bucket, Key="traffic-switch", Body=b"FAILOVER")
    assert code == 3
    assert "finish the failover or switchover first" in report["message"]
    assert site.stack_files() == before
    err = capsys.readouterr().err
    assert "Traceback" not in err and "(exit 3: refused)" in err


def test_6_without_the_pulumi_cli_the_preflight_refuses(site: Site,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The default deployer is the Pulumi CLI: missing from PATH, --check names it (exit 5)
    and a run changes nothing (the preflight reads it before the first change)."""
    monkeypatch.setenv("PATH", str(site.work))      # no pulumi here
    report = site.work / "no-cli.json"
    code = main(["--check", "--stack", "dr", "--project-dir", str(site.project), "--report",
                 str(report)], stdin=io.StringIO(""), out=io.StringIO())
    assert code == 5
    rows = {c["name"]: c for c in json.loads(report.read_text())["checks"]}
    assert not rows["pulumi up"]["ok"] and "not on PATH" in rows["pulumi up"]["detail"]


def test_7_the_reverse_failover_runs_with_us_west_2_gone(site: Site) -> None:
    """Issue 15, the reverse direction: us-west-2 (the writer's region since the failover) is
    lost. With every us-west-2 endpoint refused, failover.py promotes the primary site's new
    generation from what the program put into us-east-1: inventory copy, lock, journal and
    timeline bucket. (Last in the module: it ends the round trip's protection.)"""
    from caresync_dr.emulation.network import Outage, refuse_requests
    from caresync_dr.failover.command import run as failover
    from tests.failover.world import start_health_server

    def health() -> dict[str, Any]:
        # Route 53: the switch in us-west-2 does not answer -> the PRIMARY record serves.
        db = site.db(PRIMARY, "caresync-primary-db-g2") or {}
        writable = "ReadReplicaSourceDBInstanceIdentifier" not in db
        return {"status": "ok", "region": PRIMARY,
                "database": {"writable": writable, "role": "primary" if writable else "replica"}}

    outage = Outage()
    outage.take_down(regions=[STANDBY])
    session = boto3.Session()
    refused = refuse_requests(session, outage.refuses)
    server = start_health_server(health)
    started = datetime.now(UTC)
    cloudwatch.publish_replica_lag(site.client("cloudwatch", PRIMARY),
                                   "caresync-primary-db-g2", 0.5, at=started)
    report = site.work / "reverse-failover.json"
    try:
        code = failover(["--yes", "--stack", "dr", "--project-dir", str(site.project),
                         "--report", str(report), "--outage-started",
                         started.strftime("%Y-%m-%dT%H:%M:%SZ"),
                         "--health-url",
                         f"http://127.0.0.1:{server.server_address[1]}/api/health",
                         "--poll-seconds", "0.05", "--wait-timeout", "20",
                         "--verify-timeout", "10"], session=session, out=io.StringIO())
    finally:
        localhttp.stop(server)
    document = json.loads(report.read_text())
    assert code == 0, document.get("message")
    assert refused, "nothing tried us-west-2: the outage was not exercised"
    g2 = site.db(PRIMARY, "caresync-primary-db-g2")
    assert g2 is not None and "ReadReplicaSourceDBInstanceIdentifier" not in g2
    journal = site.client("ssm", PRIMARY).get_parameter(Name="/caresync-dr/failover/journal")
    assert json.loads(journal["Parameter"]["Value"])["status"] == "completed"
    inventory = parse_inventory(site.client("ssm", PRIMARY).get_parameter(
        Name="/caresync-dr/failover-inventory", WithDecryption=True)["Parameter"]["Value"])
    assert inventory.primary_backup_bucket is not None
    timeline = site.client("s3", PRIMARY).get_object(
        Bucket=inventory.primary_backup_bucket, Key=f"incidents/{document['runId']}.md")
    assert b"promote-database" in timeline["Body"].read()

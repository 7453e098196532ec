"""switchover.py as the operator runs it (a subprocess), against the emulated stacks and a
real PostgreSQL 15 primary + streaming standby, with an RDS-like master user.

One world, in order, its primary committing asynchronously (``synchronous_commit = off`` for
the whole server: the switchover handles it instead of refusing it): --check; --dry-run and
a refused prompt change nothing; bad input is one line; a replica that does not replay in
time gets the fence rolled back (exit 1, nothing promoted); a plain rerun of that unfinished
run is refused; --resume is killed (SIGKILL) after asking RDS to promote; a second --resume
completes without losing a write."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from caresync_dr.db.roles import APP_ROLE
from caresync_dr.drill.runner import DrillOptions
from caresync_dr.drill.scenarios import SCENARIOS
from caresync_dr.drill.switchover import switchover_argv, switchover_env, switchover_world
from caresync_dr.drill.timeline import Timeline
from caresync_dr.drill.world import World
from caresync_dr.pg.cluster import PostgresCluster
from tests.switchover.pg import require_postgres

pytestmark = [pytest.mark.drill, pytest.mark.postgres]
OPTIONS = DrillOptions(scenario=SCENARIOS["planned-switchover"], promote_seconds=3.0,
                       scale_seconds=0.5, poll_seconds=0.1, serve_timeout=30.0)


NOWHERE = "postgresql://caresync_master:pw-not-shown@127.0.0.1:9/caresync?connect_timeout=1"


@dataclass
class Setup:
    world: World
    work: Path

    def argv(self, *extra: str, yes: bool = True) -> list[str]:
        argv = [*switchover_argv(self.world, OPTIONS, self.work),
                "--lock-heartbeat-seconds", "0.5", *extra]
        return argv if yes else [a for a in argv if a != "--yes"]

    def run(self, *extra: str, yes: bool = True, timeout: float = 120
            ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.argv(*extra, yes=yes), check=False,
                              env=switchover_env(self.world),
                              stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=timeout, cwd=OPTIONS.project_dir)

    def report(self, name: str = "switchover-standby-report.json") -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.work / name).read_text())
        return data

    @property
    def journal(self) -> Path:
        return self.work / "switchover-standby-journal.json"


@pytest.fixture(scope="module")
def setup() -> Iterator[Setup]:
    require_postgres()
    with tempfile.TemporaryDirectory(prefix="caresync-switchover-test-") as work, \
            switchover_world(OPTIONS, Timeline()) as world:
        world.databases.primary.psql("ALTER SYSTEM SET synchronous_commit = off")
        world.databases.primary.psql("select pg_reload_conf()")
        yield Setup(world, Path(work))


def app_conn(world: World, cluster: PostgresCluster) -> psycopg.Connection[Any]:
    config = world.config_at_boot["primary"]
    return psycopg.connect(make_conninfo(host="127.0.0.1", port=cluster.port, user=config.user,
                                         password=config.password, dbname=config.dbname),
                           autocommit=True, connect_timeout=2)


def can_login(cluster: PostgresCluster) -> str:
    return cluster.psql(f"select rolcanlogin from pg_roles where rolname = '{APP_ROLE.name}'")


def switch(world: World) -> str | None:
    answer = world.resolver.current()
    return answer.failover if answer else None


def switch_object(world: World) -> str:
    sw = world.inventory.traffic_switch
    s3 = boto3.session.Session().client(
        "s3", region_name=sw.region, endpoint_url=world.emulator.endpoint,
        aws_access_key_id="testing", aws_secret_access_key="testing")
    return str(s3.get_object(Bucket=sw.bucket, Key=sw.key)["Body"].read().decode().strip())


def standby_status(world: World) -> str:
    inv = world.inventory.standby
    rds = boto3.session.Session().client(
        "rds", region_name=inv.region, endpoint_url=world.emulator.endpoint,
        aws_access_key_id="testing", aws_secret_access_key="testing")
    [db] = rds.describe_db_instances(DBInstanceIdentifier=inv.database.identifier)["DBInstances"]
    return str(db["DBInstanceStatus"])


def unchanged(setup: Setup) -> None:
    dbs = setup.world.databases
    assert can_login(dbs.primary) == "t"
    assert dbs.standby.psql("select pg_is_in_recovery()") == "t"
    assert switch_object(setup.world) == setup.world.inventory.traffic_switch.primary_value
    # A fence that was rolled back failed the primary site's health check for a moment, and
    # Route 53 may have answered the standby meanwhile (as it would on AWS when the window
    # exceeds failure threshold x interval); it answers the primary again once the check
    # passes. The switch itself never moved.
    deadline = time.monotonic() + 20
    while switch(setup.world) != "PRIMARY" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert switch(setup.world) == "PRIMARY"


def test_check_reports_both_sites_ready(setup: Setup) -> None:
    result = setup.run("--check", "--report", str(setup.work / "check.json"))
    assert result.returncode == 0, result.stdout + result.stderr
    rows = {c["name"]: c for c in setup.report("check.json")["checks"]}
    assert rows["primary database is the writer"]["ok"]
    assert "synchronous_commit off" in rows["primary database is the writer"]["detail"]
    assert rows["standby database is a streaming replica"]["ok"]
    assert rows["replica follows the writer"]["ok"]
    assert rows["RDS replica"]["ok"]
    assert "ready" in result.stdout


def test_dry_run_and_a_refused_prompt_change_nothing(setup: Setup) -> None:
    writer = app_conn(setup.world, setup.world.databases.primary)
    result = setup.run("--dry-run", "--report", str(setup.work / "dry.json"))
    assert result.returncode == 0, result.stdout + result.stderr
    dry = setup.report("dry.json")
    assert dry["awsCalls"]["changes"] == 0
    assert "would refuse logins of " in result.stdout and "caresync_app" in result.stdout
    assert "(read-only)" in result.stdout   # its database sessions could not write
    # a closed stdin answers no at the prompt
    refused = setup.run(yes=False)
    assert refused.returncode == 3, refused.stdout + refused.stderr
    # the app's session survived both: nothing was fenced or terminated
    writer.execute("insert into patients (seq, name) values (-10, 'still writing')")
    writer.close()
    unchanged(setup)


def test_an_unreachable_database_is_refused_by_the_preflight(setup: Setup) -> None:
    result = setup.run("--dry-run", "--target-database-url", NOWHERE)
    assert result.returncode == 3, result.stdout + result.stderr
    assert "did not answer" in result.stdout
    assert "pw-not-shown" not in result.stdout + result.stderr
    unchanged(setup)


def test_bad_input_is_one_line_and_exit_2(setup: Setup) -> None:
    result = setup.run("--catch-up-timeout", "nan")
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "--catch-up-timeout" in result.stderr
    unchanged(setup)


def test_a_live_failover_holding_the_primary_region_lock_refuses_the_switchover(
        setup: Setup) -> None:
    """A reversed failover (after a failback) locks in us-east-1, the switchover in us-west-2:
    before, the switchover never read us-east-1's lock and went ahead, two operations moving
    one writer. Its preflight now refuses (3) while that lock is live, and changes nothing."""
    from caresync_dr.operations.lock import LeaseLock, LockHolder

    inv = setup.world.inventory
    ssm = boto3.session.Session().client(
        "ssm", region_name=inv.primary.region, endpoint_url=setup.world.emulator.endpoint,
        aws_access_key_id="testing", aws_secret_access_key="testing")
    held = LeaseLock(ssm, inv.lock_parameter)
    me = LockHolder.me("reversed-failover-elsewhere")
    assert held.acquire(me) is None
    try:
        result = setup.run("--report", str(setup.work / "locked.json"))
    finally:
        held.release(me)
    assert result.returncode == 3, result.stdout + result.stderr
    report = setup.report("locked.json")
    assert report["outcome"] == "refused" and report["steps"] == []
    assert "no run in the primary region" in report["message"]
    assert "reversed-failover-elsewhere" in report["message"]
    unchanged(setup)


def test_a_replica_that_does_not_catch_up_gets_the_fence_rolled_back(setup: Setup) -> None:
    dbs = setup.world.databases
    # The standby applies each commit 3 s late: the preflight (which waits up to 10 s for the
    # replica to replay the writer's position) passes, the 1 s catch-up after the fence not.
    dbs.standby.psql("ALTER SYSTEM SET recovery_min_apply_delay = '3s'")
    dbs.standby.psql("select pg_reload_conf()")
    try:
        writer = app_conn(setup.world, dbs.primary)
        result = setup.run("--catch-up-timeout", "1")
    finally:
        dbs.standby.psql("ALTER SYSTEM RESET recovery_min_apply_delay")
        dbs.standby.psql("select pg_reload_conf()")
    assert result.returncode == 1, result.stdout + result.stderr
    report = setup.report()
    section = report["switchover"]
    assert section["fenceRolledBackAt"], section
    assert "rolled back" in report["message"]
    assert section["acknowledgedWritesLost"] == 0
    steps = {s["name"]: s["outcome"] for s in report["steps"]}
    assert steps["fence-writes"] == "done" and steps["wait-for-replay"] == "failed"
    assert "promote-database" not in steps
    # the old writer takes writes again; the fenced session was ended, a new one logs in
    with pytest.raises(psycopg.OperationalError):
        writer.execute("insert into patients (seq, name) values (-11, 'x')")
    app_conn(setup.world, dbs.primary).close()
    unchanged(setup)
    rerun = setup.run()
    assert rerun.returncode == 3 and "--resume" in rerun.stderr, rerun.stderr


def test_resume_after_a_kill_completes_without_losing_a_write(setup: Setup) -> None:
    dbs = setup.world.databases
    with app_conn(setup.world, dbs.primary) as writer:
        for seq in range(5000, 5050):
            writer.execute("insert into patients (seq, name) values (%s, 'before')", (seq,))
    proc = subprocess.Popen(setup.argv("--resume"), env=switchover_env(setup.world),
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, cwd=OPTIONS.project_dir,
                            start_new_session=True)
    deadline = time.monotonic() + 90
    try:
        # Killed once RDS has accepted the promotion (the journal, local and SSM, says so
        # before the request is sent; RDS shows the replica modifying for promote_seconds).
        while time.monotonic() < deadline:
            if standby_status(setup.world) != "available":
                break
            time.sleep(0.05)
        else:
            pytest.fail("the run never asked RDS to promote")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert can_login(dbs.primary) == "f"            # killed mid-way: the fence holds
    journal = json.loads(setup.journal.read_text())
    assert journal["status"] == "running"           # it never got to say how it ended
    time.sleep(2.0)                                 # 3 missed heartbeats: the lock is stale
    plain = setup.run()
    assert plain.returncode == 3 and "--resume" in plain.stderr, plain.stderr
    # The old writer need not answer any more: this run fenced it, saw the final position
    # replayed and asked for the promotion before it was killed.
    resumed = setup.run("--resume", "--source-database-url", NOWHERE)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    report = setup.report()
    assert "not needed any more" in resumed.stdout, resumed.stdout
    assert report["outcome"] == "completed"
    assert report["switchover"]["acknowledgedWritesLost"] == 0
    assert report["switchover"]["writeUnavailableSeconds"] is not None
    assert dbs.standby.psql("select pg_is_in_recovery()") == "f"
    assert can_login(dbs.standby) == "t" and can_login(dbs.primary) == "f"
    present = set(dbs.standby.psql("select seq from patients where seq between 5000 and 5049",
                                   dbname=dbs.app_database).split())
    assert len(present) == 50
    steps = {s["name"]: s["outcome"] for s in report["steps"]}
    assert steps["promote-database"] == "done" and steps["verify"] == "done", steps
    again = setup.run()
    assert again.returncode == 0 and "already switched over" in again.stdout, again.stdout

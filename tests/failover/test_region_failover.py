"""--scope region against the emulated sites: the happy path and every safety rail."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError
from moto.cloudwatch.models import cloudwatch_backends
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.rds.models import rds_backends
from moto.ssm.models import ssm_backends

from caresync_dr.aws import STANDBY
from caresync_dr.cli import ExitCode
from caresync_dr.failover import command
from tests.failover import world as w

READ_PREFIXES = ("Describe", "Get", "List")


def mutating(world: w.World) -> list[str]:
    return [n for n in world.calls.names() if not n.split(":")[1].startswith(READ_PREFIXES)]


def assert_untouched(world: w.World) -> None:
    """Nothing a failover changes has changed."""
    db = world.db(w.STANDBY, w.STANDBY_DB)
    assert db.source_db_instance_identifier == world.inventory.primary.database.arn
    assert world.switch_value() == "PRIMARY"
    asg = w.client("autoscaling", w.STANDBY).describe_auto_scaling_groups(
        AutoScalingGroupNames=["dr-app"])["AutoScalingGroups"][0]
    assert asg["DesiredCapacity"] == 1
    assert world.parameter(w.STANDBY, world.inventory.lock_parameter) is None


def assert_failed_over(world: w.World) -> None:
    db = w.client("rds", w.STANDBY).describe_db_instances(
        DBInstanceIdentifier=w.STANDBY_DB)["DBInstances"][0]
    assert "ReadReplicaSourceDBInstanceIdentifier" not in db
    assert db["DBInstanceStatus"] == "available"
    assert world.switch_value() == "FAILOVER"
    asg = w.client("autoscaling", w.STANDBY).describe_auto_scaling_groups(
        AutoScalingGroupNames=["dr-app"])["AutoScalingGroups"][0]
    assert (asg["MinSize"], asg["DesiredCapacity"]) == (2, 2)
    assert world.parameter(w.STANDBY, world.inventory.lock_parameter) is None
    journal = json.loads(world.parameter(w.STANDBY, world.inventory.journal_parameter) or "{}")
    assert journal["status"] == "completed"


def test_happy_path_promotes_scales_switches_verifies_and_reports(
        world: w.World, failover: Any, tmp_path: Path) -> None:
    world.overrides["promote_seconds"] = 0.4
    report_path = tmp_path / "run.json"
    result = failover("--yes", "--report", str(report_path))
    assert result.code == ExitCode.OK, result.out
    assert_failed_over(world)
    # The old primary was reachable, so it is fenced: app at zero, database ingress revoked.
    prod = w.client("autoscaling", w.PRIMARY).describe_auto_scaling_groups(
        AutoScalingGroupNames=["prod-app"])["AutoScalingGroups"][0]
    assert prod["DesiredCapacity"] == 0
    sg = w.client("ec2", w.PRIMARY).describe_security_groups(
        GroupIds=[world.inventory.primary.database.security_group_id])["SecurityGroups"][0]
    assert sg["IpPermissions"] == []
    assert world.calls.count("PromoteReadReplica") == 1
    # The incident opened and resolved by e-mail (the notifier; phases go to the chat only).
    assert world.calls.count("Publish") == 2

    report = json.loads(report_path.read_text())
    assert report["outcome"] == "completed" and report["exitCode"] == 0
    assert report["fenced"] == "fenced"
    assert report["dataLossExposureSeconds"] == 2.0
    assert 0 < report["rtoSeconds"] < 30
    steps = {s["name"]: s for s in report["steps"]}
    assert {n: s["outcome"] for n, s in steps.items()} == {
        "fence-primary-app": "done", "fence-primary-database": "done",
        "promote-database": "done", "scale-standby-app": "done", "switch-traffic": "done",
        "observe-route53": "done", "verify": "done"}
    for step in steps.values():
        assert step["started_at"] <= step["ended_at"] and step["seconds"] >= 0
    # Scale-up did not wait for the (0.4 s) promotion: they ran side by side. (Which ends
    # first is the machine's business: under load the scale-up's target-health polls can
    # outlast a 0.4 s promotion, and asserting that order failed once by 13 ms.)
    promote, scale = steps["promote-database"], steps["scale-standby-app"]
    assert promote["seconds"] >= 0.4
    assert scale["started_at"] < promote["ended_at"] and promote["started_at"] < scale["ended_at"]
    # The timeline sits beside the report and in the standby backup bucket.
    timeline = report_path.with_suffix(".md").read_text()
    assert "Measured RTO" in timeline and "| promote-database | done |" in timeline
    key = f"incidents/{report['runId']}.md"
    stored = w.client("s3", w.STANDBY).get_object(
        Bucket=world.backup_bucket, Key=key)["Body"].read().decode()
    assert stored == timeline
    assert "activeSite: standby" in result.out and "pulumi up -s dr" in result.out


def test_dry_run_makes_no_mutating_call(world: w.World, failover: Any, tmp_path: Path) -> None:
    result = failover("--dry-run", "--report", str(tmp_path / "dry.json"))
    assert result.code == ExitCode.OK, result.out
    report = json.loads((tmp_path / "dry.json").read_text())
    assert report["wouldProceed"] is True
    assert [r["sees"] for r in report["plan"]] == ["run"] * 7
    assert world.calls.seen, "the dry run read nothing"
    assert mutating(world) == []
    assert_untouched(world)
    for expected in ("would promote caresync-dr-db", "would scale dr-app from 1 to 2",
                     "would change s3://caresync-dr-switch-test/switch/traffic from PRIMARY",
                     "would scale prod-app from 2 to 0", "~600 s"):
        assert expected in result.out


def test_check_passes_on_a_healthy_pair(world: w.World, failover: Any) -> None:
    result = failover("--check")
    assert result.code == ExitCode.OK, result.out
    table = result.out.split("\nready:")[0].splitlines()[1:]
    rows = {line.split("  ")[0]: line.split()[-1] for line in table}
    assert set(rows) == {"inventory", "replica exists", "is a read replica", "replica available",
                         "replica replicating", "replica lag within RPO", "app tier",
                         "target group", "load balancer targets",
                         "traffic switch", "lock free", "replica follows the writer",
                         "DNS follows the switch"}
    assert all("  ok  " in line for line in table), table
    assert "ready: a failover would succeed now" in result.out
    assert mutating(world) == []


@pytest.mark.parametrize(("breakage", "row", "why"), [
    ("broken-replication", "replica replicating", "RDS reports read replication 'error'"),
    ("lag", "replica lag within RPO", "1800 s at"),
    ("switched", "traffic switch", "traffic is already on the standby site"),
    ("no-replica", "replica exists", "caresync-dr-db not found in us-west-2"),
])
def test_check_fails_for_the_right_reason(world: w.World, failover: Any, breakage: str,
                                          row: str, why: str) -> None:
    if breakage == "broken-replication":
        world.replication_status[0] = "error"
    elif breakage == "lag":
        w.put_lag(w.STANDBY, w.STANDBY_DB, 1800, minutes_ago=0.5)
    elif breakage == "switched":
        w.client("s3", w.STANDBY).put_object(
            Bucket=world.switch_bucket, Key=w.SWITCH_KEY, Body=b"FAILOVER")
    else:
        # moto cannot delete a cross-region replica (it looks the replica up in the source's
        # list by identifier, where it stored the ARN), so drop it from the backend directly.
        del rds_backends[DEFAULT_ACCOUNT_ID][w.STANDBY].databases[w.STANDBY_DB]
    world.calls.seen.clear()
    result = failover("--check")
    assert result.code == ExitCode.NOT_READY, result.out
    failing = [line for line in result.out.splitlines() if "  FAIL  " in line]
    assert len(failing) == 1, result.out
    assert failing[0].startswith(row) and why in failing[0]
    assert mutating(world) == []


def test_primary_region_and_route53_unreachable_still_fail_over(
        world: w.World, failover: Any, tmp_path: Path) -> None:
    refused = w.take_down(world.session, lambda url: "us-east-1" in url or "route53" in url)
    report_path = tmp_path / "run.json"
    result = failover("--yes", "--report", str(report_path))
    assert result.code == ExitCode.OK, result.out
    assert_failed_over(world)
    assert any("us-east-1" in u for u in refused) and any("route53" in u for u in refused)
    report = json.loads(report_path.read_text())
    assert report["fenced"] == "not confirmed"
    outcomes = {s["name"]: s["outcome"] for s in report["steps"]}
    assert outcomes["fence-primary-app"] == "not confirmed"
    assert outcomes["fence-primary-database"] == "not confirmed"
    assert outcomes["observe-route53"] == "not confirmed"
    assert outcomes["verify"] == "done"
    details = {s["name"]: s["detail"] for s in report["steps"]}
    assert "us-east-1 is unreachable (EndpointConnectionError)" in details["fence-primary-app"]
    # BEST_EFFORT budget: one read per fencing step, two attempts each, then it gives up (the
    # notifier's secret read, standby region first, has the same budget).
    assert len([u for u in refused if "us-east-1" in u and "secretsmanager" not in u]) == 4
    assert len([u for u in refused if "route53" in u]) == 2
    # The old primary is untouched (it was unreachable), and nothing waited on it for long.
    assert w.client("autoscaling", w.PRIMARY).describe_auto_scaling_groups(
        AutoScalingGroupNames=["prod-app"])["AutoScalingGroups"][0]["DesiredCapacity"] == 2
    assert "old primary not confirmed" in result.out


def test_throttling_bursts_are_retried(world: w.World, failover: Any) -> None:
    bursts = {"rds.DescribeDBInstances": 3, "rds.PromoteReadReplica": 2,
              "ssm.PutParameter": 3, "ssm.GetParameter": 2}
    served = w.throttle(world.session, bursts)
    result = failover("--yes")
    assert result.code == ExitCode.OK, result.out
    assert served == bursts
    assert world.calls.count("PromoteReadReplica") == 1   # one API call, retried below it
    assert_failed_over(world)


class SimulatedCrash(BaseException):
    """Like kill -9: not an error the tool handles, so nothing is cleaned up."""


def lock_of(world: w.World) -> dict[str, Any]:
    return dict(json.loads(world.parameter(w.STANDBY, world.inventory.lock_parameter) or "{}"))


def age_lock(world: w.World, seconds: float) -> None:
    """Time passes after a crash: the dead holder's last heartbeat, and SSM's record of the
    lock's last write, are ``seconds`` old."""
    lock = lock_of(world)
    then = datetime.now(UTC) - timedelta(seconds=seconds)
    lock["heartbeatAt"] = then.isoformat()
    w.client("ssm", w.STANDBY).put_parameter(Name=world.inventory.lock_parameter,
                                             Value=json.dumps(lock), Type="String",
                                             Overwrite=True)
    for version in ssm_backends[DEFAULT_ACCOUNT_ID][w.STANDBY]._parameters[
            world.inventory.lock_parameter]:
        version.last_modified_date = then.replace(tzinfo=None)   # moto keeps naive UTC


def test_crash_after_promotion_then_resume_ends_consistent(
        world: w.World, failover: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    crashed: list[str] = []

    def crash_on_switch(params: dict[str, Any], **_: Any) -> None:
        if not crashed and w.SWITCH_KEY in str(params.get("url", "")):
            crashed.append("switch")
            raise SimulatedCrash

    world.session.events.register("before-call.s3.PutObject", crash_on_switch)
    with pytest.raises(SimulatedCrash):
        failover("--yes", "--report", str(tmp_path / "first.json"))
    assert world.db(w.STANDBY, w.STANDBY_DB).source_db_instance_identifier is None
    assert world.switch_value() == "PRIMARY"
    journal = json.loads(world.parameter(w.STANDBY, world.inventory.journal_parameter) or "{}")
    assert journal["status"] == "running"
    lock = json.loads(world.parameter(w.STANDBY, world.inventory.lock_parameter) or "{}")
    assert lock["runId"] == journal["runId"]

    # A plain rerun is refused: the crashed run still holds the lock.
    assert failover("--yes").code == ExitCode.LOCKED
    assert "continue it with --resume" in caplog.text
    # So is --resume while the lease is fresh: a dead run cannot be told from a live one yet.
    assert failover("--yes", "--resume").code == ExitCode.LOCKED
    assert "is still alive" in caplog.text and "last heartbeat" in caplog.text
    assert lock_of(world) == lock
    age_lock(world, 3 * 10 + 1)    # three missed heartbeats of the default 10 s: stale

    report_path = tmp_path / "resumed.json"
    result = failover("--yes", "--resume", "--report", str(report_path))
    assert result.code == ExitCode.OK, result.out
    assert_failed_over(world)
    assert world.calls.count("PromoteReadReplica") == 1
    report = json.loads(report_path.read_text())
    assert report["runId"] == journal["runId"]
    assert report["startedAt"] == journal["startedAt"]     # RTO counts from the first start
    steps = {s["name"]: s for s in report["steps"]}
    assert steps["promote-database"]["detail"].endswith("(confirmed on resume)")
    assert steps["switch-traffic"]["outcome"] == "done"


def test_a_concurrent_run_is_refused(world: w.World, failover: Any,
                                     caplog: pytest.LogCaptureFixture) -> None:
    holder = {"holder": "alice@oncall-laptop", "pid": 4242,
              "startedAt": "2026-11-26T03:01:00+00:00", "runId": "20261126T030100Z-abcdef"}
    w.client("ssm", w.STANDBY).put_parameter(
        Name=world.inventory.lock_parameter, Value=json.dumps(holder), Type="String")
    world.calls.seen.clear()
    result = failover("--yes")
    assert result.code == ExitCode.LOCKED
    assert "alice@oncall-laptop (pid 4242), started 2026-11-26T03:01:00+00:00" in caplog.text
    assert [n for n in mutating(world) if n != "ssm:PutParameter"] == []
    db = world.db(w.STANDBY, w.STANDBY_DB)
    assert db.source_db_instance_identifier == world.inventory.primary.database.arn
    assert world.switch_value() == "PRIMARY"


def test_already_failed_over_is_a_no_op(world: w.World, failover: Any) -> None:
    assert failover("--yes").code == ExitCode.OK
    world.calls.seen.clear()
    again = failover("--yes")
    assert again.code == ExitCode.OK
    assert "already failed over" in again.out
    assert mutating(world) == []


def test_lag_beyond_rpo_is_refused_and_force_overrides(
        world: w.World, failover: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    w.put_lag(w.STANDBY, w.STANDBY_DB, 1800, minutes_ago=0.5)
    result = failover("--yes")
    assert result.code == ExitCode.REFUSED
    assert "replica lag within RPO: 1800 s" in caplog.text and "RPO 900 s" in caplog.text
    assert_untouched(world)
    assert world.calls.count("PromoteReadReplica") == 0

    report_path = tmp_path / "forced.json"
    forced = failover("--yes", "--force", "--report", str(report_path))
    assert forced.code == ExitCode.OK, forced.out
    assert "overridden by --force" in forced.out
    assert "--force: replica lag within RPO failed" in caplog.text
    report = json.loads(report_path.read_text())
    assert report["forced"] is True and report["dataLossExposureSeconds"] == 1800


def test_real_run_asks_for_the_stack_name(world: w.World, failover: Any,
                                          caplog: pytest.LogCaptureFixture) -> None:
    assert failover().code == ExitCode.REFUSED          # stdin closed: no answer
    assert "pass --yes" in caplog.text
    assert failover(stdin="prod\n").code == ExitCode.REFUSED
    assert_untouched(world)
    confirmed = failover(stdin="dr\n")
    assert confirmed.code == ExitCode.OK, confirmed.out
    assert "Type the stack name (dr)" in confirmed.out


def test_help_documents_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        command.parse_arguments(["--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    for code in ExitCode:
        assert f"  {int(code)}  " in text
    assert "CARESYNC_DR_POLL_SECONDS" in text and "AWS_ENDPOINT_URL" in text


def test_a_failed_verification_is_resumable(world: w.World, failover: Any, tmp_path: Path,
                                            caplog: pytest.LogCaptureFixture) -> None:
    world.overrides["health"] = {"status": "ok", "region": w.STANDBY,
                                 "database": {"writable": False, "role": "replica"}}
    report_path = tmp_path / "failed.json"
    result = failover("--yes", "--report", str(report_path), "--verify-timeout", "0.3")
    assert result.code == ExitCode.FAILED
    assert "gave up waiting for" in caplog.text and "database is not writable yet" in caplog.text
    report = json.loads(report_path.read_text())
    assert report["outcome"] == "failed" and report["rtoSeconds"] is None
    assert {s["name"]: s["outcome"] for s in report["steps"]}["verify"] == "failed"
    assert world.parameter(w.STANDBY, world.inventory.lock_parameter) is None
    # Not "already failed over": the run did not finish, so a plain rerun points to --resume.
    assert failover("--yes").code == ExitCode.REFUSED
    assert "did not finish (status failed); continue it with --resume" in caplog.text
    assert failover("--scope", "database", "--yes", "--resume").code == ExitCode.USAGE
    del world.overrides["health"]
    resumed = failover("--yes", "--resume")
    assert resumed.code == ExitCode.OK, resumed.out
    assert_failed_over(world)
    assert world.calls.count("PromoteReadReplica") == 1


def test_unknown_lag_is_refused(world: w.World, failover: Any,
                                caplog: pytest.LogCaptureFixture) -> None:
    """No ReplicaLag datapoint in the window (RDS publishes one a minute): refuse, as for a lag
    beyond the RPO, rather than guess the data-loss exposure."""
    cloudwatch_backends[DEFAULT_ACCOUNT_ID][w.STANDBY].metric_data.clear()
    assert failover("--yes").code == ExitCode.REFUSED
    assert "unknown (no ReplicaLag datapoint in the window)" in caplog.text
    assert_untouched(world)


def test_a_switch_write_refused_beyond_the_budget_fails_resumably(
        world: w.World, failover: Any, tmp_path: Path) -> None:
    """S3 refuses every attempt to write the switch (the request never lands): the step fails
    after the retry budget, the state is consistent, and --resume finishes."""
    refused: list[str] = []
    down = [True]

    def refuse_switch_write(request: Any, **_: Any) -> None:
        if down[0] and request.method == "PUT" and w.SWITCH_KEY in request.url:
            refused.append(request.url)
            raise EndpointConnectionError(endpoint_url=request.url)

    world.session.events.register_first("before-send", refuse_switch_write)
    report_path = tmp_path / "run.json"
    result = failover("--yes", "--report", str(report_path))
    assert result.code == ExitCode.FAILED
    assert len(refused) == STANDBY.total_max_attempts   # bounded, then it gave up
    report = json.loads(report_path.read_text())
    assert {s["name"]: s["outcome"] for s in report["steps"]}["switch-traffic"] == "failed"
    assert "Could not connect" in report["message"] and "--resume" in report["message"]
    assert world.switch_value() == "PRIMARY"
    assert world.parameter(w.STANDBY, world.inventory.lock_parameter) is None
    down[0] = False     # S3 answers again
    resumed = failover("--yes", "--resume")
    assert resumed.code == ExitCode.OK, resumed.out
    assert_failed_over(world)


def test_throttled_answers_beyond_the_budget_are_read_back(
        world: w.World, failover: Any, tmp_path: Path) -> None:
    """Every answer to the switch write is lost (throttled after S3 applied it), past the retry
    budget: the state read afterwards shows the switch flipped, so the step is done, and the
    report says the answer was lost (not "failed", which would be untrue)."""
    served = w.throttle(world.session, {"s3.PutObject": 100}, url_contains=w.SWITCH_KEY)
    report_path = tmp_path / "run.json"
    result = failover("--yes", "--report", str(report_path))
    assert result.code == ExitCode.OK, result.out
    assert served["s3.PutObject"] == STANDBY.total_max_attempts
    switch = {s["name"]: s for s in json.loads(report_path.read_text())["steps"]}[
        "switch-traffic"]
    assert switch["outcome"] == "done"
    assert "the answer to the request was lost" in switch["detail"]
    assert_failed_over(world)


def test_crash_during_the_promotion_wait_then_resume_completes(
        world: w.World, failover: Any, tmp_path: Path) -> None:
    """Killed right after PromoteReadReplica was accepted: RDS shows the replica `modifying`
    (still linked to its source) for minutes. --resume must not refuse on "available"; it
    waits for the promotion it already requested."""
    at_crash: list[dict[str, Any]] = []

    def crash_after_promote(**_: Any) -> None:
        world.db(w.STANDBY, w.STANDBY_DB).status = "modifying"   # what RDS shows now
        at_crash.append(json.loads(world.parameter(w.STANDBY,
                                                   world.inventory.journal_parameter) or "{}"))
        raise SimulatedCrash

    # First, before the shim that would complete the promotion at once.
    world.session.events.register_first("after-call.rds.PromoteReadReplica",
                                        crash_after_promote)
    with pytest.raises(SimulatedCrash):
        failover("--yes", "--report", str(tmp_path / "first.json"))
    world.session.events.unregister("after-call.rds.PromoteReadReplica", crash_after_promote)
    db = world.db(w.STANDBY, w.STANDBY_DB)
    assert db.status == "modifying" and db.source_db_instance_identifier
    # Write-ahead: the journal said so before RDS was asked (not only with a later step).
    assert at_crash[0]["facts"]["promotion_requested_at"]
    journal = json.loads(world.parameter(w.STANDBY, world.inventory.journal_parameter) or "{}")

    def finish_when_the_step_polls(**_: Any) -> None:
        # RDS finishes the promotion while the resumed run's promote step waits (its reads run
        # in the runner's threads; the preflight's run in the main thread and sees `modifying`).
        if threading.current_thread().name.startswith("failover"):
            w.complete_promotion({"DBInstanceIdentifier": w.STANDBY_DB})

    world.session.events.register("after-call.rds.DescribeDBInstances",
                                  finish_when_the_step_polls)
    age_lock(world, 60)
    report_path = tmp_path / "resumed.json"
    result = failover("--yes", "--resume", "--report", str(report_path))
    assert result.code == ExitCode.OK, result.out
    assert "status modifying" in result.out          # the preflight saw the promotion under way
    assert_failed_over(world)
    assert world.calls.count("PromoteReadReplica") == 1
    report = json.loads(report_path.read_text())
    assert report["runId"] == journal["runId"] and report["dataLossExposureSeconds"] == 2.0


def run_waiting_in_verification(world: w.World, failover: Any, heartbeat: str
                                ) -> tuple[threading.Thread, list[Any]]:
    """A first run in a thread, returned once it is past the switch and waits in verification
    (the health answer says "not writable" until the test removes the override)."""
    world.overrides["health"] = {"status": "ok", "region": w.STANDBY,
                                 "database": {"writable": False, "role": "replica"}}
    first: list[Any] = []
    thread = threading.Thread(target=lambda: first.append(failover(
        "--yes", "--verify-timeout", "30", "--lock-heartbeat-seconds", heartbeat)))
    thread.start()
    deadline = datetime.now(UTC) + timedelta(seconds=20)
    while "switched_at" not in json.loads(world.parameter(
            w.STANDBY, world.inventory.journal_parameter) or "{}").get("facts", {}):
        if datetime.now(UTC) > deadline:
            world.overrides.pop("health", None)
            thread.join(30)
            raise AssertionError(f"the first run never reached the switch: {first}")
        threading.Event().wait(0.02)
    return thread, first


def test_resume_while_the_first_run_is_alive_is_locked_and_leaves_its_lock(
        world: w.World, failover: Any, caplog: pytest.LogCaptureFixture) -> None:
    """Two overlapping runs: the second one's --resume must not take over a live lease, and
    its refusal must not delete the lock of the run that is still working."""
    thread, first = run_waiting_in_verification(world, failover, heartbeat="0.2")
    try:
        held = lock_of(world)
        threading.Event().wait(0.5)          # a few heartbeats
        assert lock_of(world)["heartbeatAt"] > held["heartbeatAt"]
        second = failover("--yes", "--resume")
        assert second.code == ExitCode.LOCKED
        assert "is still alive" in caplog.text and "run " + held["runId"] in caplog.text
        assert lock_of(world)["token"] == held["token"]      # still the first run's lock
    finally:
        world.overrides.pop("health", None)
        thread.join(30)
    assert first and first[0].code == ExitCode.OK, first
    assert_failed_over(world)
    assert world.calls.count("PromoteReadReplica") == 1


def test_replication_stopped_half_an_hour_ago_is_refused_and_force_records_the_bound(
        world: w.World, failover: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The failover starts 30 min after replication stopped (RDS has published -1 every minute
    since). The last good datapoint (5 s) is not the exposure: if the old primary kept taking
    writes, up to 30 min are lost. Refused without --force (issue 9, fault 10); with --force
    the report records both the last known lag and the bound."""
    cloudwatch_backends[DEFAULT_ACCOUNT_ID][w.STANDBY].metric_data.clear()
    w.put_lag(w.STANDBY, w.STANDBY_DB, 5.0, minutes_ago=30)
    for minutes_ago in (29, 20, 10, 1):
        w.put_lag(w.STANDBY, w.STANDBY_DB, -1, minutes_ago=minutes_ago)
    assert failover("--yes").code == ExitCode.REFUSED
    assert "ReplicaLag is -1 (replication not active)" in caplog.text
    assert "replication has since stopped" in caplog.text
    assert_untouched(world)
    report_path = tmp_path / "run.json"
    result = failover("--yes", "--force", "--report", str(report_path))
    assert result.code == ExitCode.OK, result.out
    lag_row = next(line for line in result.out.splitlines()
                   if line.startswith("replica lag within RPO"))
    assert "OVERRIDE" in lag_row and "5 s at" in lag_row and "30 min old" in lag_row, lag_row
    report = json.loads(report_path.read_text())
    assert report["dataLossExposureSeconds"] == 5.0
    assert 30 * 60 <= report["dataLossExposureMaxSeconds"] < 32 * 60
    assert report["replicationActive"] is False and report["forced"] is True
    assert "replication had stopped before the promotion" in \
        report_path.with_suffix(".md").read_text()


@pytest.mark.parametrize("mode", ["--check", "--dry-run"])
def test_stale_lag_data_is_never_within_the_rpo(world: w.World, failover: Any,
                                                mode: str) -> None:
    """Issue 9, fault 10: 170-minute-old lag data (2 s) was called "within the RPO". The most
    a promotion now can lose is 2 s + 170 min: the lag row fails, and so does replication."""
    cloudwatch_backends[DEFAULT_ACCOUNT_ID][w.STANDBY].metric_data.clear()
    w.put_lag(w.STANDBY, w.STANDBY_DB, 2.0, minutes_ago=170)
    result = failover(mode)
    assert result.code in (ExitCode.NOT_READY, ExitCode.REFUSED), result.out
    rows = {line.split("  ")[0]: line for line in result.out.splitlines()}
    assert "  FAIL  " in rows["replica lag within RPO"], rows
    assert "170 min old" in rows["replica lag within RPO"]
    assert "  FAIL  " in rows["replica replicating"]
    assert "170 min old" in rows["replica replicating"]
    assert mutating(world) == []


@pytest.mark.parametrize(("breakage", "why"), [
    ("lag -1", "ReplicaLag is -1"),
    ("status error", "RDS reports read replication 'error'"),
    ("status stopped", "RDS reports read replication 'stopped'"),
    ("status degraded", "RDS reports read replication 'replication degraded'"),
    ("no datapoint", "no ReplicaLag datapoint in the window"),
])
def test_a_replica_that_does_not_replicate_fails_the_check_and_is_refused(
        world: w.World, failover: Any, caplog: pytest.LogCaptureFixture, breakage: str,
        why: str) -> None:
    """Up, available, but not replicating: --check fails (5), a real run refuses (3)."""
    if breakage == "lag -1":      # stopped two minutes ago (RDS publishes once a minute)
        cloudwatch_backends[DEFAULT_ACCOUNT_ID][w.STANDBY].metric_data.clear()
        for minutes_ago, value in ((3, 2.0), (2, -1.0), (1, -1.0)):
            w.put_lag(w.STANDBY, w.STANDBY_DB, value, minutes_ago=minutes_ago)
    elif breakage == "no datapoint":
        cloudwatch_backends[DEFAULT_ACCOUNT_ID][w.STANDBY].metric_data.clear()
    else:
        world.replication_status[0] = breakage.removeprefix("status ").replace(
            "degraded", "replication degraded")
    check = failover("--check")
    assert check.code == ExitCode.NOT_READY, check.out
    row = next(line for line in check.out.splitlines() if line.startswith("replica replicating"))
    assert "  FAIL  " in row and why in row, row
    assert failover("--yes").code == ExitCode.REFUSED
    assert why in caplog.text
    assert_untouched(world)


def test_verification_needs_the_standby_region_named(
        world: w.World, failover: Any, caplog: pytest.LogCaptureFixture) -> None:
    """A writable answer that does not say where it comes from may be the old site's."""
    world.overrides["health"] = {"status": "ok", "database": {"writable": True,
                                                              "role": "primary"}}
    result = failover("--yes", "--verify-timeout", "0.3")
    assert result.code == ExitCode.FAILED
    assert "answer does not name its region (expected us-west-2)" in caplog.text


def test_an_inventory_of_another_stack_fails_the_check_and_refuses(
        world: w.World, failover: Any, tmp_path: Path) -> None:
    data = json.loads(world.inventory.to_json())
    data["stack"] = "staging"
    inventory_file = tmp_path / "inventory.json"
    inventory_file.write_text(json.dumps(data))
    check = failover("--check", "--inventory", str(inventory_file))
    assert check.code == ExitCode.NOT_READY, check.out
    failing = [line for line in check.out.splitlines() if "  FAIL  " in line]
    assert len(failing) == 1 and failing[0].startswith("inventory"), check.out
    assert "the document is the 'staging' stack's, not --stack 'dr'" in failing[0]
    assert failover("--yes", "--inventory", str(inventory_file)).code == ExitCode.REFUSED
    assert_untouched(world)


def test_a_run_that_loses_its_lock_stops_and_leaves_the_new_holders_lock(
        world: w.World, failover: Any, caplog: pytest.LogCaptureFixture) -> None:
    """This process stalled past the stale threshold and another run took the lock over: the
    heartbeat notices, the run stops at its next poll, and the other run's lock stays."""
    thread, first = run_waiting_in_verification(world, failover, heartbeat="0.1")
    try:
        other = {**lock_of(world), "token": "someone-else", "holder": "bob@other-laptop"}
        w.client("ssm", w.STANDBY).put_parameter(Name=world.inventory.lock_parameter,
                                                 Value=json.dumps(other), Type="String",
                                                 Overwrite=True)
        thread.join(20)
    finally:
        world.overrides.pop("health", None)
        thread.join(30)
    assert first and first[0].code == ExitCode.FAILED, first
    assert "is no longer ours" in caplog.text and "the run was interrupted" in caplog.text
    assert lock_of(world)["token"] == "someone-else"


def _outage_at(minutes_ago: float) -> str:
    return (datetime.now(UTC) - timedelta(minutes=minutes_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_a_replica_the_outage_stopped_fails_over_with_the_outage_start_stated(
        world: w.World, failover: Any, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    """A real regional outage: the failover starts 30 min in, and RDS has reported -1 and
    "error" for the replica since the primary went away. Judged as of now that is 30 min of
    unknown, so a plain run refuses and says how to state the outage start; with
    --outage-started (the first alert's time) replication is judged as of then: it was
    replicating 5 s behind, so the run proceeds without --force and records both figures."""
    cloudwatch_backends[DEFAULT_ACCOUNT_ID][w.STANDBY].metric_data.clear()
    w.put_lag(w.STANDBY, w.STANDBY_DB, 5.0, minutes_ago=31)
    for minutes_ago in (29, 20, 10, 1):
        w.put_lag(w.STANDBY, w.STANDBY_DB, -1, minutes_ago=minutes_ago)
    world.replication_status[0] = "error"
    assert failover("--yes").code == ExitCode.REFUSED
    assert "rerun with --outage-started TIME" in caplog.text
    assert_untouched(world)
    report_path = tmp_path / "run.json"
    result = failover("--yes", "--outage-started", _outage_at(30), "--report", str(report_path))
    assert result.code == ExitCode.OK, result.out
    assert_failed_over(world)
    report = json.loads(report_path.read_text())
    assert report["forced"] is False
    assert report["outageStartedAt"] is not None
    assert 5.0 <= report["dataLossExposureAtOutageSeconds"] < 5.0 + 90
    assert report["dataLossExposureMaxSeconds"] >= 30 * 60   # the worst case stays recorded
    # RTO is outage -> writable service (issue 12): the clock starts at the stated outage, not
    # at this run's start, so the drill and this report give one figure.
    assert report["rtoFrom"] == "outage"
    assert 30 * 60 <= report["rtoSeconds"] < 30 * 60 + 60
    assert report["servingAt"] is not None
    assert "Outage start stated by the operator" in report_path.with_suffix(".md").read_text()


def test_a_replica_broken_long_before_the_stated_outage_is_still_refused(
        world: w.World, failover: Any, caplog: pytest.LogCaptureFixture) -> None:
    """The kind fault 10 is about: replication stopped two hours before the primary went
    away. Stating the outage start does not excuse it: refused, and --check fails."""
    cloudwatch_backends[DEFAULT_ACCOUNT_ID][w.STANDBY].metric_data.clear()
    w.put_lag(w.STANDBY, w.STANDBY_DB, 2.0, minutes_ago=150)
    for minutes_ago in (140, 90, 31, 10):
        w.put_lag(w.STANDBY, w.STANDBY_DB, -1, minutes_ago=minutes_ago)
    outage = _outage_at(30)
    assert failover("--check", "--outage-started", outage).code == ExitCode.NOT_READY
    assert failover("--yes", "--outage-started", outage).code == ExitCode.REFUSED
    assert "replication had already stopped" in caplog.text
    assert_untouched(world)


@pytest.mark.parametrize(("value", "problem"), [
    ("2026-11-30 02:11", "has no time zone"),
    ("yesterday", "is not an ISO 8601 time"),
    ("2999-01-01T00:00Z", "is in the future"),
    ("2000-01-01T00:00Z", "more than 23 h ago"),
])
def test_a_bad_outage_start_is_a_usage_error(world: w.World, failover: Any,
                                             caplog: pytest.LogCaptureFixture, value: str,
                                             problem: str) -> None:
    assert failover("--yes", "--outage-started", value).code == ExitCode.USAGE
    assert problem in caplog.text
    assert_untouched(world)

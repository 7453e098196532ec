"""Issue 10, items 8, 12, 13, 14: the lock never wedges, every exit writes a true report, and
the journal says who did what. Each test is one named case of a kind (see the issue)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import EndpointConnectionError
from moto.core.botocore_stubber import MockRawResponse
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.rds.models import RDSBackend

from caresync_dr.cli import ExitCode
from caresync_dr.emulation.rds_promotion import promote_like_rds
from tests.failover import world as w
from tests.failover.test_region_failover import (
    SimulatedCrash,
    age_lock,
    assert_failed_over,
    lock_of,
    run_waiting_in_verification,
)

HOUR = 3600


def journal_of(world: w.World) -> dict[str, Any]:
    return dict(json.loads(world.parameter(w.STANDBY, world.inventory.journal_parameter)
                           or "{}"))


def body_text(request: Any) -> str:
    body = request.body
    return body.decode() if isinstance(body, bytes) else str(body or "")


def ssm_request(request: Any, operation: str, parameter: str) -> bool:
    """Is this HTTP request ``ssm.<operation>`` on ``parameter``?"""
    body = body_text(request)
    target = request.headers.get("X-Amz-Target", b"")
    target = target.decode() if isinstance(target, bytes) else str(target)
    return target.endswith(f".{operation}") and json.loads(body or "{}").get("Name") == parameter


def lose_answers(world: w.World, matches: Callable[[Any], bool], times: int = 100,
                 protocol: str = "json") -> list[str]:
    """The first ``times`` matching requests are applied by the emulator, but the caller gets a
    throttling error instead of the answer (every attempt botocore makes, until ``times``)."""
    lost: list[str] = []

    def maybe(request: Any, **_: Any) -> AWSResponse | None:
        if len(lost) >= times or not matches(request):
            return None
        lost.append(request.url)
        status, content_type, body = w.THROTTLE_BODIES[protocol]
        return AWSResponse(request.url, status, w._headers(content_type),
                           MockRawResponse(body))

    world.session.events.register_first("before-send", cast(Callable[..., None], maybe))
    return lost


# --- item 8: no lock that no later run can take over ----------------------------------------

def test_a_kill_between_lock_and_journal_leaves_a_lock_the_next_run_takes_over(
        world: w.World, failover: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    def crash_at_journal_begin(params: dict[str, Any], **_: Any) -> None:
        if params.get("Name") == world.inventory.journal_parameter:
            raise SimulatedCrash

    world.session.events.register("before-parameter-build.ssm.PutParameter",
                                  crash_at_journal_begin)
    with pytest.raises(SimulatedCrash):
        failover("--yes")
    world.session.events.unregister("before-parameter-build.ssm.PutParameter",
                                    crash_at_journal_begin)
    held = lock_of(world)
    assert held and not journal_of(world)          # a lock, and no journal at all
    # While the lease is fresh, the dead run cannot be told from a live one: refused, truly.
    assert failover("--yes").code == ExitCode.LOCKED
    assert "holds the lock" in caplog.text
    age_lock(world, HOUR)
    for argv in (["--yes", "--resume"], ["--yes"]):
        caplog.clear()
        report_path = tmp_path / f"run{len(argv)}.json"
        result = failover(*argv, "--report", str(report_path))
        assert result.code == ExitCode.OK, (argv, result.out, caplog.text)
        assert_failed_over(world)
        report = json.loads(report_path.read_text())
        if "promote-database" in {s["name"] for s in report["steps"]} and \
                report["outcome"] == "completed":
            assert report["lock"]["takenOver"]["runId"] == held["runId"]
            assert "taken over" in caplog.text


def test_a_kill_after_completion_leaves_no_lock_that_blocks_the_next_run(
        world: w.World, failover: Any, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    """Killed after the journal says completed, before the lock was released: the next run
    finds the failover done and removes the dead run's stale lock (reported), instead of
    leaving a lock that makes every later run exit 4."""
    def crash_at_release(**_: Any) -> None:
        raise SimulatedCrash

    world.session.events.register("before-call.ssm.DeleteParameter", crash_at_release)
    with pytest.raises(SimulatedCrash):
        failover("--yes")
    world.session.events.unregister("before-call.ssm.DeleteParameter", crash_at_release)
    assert journal_of(world)["status"] == "completed"
    held = lock_of(world)
    assert failover("--yes", "--resume").code == ExitCode.OK     # done: fresh lock untouched
    assert lock_of(world) == held
    age_lock(world, HOUR)
    report_path = tmp_path / "again.json"
    result = failover("--yes", "--report", str(report_path))
    assert result.code == ExitCode.OK, (result.out, caplog.text)
    assert "already failed over" in result.out
    assert world.parameter(w.STANDBY, world.inventory.lock_parameter) is None
    report = json.loads(report_path.read_text())
    assert report["outcome"] == "already failed over"
    assert report["lock"]["removedStale"]["runId"] == held["runId"]


def test_an_unreachable_ssm_at_release_does_not_fail_a_finished_run(
        world: w.World, failover: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """SSM in the standby region stops answering right after the journal says completed."""
    state = {"armed": False, "down": False}

    def arm(params: dict[str, Any], **_: Any) -> None:
        if params.get("Name") == world.inventory.journal_parameter and \
                '"completed"' in str(params.get("Value", "")):
            state["armed"] = True

    def refuse(request: Any, **_: Any) -> None:
        if "ssm.us-west-2" not in request.url:
            return
        if state["down"]:
            raise EndpointConnectionError(endpoint_url=request.url)
        if state["armed"]:      # the journal's "completed" write itself still goes through
            state["armed"], state["down"] = False, True

    world.session.events.register("before-parameter-build.ssm.PutParameter", arm)
    world.session.events.register_first("before-send", refuse)
    report_path = tmp_path / "run.json"
    result = failover("--yes", "--report", str(report_path))
    assert result.code == ExitCode.OK, (result.out, caplog.text)
    assert state["down"]
    report = json.loads(report_path.read_text())
    assert report["outcome"] == "completed" and report["exitCode"] == 0
    assert report["lock"]["released"] is False and report["lock"]["releaseError"]
    assert "FAILOVER COMPLETE" in result.out
    state["down"] = False
    assert lock_of(world)                         # left behind: SSM was down
    age_lock(world, HOUR)
    assert failover("--yes").code == ExitCode.OK  # already failed over; the stale lock goes
    assert world.parameter(w.STANDBY, world.inventory.lock_parameter) is None


def test_a_lost_answer_to_the_lock_creation_does_not_wedge(
        world: w.World, failover: Any, caplog: pytest.LogCaptureFixture) -> None:
    """Every attempt to create the lock is applied but answered with throttling (8 attempts):
    the lock exists, and it is this run's own. The run goes on with it."""
    lost = lose_answers(world, lambda r: ssm_request(r, "PutParameter",
                                                      world.inventory.lock_parameter))
    result = failover("--yes")
    assert result.code == ExitCode.OK, (result.out, caplog.text)
    assert len(lost) >= 2
    assert_failed_over(world)


# --- item 12: a lost answer to the release ---------------------------------------------------

def test_a_lost_answer_to_the_lock_release_is_a_completed_run(
        world: w.World, failover: Any, tmp_path: Path) -> None:
    lose_answers(world, lambda r: ssm_request(r, "DeleteParameter",
                                              world.inventory.lock_parameter))
    report_path = tmp_path / "run.json"
    result = failover("--yes", "--report", str(report_path))
    assert result.code == ExitCode.OK, result.out
    report = json.loads(report_path.read_text())
    assert report["outcome"] == "completed" and report["exitCode"] == 0
    assert report["lock"]["released"] is True
    assert world.parameter(w.STANDBY, world.inventory.lock_parameter) is None


# --- item 13: the standby's SSM lost mid-run ------------------------------------------------

def test_ssm_lost_mid_run_still_writes_a_report_and_resumes(
        world: w.World, failover: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    down = [False]

    def refuse(request: Any, **_: Any) -> None:
        if down[0] and "ssm.us-west-2" in request.url:
            raise EndpointConnectionError(endpoint_url=request.url)

    def after_promotion(**_: Any) -> None:
        down[0] = True

    world.session.events.register_first("before-send", refuse)
    world.session.events.register("after-call.rds.PromoteReadReplica", after_promotion)
    report_path = tmp_path / "run.json"
    result = failover("--yes", "--report", str(report_path))
    assert result.code == ExitCode.FAILED, result.out
    assert world.db(w.STANDBY, w.STANDBY_DB).source_db_instance_identifier is None
    report = json.loads(report_path.read_text())
    assert report["outcome"] == "failed" and report["exitCode"] == 1
    assert "--resume" in report["message"]
    steps = {s["name"]: s["outcome"] for s in report["steps"]}
    assert steps["promote-database"] == "done"
    assert report_path.with_suffix(".md").is_file()
    local = json.loads(report_path.with_suffix(".journal.json").read_text())
    assert local["status"] == "failed"
    stored = w.client("s3", w.STANDBY).get_object(
        Bucket=world.backup_bucket, Key=f"incidents/{report['runId']}.json")
    assert json.loads(stored["Body"].read())["outcome"] == "failed"

    down[0] = False
    world.session.events.unregister("after-call.rds.PromoteReadReplica", after_promotion)
    age_lock(world, HOUR)
    resumed_path = tmp_path / "resumed.json"
    resumed = failover("--yes", "--resume", "--report", str(resumed_path))
    assert resumed.code == ExitCode.OK, (resumed.out, caplog.text)
    assert_failed_over(world)
    assert world.calls.count("PromoteReadReplica") == 1
    steps = {s["name"]: s for s in json.loads(resumed_path.read_text())["steps"]}
    assert steps["promote-database"]["outcome"] == "done"


# --- item 14: the journal says who did what --------------------------------------------------

def test_a_promotion_the_crashed_run_made_is_attributed_to_it_on_resume(
        world: w.World, failover: Any, tmp_path: Path) -> None:
    """Killed after RDS accepted (and finished) the promotion, before the journal recorded it."""
    def crash_after_promote(**_: Any) -> None:
        w.complete_promotion({"DBInstanceIdentifier": w.STANDBY_DB})
        raise SimulatedCrash

    world.session.events.register_first("after-call.rds.PromoteReadReplica",
                                        crash_after_promote)
    with pytest.raises(SimulatedCrash):
        failover("--yes")
    world.session.events.unregister("after-call.rds.PromoteReadReplica", crash_after_promote)
    age_lock(world, HOUR)
    report_path = tmp_path / "resumed.json"
    result = failover("--yes", "--resume", "--report", str(report_path))
    assert result.code == ExitCode.OK, result.out
    promote = {s["name"]: s for s in json.loads(report_path.read_text())["steps"]}[
        "promote-database"]
    assert promote["outcome"] == "done", promote
    assert "requested by this run" in promote["detail"], promote
    timeline = report_path.with_suffix(".md").read_text()
    assert "| promote-database | done |" in timeline


def test_a_promotion_whose_answer_was_lost_is_recorded_done(
        world: w.World, failover: Any, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """RDS applies the first PromoteReadReplica; every answer is lost (throttled), and the
    retries are refused as RDS refuses them (not a read replica any more)."""
    monkeypatch.setattr(RDSBackend, "promote_read_replica",
                        promote_like_rds(DEFAULT_ACCOUNT_ID, seconds=0.2))
    lose_answers(world, lambda r: "rds.us-west-2" in r.url
                 and "Action=PromoteReadReplica" in body_text(r), protocol="query")
    report_path = tmp_path / "run.json"
    result = failover("--yes", "--report", str(report_path))
    assert result.code == ExitCode.OK, result.out
    assert_failed_over(world)
    promote = {s["name"]: s for s in json.loads(report_path.read_text())["steps"]}[
        "promote-database"]
    assert promote["outcome"] == "done"
    assert "request was lost" in promote["detail"], promote


def test_check_calls_a_stale_lock_free_and_a_live_one_held(world: w.World, failover: Any) -> None:
    holder = {"holder": "alice@oncall-laptop", "pid": 4242, "runId": "r1", "token": "t",
              "startedAt": "2026-11-26T03:01:00+00:00",
              "heartbeatAt": "2026-11-26T03:01:00+00:00", "heartbeatSeconds": 10}
    w.client("ssm", w.STANDBY).put_parameter(Name=world.inventory.lock_parameter,
                                             Value=json.dumps(holder), Type="String")
    live = failover("--check")
    row = next(line for line in live.out.splitlines() if line.startswith("lock free"))
    assert "  FAIL  " in row and "held by alice@oncall-laptop" in row, row
    age_lock(world, HOUR)
    stale = failover("--check")
    assert stale.code == 0, stale.out
    row = next(line for line in stale.out.splitlines() if line.startswith("lock free"))
    assert "stale" in row and "the next run takes it over" in row, row


def test_a_run_that_cannot_renew_its_lease_stops_before_it_could_be_taken_over(
        world: w.World, failover: Any, caplog: pytest.LogCaptureFixture) -> None:
    """SSM refuses the lease renewals (the run's other calls still work): after 2 missed
    renewals another run could take the lock at the 3rd, so this one stops (Patroni's rule:
    no lock, no action) and says why."""
    refusing = [False]

    def refuse_renewals(params: dict[str, Any], **_: Any) -> None:
        if refusing[0] and params.get("Name") == world.inventory.lock_parameter \
                and params.get("Overwrite") is True:
            raise EndpointConnectionError(endpoint_url="https://ssm.us-west-2.amazonaws.com/")

    world.session.events.register("before-parameter-build.ssm.PutParameter", refuse_renewals)
    thread, first = run_waiting_in_verification(world, failover, heartbeat="0.05")
    refusing[0] = True
    thread.join(20)
    world.overrides.pop("health", None)
    assert first and first[0].code == ExitCode.FAILED, first
    assert "could not be renewed for" in caplog.text
    assert "this run lost its lock" in caplog.text

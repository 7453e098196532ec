"""``--adopt-promoted DB_IDENTIFIER``: at 3 a.m. the operator promoted the standby replica by
hand (RDS console or CLI) before running failover.py. The preflight refuses a standalone target
with nothing to resume (hostile2: it may be the stale writer of the other direction); the flag
adopts exactly this run's target, once it is a standalone writer, and the run does the rest."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from caresync_dr.cli import ExitCode
from tests.failover import world as w
from tests.failover.test_region_failover import assert_failed_over, mutating


def _promote_by_hand() -> None:
    w.complete_promotion({"DBInstanceIdentifier": w.STANDBY_DB})


def _dr_app() -> dict[str, Any]:
    group: dict[str, Any] = w.client("autoscaling", w.STANDBY).describe_auto_scaling_groups(
        AutoScalingGroupNames=["dr-app"])["AutoScalingGroups"][0]
    return group


def test_a_hand_promoted_replica_is_adopted_and_the_failover_completes(
        world: w.World, failover: Any, tmp_path: Path) -> None:
    _promote_by_hand()
    refused = failover("--yes")
    assert refused.code == ExitCode.REFUSED, refused.out
    assert f"--adopt-promoted {w.STANDBY_DB}" in refused.out

    world.calls.seen.clear()
    dry = failover("--dry-run", "--adopt-promoted", w.STANDBY_DB)
    assert dry.code == ExitCode.OK, dry.out
    assert "promoted by hand" in dry.out
    assert mutating(world) == []
    assert world.switch_value() == "PRIMARY" and _dr_app()["DesiredCapacity"] == 1

    report_path = tmp_path / "run.json"
    result = failover("--yes", "--adopt-promoted", w.STANDBY_DB, "--report", str(report_path))
    assert result.code == ExitCode.OK, result.out
    assert_failed_over(world)
    assert world.calls.count("PromoteReadReplica") == 0
    report = json.loads(report_path.read_text())
    adopted = report["adoptedPromotion"]
    assert adopted["database"] == w.STANDBY_DB and adopted["region"] == w.STANDBY
    assert adopted["operator"] and adopted["at"]
    steps = {s["name"]: s for s in report["steps"]}
    assert "promoted by hand" in steps["promote-database"]["detail"]
    assert report["fenced"] == "fenced"
    journal = json.loads(world.parameter(w.STANDBY, world.inventory.journal_parameter) or "{}")
    assert journal["adoptedPromotion"]["database"] == w.STANDBY_DB
    assert journal["facts"]["adopted_promotion"] == adopted


def test_a_wrong_identifier_is_refused_and_changes_nothing(
        world: w.World, failover: Any) -> None:
    _promote_by_hand()
    for other in (w.PRIMARY_DB, w.PRIMARY_REPLICA, "caresync-somewhere-else"):
        result = failover("--yes", "--adopt-promoted", other)
        assert result.code == ExitCode.REFUSED, result.out
        assert "does not name this run's target" in result.out
    assert world.switch_value() == "PRIMARY" and _dr_app()["DesiredCapacity"] == 1
    assert world.parameter(w.STANDBY, world.inventory.lock_parameter) is None


def test_a_replica_not_yet_promoted_is_not_adopted(world: w.World, failover: Any) -> None:
    result = failover("--yes", "--adopt-promoted", w.STANDBY_DB)
    assert result.code == ExitCode.REFUSED, result.out
    assert "still a read replica" in result.out
    assert world.calls.count("PromoteReadReplica") == 0
    assert world.switch_value() == "PRIMARY"


def test_adopt_is_refused_with_check_and_resume(world: w.World, failover: Any,
                                                caplog: pytest.LogCaptureFixture) -> None:
    for extra in ("--check", "--resume"):
        result = failover(*([extra] if extra == "--check" else ["--yes", extra]),
                          "--adopt-promoted", w.STANDBY_DB)
        assert result.code == ExitCode.USAGE, result.out
        assert f"--adopt-promoted is not allowed with {extra}" in caplog.text
    bad = failover("--yes", "--adopt-promoted", "db--bad")
    assert bad.code == ExitCode.USAGE, bad.out

"""The objectives calculator against budgets computed by hand, and its command line."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from caresync_dr.cli import ExitCode
from caresync_dr.commands import objectives as objectives_script
from caresync_dr.estimates import DEFAULT_ESTIMATES
from caresync_dr.objectives import compute, render_table
from caresync_dr.settings import Settings, load_settings, read_stack_file, settings_from_stack_file

ROOT = Path(__file__).resolve().parents[2]


def _settings(stack: str = "dr", **overrides: object) -> Settings:
    values, region = read_stack_file(stack, ROOT)
    values.update(overrides)
    return load_settings(stack, values, region)


def test_committed_dr_stack_budget_matches_hand_computation() -> None:
    # By hand, from Pulumi.dr.yaml and the documented estimates:
    #   detection 10 s x 3 = 30; decision 900; promotion 600 concurrent with scale-up
    #   (warm 1 < desired 2: 300 boot + 300 grace = 600) -> 600; traffic switch 10 x 3 + 30
    #   propagation = 60; TTL 60; verification 600 (failover.py's default --verify-timeout)
    #   = 30 + 900 + 600 + 60 + 60 + 600 = 2250 s = 37 min 30 s against rtoMinutes 60
    #   -> 3600 - 2250 = 1350 s headroom.
    objectives = compute(_settings())
    steps = {step.name: step.seconds for step in objectives.rto_steps}
    assert steps == {
        "detection": 30, "operator decision": 900, "promotion and scale-up": 600,
        "traffic switch": 60, "DNS cache expiry": 60, "verification": 600,
    }
    assert objectives.rto_budget_seconds == 2250
    assert objectives.rto_headroom_seconds == 1350
    exposures = {e.failure_mode: (e.seconds, e.bound_by_rpo) for e in objectives.rpo_exposures}
    assert exposures == {
        "regional outage": (720 + 180, True),  # alarm 900 - 180 s + 60 s x 3 detection
        "database failure or corruption": (300, True),                # PITR every 5 min
        "corruption beyond point-in-time recovery": (6 * 3600, False),  # dumps every 6 h
    }
    assert objectives.feasible, objectives.problems()


def test_slow_detection_counts_twice_and_concurrency_hides_the_shorter_step() -> None:
    # 30 s x 10 = 300 detection, and again 300 + 30 for the switch; pilot light (warm 0)
    # boots 300 + 300 = 600, concurrent with the 600 s promotion.
    # 300 + 900 + 600 + 330 + 60 + 600 = 2790 s.
    slow = {"healthCheckIntervalSeconds": "30", "healthCheckFailureThreshold": "10"}
    objectives = compute(_settings(standbyWarmCapacity="0", **slow))
    assert objectives.rto_budget_seconds == 2790
    # A standby already at production capacity saves nothing: promotion is the longer step.
    assert compute(_settings(standbyWarmCapacity="2", **slow)).rto_budget_seconds == 2790
    # A slow boot (15 min + 5 min grace) outlasts promotion and moves the total: +600 = 3390.
    slow_boot = replace(DEFAULT_ESTIMATES, instance_boot_seconds=900)
    assert compute(_settings(standbyWarmCapacity="0", **slow),
                   slow_boot).rto_budget_seconds == 3390


def test_configuration_that_cannot_meet_its_rto_is_flagged() -> None:
    objectives = compute(_settings(rtoMinutes="30"))   # 37 min 30 s needed
    assert not objectives.feasible
    [problem] = objectives.problems()
    assert "RTO" in problem and "37 min 30 s" in problem and "rtoMinutes is 30 min" in problem
    assert "operator decision" in problem  # names the largest step to shorten
    assert "MISSES the RTO" in render_table(objectives)


def test_rpo_below_point_in_time_granularity_is_flagged() -> None:
    # rpoMinutes 3: the lag alarm pages at 0 s, + 180 s detection = 180 s, just within.
    objectives = compute(_settings(rpoMinutes="3"))
    problems = objectives.problems()
    assert len(problems) == 1
    assert "point-in-time restore" in problems[0] and "at least 5" in problems[0]


def test_regional_outage_exposure_is_lag_threshold_plus_detection_delay() -> None:
    # rpoMinutes 10: threshold 600 - 60 s x 3 = 420 s, + 180 s detection = 600 s = the RPO.
    settings = _settings(rpoMinutes="10")
    assert settings.replica_lag_detection_seconds == 180
    assert settings.replica_lag_alarm_seconds == 420
    [outage] = [e for e in compute(settings).rpo_exposures if e.failure_mode == "regional outage"]
    assert outage.seconds == 600 and "detection delay (180 s" in outage.basis


def test_rpo_shorter_than_the_lag_alarm_detection_delay_is_flagged() -> None:
    # rpoMinutes 2 = 120 s: even a 0 s threshold pages only after 180 s of lag.
    settings = _settings(rpoMinutes="2")
    assert settings.replica_lag_alarm_seconds == 0
    problems = compute(settings).problems()
    [outage] = [p for p in problems if "regional outage" in p]
    assert "3 min" in outage and "at least 3" in outage
    assert any("point-in-time restore" in p for p in problems)


def test_verification_budget_is_failover_verify_timeout_default() -> None:
    from caresync_dr.failover.options import DEFAULT_VERIFY_TIMEOUT_SECONDS

    verify = compute(_settings()).rto_steps[-1]
    assert verify.name == "verification"
    assert verify.seconds == DEFAULT_VERIFY_TIMEOUT_SECONDS == 600


def test_logical_dump_interval_is_reported_but_not_bound_by_the_rpo() -> None:
    objectives = compute(_settings(backupIntervalHours="24"))
    dump = objectives.rpo_exposures[-1]
    assert dump.seconds == 24 * 3600 and not dump.bound_by_rpo
    assert objectives.feasible
    assert "last resort (unbound)" in render_table(objectives)


def test_estimates_are_the_documented_figures() -> None:
    # docs/objectives.md's table quotes these; a change must update it.
    assert DEFAULT_ESTIMATES.alias_ttl_seconds == 60
    assert DEFAULT_ESTIMATES.pitr_granularity_seconds == 300


def test_cli_prints_table_and_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    assert objectives_script.main(["--stack", "prod"]) == ExitCode.OK
    out = capsys.readouterr().out
    assert "Objectives for stack prod" in out and "37 min 30 s" in out


def test_cli_json_and_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = tmp_path / "objectives.json"
    assert objectives_script.main(["--stack", "dr", "--json", "--report", str(report)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(report.read_text())
    assert printed["rto"]["budgetSeconds"] == 2250 and printed["feasible"] is True


def test_cli_exits_not_ready_when_objectives_cannot_be_met(tmp_path: Path) -> None:
    text = (ROOT / "Pulumi.dr.yaml").read_text().replace(
        'caresync-dr:rtoMinutes: "60"', 'caresync-dr:rtoMinutes: "20"')
    (tmp_path / "Pulumi.dr.yaml").write_text(text)
    assert objectives_script.main(["--stack", "dr", "--project-dir", str(tmp_path)]) \
        == ExitCode.NOT_READY


def test_cli_unknown_stack_is_a_usage_error() -> None:
    assert objectives_script.main(["--stack", "staging"]) == ExitCode.USAGE


def test_failover_plan_and_rto_budget_use_the_same_step_figures() -> None:
    """failover.py's plan once said ~300 s for promotion and scale-up and ~90 s for the
    verification while this budget said 600 s each: one source (caresync_dr.estimates)."""
    from caresync_dr.failover import steps

    settings = settings_from_stack_file("dr", ROOT)
    budget = {step.name: step.seconds for step in compute(settings).rto_steps}
    assert settings.standby_warm_capacity < settings.app_capacity.desired
    assert budget["promotion and scale-up"] == max(steps.PromoteDatabase.expected_seconds,
                                                   steps.ScaleStandbyApp.expected_seconds)
    assert budget["verification"] == steps.VerifyService.expected_seconds
    assert steps.RefreshApp.expected_seconds == DEFAULT_ESTIMATES.instance_refresh_seconds


def test_in_region_plans_use_the_same_step_figures() -> None:
    """app.py's and pitr.py's plans (--dry-run) quote caresync_dr.estimates, not figures of
    their own: a deploy is a refresh plus the bake time that watches the alarms."""
    from caresync_dr.app import steps as app_steps
    from caresync_dr.app.rollout import BAKE_SECONDS
    from caresync_dr.pitr import steps as pitr_steps

    figures = DEFAULT_ESTIMATES
    assert app_steps.ReplaceInstances.expected_seconds == \
        figures.instance_refresh_seconds + BAKE_SECONDS
    assert pitr_steps.RestoreInstance.expected_seconds == figures.pitr_restore_seconds
    assert pitr_steps.RefreshApp.expected_seconds == figures.instance_refresh_seconds
    assert pitr_steps.VerifyService.expected_seconds == figures.verification_seconds

"""app.py against the emulated AWS: restart, deploy, rollback, status, dry runs, bad input.

Refreshes run through the emulation layer (``caresync_dr.emulation.autoscaling``), which
refuses what Auto Scaling refuses and rolls back on an alarm the way Auto Scaling does.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from caresync_dr.commands import app as command
from caresync_dr.emulation.autoscaling import InstanceRefreshes
from caresync_dr.emulation.server import Emulator
from tests.inregion.world import NEXT_AMI, REGION, app_tier, client, saved_version, seed_image

GROUP = "caresync-primary-app"
MUTATING = ("Start", "Rollback", "Create", "Put", "Update", "Delete", "Modify", "Set", "Cancel")


def run_app(tmp_path: Path, *argv: str, stdin: str = "") -> tuple[int, dict[str, Any], str]:
    report = tmp_path / "app.json"
    out = io.StringIO()
    code = command.run(["--stack", "prod", "--report", str(report),
                        "--journal-file", str(tmp_path / "journal.json"),
                        "--poll-seconds", "0.05", "--wait-timeout", "20",
                        "--lock-heartbeat-seconds", "1", *argv],
                       session=boto3.Session(), stdin=io.StringIO(stdin), out=out)
    data = json.loads(report.read_text()) if report.exists() else {}
    return code, data, out.getvalue()


def alarm(name: str, state: str) -> None:
    client("cloudwatch").set_alarm_state(AlarmName=name, StateValue=state, StateReason="test")


def test_restart_replaces_every_instance_keeping_capacity(aws: Emulator, tmp_path: Path) -> None:
    app_tier()
    with InstanceRefreshes(delay_seconds=0.1) as shim:
        code, report, out = run_app(tmp_path, "restart", "--yes")
    assert code == 0, report.get("message")
    (refresh,) = shim.refreshes
    assert refresh.desired_version is None, "a restart keeps the release"
    prefs = refresh.preferences
    assert (prefs["MinHealthyPercentage"], prefs["MaxHealthyPercentage"]) == (100, 200)
    assert not prefs["AutoRollback"] and "AlarmSpecification" not in prefs
    assert report["outcome"] == "completed" and report["refreshId"] == refresh.refresh_id
    # moto keeps the targets healthy: the wait finds nothing to wait for
    assert [s["outcome"] for s in report["steps"]] == ["done", "skipped"]
    assert "Plan (app restart" in out


def test_the_prompt_wants_the_stack_name(aws: Emulator, tmp_path: Path) -> None:
    app_tier()
    with InstanceRefreshes(delay_seconds=0.1) as shim:
        code, _report, _ = run_app(tmp_path, "restart", stdin="yes\n")
        assert code == 3 and not shim.refreshes
        code, _report, _ = run_app(tmp_path, "restart", stdin="prod\n")
    assert code == 0 and len(shim.refreshes) == 1


def test_deploy_rolls_out_the_latest_version_watching_the_alarms(aws: Emulator,
                                                                 tmp_path: Path) -> None:
    app_tier()
    with InstanceRefreshes(delay_seconds=0.1, bake_scale=0.001) as shim:
        code, report, _ = run_app(tmp_path, "deploy", "--yes")
        assert code == 0, report.get("message")
        rerun, again, _ = run_app(tmp_path, "deploy", "--yes")
    (refresh,) = shim.refreshes
    assert refresh.desired_version == "2"
    prefs = refresh.preferences
    assert prefs["AutoRollback"] and prefs["SkipMatching"] and prefs["BakeTime"] == 420
    assert prefs["AlarmSpecification"]["Alarms"] == ["caresync-primary-alb-5xx",
                                                     "caresync-primary-unhealthy-hosts"]
    assert saved_version() == "2", "Auto Scaling saves the version when the refresh succeeds"
    assert rerun == 0 and again["outcome"] == "already done", "a rerun changes nothing"


def test_a_release_the_alarms_reject_is_rolled_back_and_exits_1(aws: Emulator,
                                                                tmp_path: Path) -> None:
    app_tier()

    def served(region: str, group: str, version: str | None) -> None:
        if version == "2":     # the new release answers 500: the 5xx alarm fires
            alarm("caresync-primary-alb-5xx", "ALARM")

    with InstanceRefreshes(delay_seconds=0.1, bake_scale=0.01, on_replace=served) as shim:
        code, report, _ = run_app(tmp_path, "deploy", "--yes")
        assert code == 1
        assert report["rolledBack"]["status"] == "RollbackSuccessful"
        assert "caresync-primary-alb-5xx" in report["rolledBack"]["reason"]
        assert "ROLLED BACK by Auto Scaling" in report["message"]
        assert saved_version() == "1"
        assert report["outcome"] == "rolled back" and report["exitCode"] == 1
        alarm("caresync-primary-alb-5xx", "OK")
        code, report, _ = run_app(tmp_path, "deploy", "--yes")
        assert code == 3 and "was rolled back" in report["message"], "not again by accident"
        assert len(shim.refreshes) == 1


@pytest.mark.parametrize(("version", "argv", "fragment"), [
    ("$Latest", (), "Pin the release running now first"),
    ("1", ("--version", "9"), "versions 1-2; version 9 does not exist"),
])
def test_deploy_refuses_what_it_cannot_do(aws: Emulator, tmp_path: Path, version: str,
                                          argv: tuple[str, ...], fragment: str) -> None:
    app_tier(version=version)
    with InstanceRefreshes(delay_seconds=0.1) as shim:
        code, report, _ = run_app(tmp_path, "deploy", "--yes", *argv)
    assert code == 3 and fragment in report["message"]
    assert not shim.refreshes


def test_deploy_refuses_while_the_alarms_fire(aws: Emulator, tmp_path: Path) -> None:
    app_tier()
    alarm("caresync-primary-unhealthy-hosts", "ALARM")
    with InstanceRefreshes(delay_seconds=0.1) as shim:
        code, report, _ = run_app(tmp_path, "deploy", "--yes")
    assert code == 3 and "already in ALARM" in report["message"] and not shim.refreshes


def test_rollback_goes_back_to_the_previous_good_version(aws: Emulator, tmp_path: Path) -> None:
    app_tier(version="2")
    with InstanceRefreshes(delay_seconds=0.1) as shim:
        code, report, _ = run_app(tmp_path, "rollback", "--yes")
    assert code == 0, report.get("message")
    (refresh,) = shim.refreshes
    assert refresh.desired_version == "1" and not refresh.preferences["AutoRollback"]
    assert saved_version() == "1"


def test_rollback_pins_a_group_left_on_latest(aws: Emulator, tmp_path: Path) -> None:
    """The first step for a stack deployed before issue 14: a numbered version, then deploys
    can roll back."""
    app_tier(version="$Latest")
    with InstanceRefreshes(delay_seconds=0.1):
        code, report, _ = run_app(tmp_path, "rollback", "--yes", "--to-version", "2")
    assert code == 0, report.get("message")
    assert saved_version() == "2"


def test_rollback_to_an_ami_makes_a_template_version(aws: Emulator, tmp_path: Path) -> None:
    app_tier()
    image = "ami-0aaaabbbbccccdddd"
    seed_image(REGION, image)
    with InstanceRefreshes(delay_seconds=0.1) as shim:
        code, report, _ = run_app(tmp_path, "rollback", "--yes", "--to-ami", image)
    assert code == 0, report.get("message")
    versions = client("ec2").describe_launch_template_versions(
        LaunchTemplateName=GROUP)["LaunchTemplateVersions"]
    made = max(versions, key=lambda v: v["VersionNumber"])
    assert made["VersionNumber"] == 3 and made["LaunchTemplateData"]["ImageId"] == image
    assert shim.refreshes[0].desired_version == "3" and saved_version() == "3"


def test_rollback_undoes_a_deploy_in_progress(aws: Emulator, tmp_path: Path) -> None:
    app_tier()
    from caresync_dr.app.rollout import MODES, TemplateVersion, refresh_request

    with InstanceRefreshes(delay_seconds=1.0, bake_scale=0.01) as shim:
        template = client("autoscaling").describe_auto_scaling_groups(
            AutoScalingGroupNames=[GROUP])["AutoScalingGroups"][0]["LaunchTemplate"]
        client("autoscaling").start_instance_refresh(**refresh_request(
            MODES["deploy"], "primary", GROUP,
            TemplateVersion(template["LaunchTemplateId"], 2)))
        code, report, _ = run_app(tmp_path, "rollback", "--yes")
    assert code == 0, report.get("message")
    assert [r.status for r in shim.refreshes] == ["RollbackSuccessful"]
    assert saved_version() == "1"


def test_a_restart_waits_for_nobody_else_s_refresh(aws: Emulator, tmp_path: Path) -> None:
    app_tier()
    with InstanceRefreshes(delay_seconds=None) as shim:
        client("autoscaling").start_instance_refresh(AutoScalingGroupName=GROUP)
        code, report, _ = run_app(tmp_path, "restart", "--yes")
    assert code == 3 and "wait for it, or roll it back" in report["message"]
    assert len(shim.refreshes) == 1


@pytest.mark.parametrize("argv", [("restart",), ("deploy",), ("rollback",),
                                  ("rollback", "--to-ami", NEXT_AMI)])
def test_dry_runs_make_no_change(aws: Emulator, tmp_path: Path, argv: tuple[str, ...]) -> None:
    app_tier(version="2" if argv == ("rollback",) else "1")
    before = saved_version()
    with InstanceRefreshes(delay_seconds=0.1) as shim:
        code, report, out = run_app(tmp_path, *argv, "--dry-run")
    assert code == 0, report.get("message")
    assert report["mode"] == "dry-run" and report["wouldProceed"]
    calls = [name.split(":", 1)[1] for name in report["awsCalls"]["operations"]]
    assert calls and not [c for c in calls if c.startswith(MUTATING)], calls
    assert report["awsCalls"]["changes"] == 0 and report["awsCalls"]["blocked"]
    assert not shim.refreshes and saved_version() == before
    assert "dry run: nothing was changed" in out
    assert len(client("ec2").describe_launch_template_versions(
        LaunchTemplateName=GROUP)["LaunchTemplateVersions"]) == 2


@pytest.mark.parametrize(("argv", "fragment"), [
    (("rollback", "--to-version", "0"), "--to-version: 0 must be at least 1"),
    (("restart", "--version", "2"), "--version applies to deploy only"),
    (("rollback", "--to-ami", "ubuntu"), "is not an AMI id"),
    (("deploy", "--wait-timeout", "nan"), "--wait-timeout: 'nan' is not a finite number"),
    (("rollback", "--to-version", "2", "--to-ami", NEXT_AMI), "not allowed with argument"),
    (("reboot",), "invalid choice: 'reboot'"),
])
def test_bad_input_is_one_line_and_changes_nothing(aws: Emulator, tmp_path: Path,
                                                   argv: tuple[str, ...],
                                                   fragment: str) -> None:
    app_tier()
    with InstanceRefreshes(delay_seconds=0.1) as shim:
        code, report, _ = run_app(tmp_path, *argv, "--yes")
    assert code == 2 and fragment in report["message"]
    assert not shim.refreshes


def test_rollback_to_an_unknown_version_is_refused(aws: Emulator, tmp_path: Path) -> None:
    app_tier()
    with InstanceRefreshes(delay_seconds=0.1) as shim:
        code, report, _ = run_app(tmp_path, "rollback", "--yes", "--to-version", "7")
    assert code == 3 and "version 7 does not exist" in report["message"]
    assert not shim.refreshes


def test_status_shows_the_release_its_health_and_its_alarms(aws: Emulator,
                                                            tmp_path: Path) -> None:
    app_tier()
    with InstanceRefreshes(delay_seconds=0.1):
        code, report, out = run_app(tmp_path, "status")
    assert code == 0
    template = report["launchTemplate"]
    assert template["version"] == "1" and template["rollbackPossible"]
    assert template["image"] == "ami-0123456789abcdef0"
    assert report["capacity"]["desired"] == 2 and len(report["instances"]) == 2
    assert set(report["alarms"]) == {"caresync-primary-alb-5xx",
                                     "caresync-primary-unhealthy-hosts"}
    assert "rollback possible" in out


def test_status_shows_the_recent_5xx_rate_at_the_load_balancer(aws: Emulator,
                                                              tmp_path: Path) -> None:
    """The seed's "monitor error rates": the app's 5xx answers over the last minutes, read as
    CloudWatch publishes them (AWS/ApplicationELB, dimension LoadBalancer=app/<name>/<id>)."""
    from datetime import UTC, datetime, timedelta

    site = app_tier()
    elbv2 = client("elbv2")
    alb = elbv2.create_load_balancer(Name="caresync-primary-alb", Subnets=site.subnets,
                                     Scheme="internet-facing")["LoadBalancers"][0]
    elbv2.create_listener(LoadBalancerArn=alb["LoadBalancerArn"], Protocol="HTTP", Port=80,
                          DefaultActions=[{"Type": "forward",
                                           "TargetGroupArn": site.target_group}])
    dimension = alb["LoadBalancerArn"].split(":loadbalancer/", 1)[1]
    now = datetime.now(UTC)
    for minutes_ago, requests, errors in ((2, 400, 30), (40, 1000, 1000)):  # 40: outside 15
        for metric, value in (("RequestCount", requests), ("HTTPCode_Target_5XX_Count", errors)):
            client("cloudwatch").put_metric_data(Namespace="AWS/ApplicationELB", MetricData=[{
                "MetricName": metric, "Value": value, "Unit": "Count",
                "Timestamp": now - timedelta(minutes=minutes_ago),
                "Dimensions": [{"Name": "LoadBalancer", "Value": dimension}]}])
    with InstanceRefreshes(delay_seconds=0.1):
        code, report, out = run_app(tmp_path, "status", "--minutes", "15")
    assert code == 0, report.get("message")
    assert report["recent5xx"] == {"minutes": 15, "requests": 400.0, "errors": 30.0,
                                   "percent": 7.5}
    assert "5xx over the last 15 min: 30 of" in out

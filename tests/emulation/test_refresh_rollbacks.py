"""Instance refreshes with desired configurations, alarms, bake time and rollbacks, as Auto
Scaling runs them (the emulation layer; issue 14)."""

from __future__ import annotations

import time
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from caresync_dr.app.rollout import MODES, TemplateVersion, refresh_request, rollout_alarm_names
from caresync_dr.emulation.autoscaling import InstanceRefreshes
from caresync_dr.emulation.server import Emulator

REGION = "us-east-1"
SITE = "primary"
GROUP = "caresync-primary-app"


def make_group(version: str = "1", alarms: bool = True) -> str:
    """A launch template with versions 1 and 2 and the app group on ``version``; the site's
    deploy alarms (OK). Returns the template id."""
    ec2 = boto3.client("ec2", region_name=REGION)
    image = ec2.describe_images()["Images"][0]["ImageId"]
    template = ec2.create_launch_template(
        LaunchTemplateName=GROUP, LaunchTemplateData={"ImageId": image,
                                                      "InstanceType": "t3.micro"})
    template_id = template["LaunchTemplate"]["LaunchTemplateId"]
    ec2.create_launch_template_version(LaunchTemplateId=template_id, SourceVersion="1",
                                       LaunchTemplateData={"ImageId": image})
    boto3.client("autoscaling", region_name=REGION).create_auto_scaling_group(
        AutoScalingGroupName=GROUP, MinSize=1, MaxSize=2, DesiredCapacity=1,
        AvailabilityZones=[f"{REGION}a"],
        LaunchTemplate={"LaunchTemplateId": template_id, "Version": version})
    if alarms:
        cloudwatch = boto3.client("cloudwatch", region_name=REGION)
        for name in rollout_alarm_names(SITE):
            cloudwatch.put_metric_alarm(
                AlarmName=name, MetricName="UnHealthyHostCount", Namespace="AWS/ApplicationELB",
                Statistic="Maximum", Period=60, EvaluationPeriods=1, Threshold=0,
                ComparisonOperator="GreaterThanThreshold")
    return str(template_id)


def saved_version() -> str:
    group = boto3.client("autoscaling", region_name=REGION).describe_auto_scaling_groups(
        AutoScalingGroupNames=[GROUP])["AutoScalingGroups"][0]
    return str(group["LaunchTemplate"]["Version"])


def refreshes() -> list[Any]:
    return list(boto3.client("autoscaling", region_name=REGION).describe_instance_refreshes(
        AutoScalingGroupName=GROUP)["InstanceRefreshes"])


def wait_for(status: str, timeout: float = 10) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = refreshes()
        if found and found[0]["Status"] == status:
            return dict(found[0])
        time.sleep(0.02)
    raise AssertionError(f"no refresh reached {status}: {refreshes()}")


def start(mode: str, template_id: str | None = None) -> str:
    target = TemplateVersion(template_id, 2) if template_id else None
    request = refresh_request(MODES[mode], SITE, GROUP, target)  # type: ignore[index]
    return str(boto3.client("autoscaling", region_name=REGION).start_instance_refresh(
        **request)["InstanceRefreshId"])


def test_a_deploy_replaces_bakes_and_saves_the_new_version(aws: Emulator) -> None:
    template = make_group()
    served: list[str | None] = []
    with InstanceRefreshes(delay_seconds=0.1, bake_scale=0.001,
                           on_replace=lambda region, group, v: served.append(v)):
        start("deploy", template)
        assert refreshes()[0]["Status"] == "InProgress"
        baking = wait_for("Baking")
        assert served == ["2"] and saved_version() == "1", "saved only when it succeeds"
        assert baking["DesiredConfiguration"]["LaunchTemplate"]["Version"] == "2"
        wait_for("Successful")
    assert saved_version() == "2"


def test_an_alarm_during_the_bake_rolls_back_to_the_saved_version(aws: Emulator) -> None:
    template = make_group()
    served: list[str | None] = []
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    with InstanceRefreshes(delay_seconds=0.1, bake_scale=0.05,
                           on_replace=lambda region, group, v: served.append(v)):
        start("deploy", template)
        wait_for("Baking")
        cloudwatch.set_alarm_state(AlarmName="caresync-primary-alb-5xx", StateValue="ALARM",
                                   StateReason="5xx above 5%")
        rolled = wait_for("RollbackSuccessful")
    assert served == ["2", "1"]
    assert saved_version() == "1"
    assert "caresync-primary-alb-5xx" in rolled["StatusReason"]


def test_rollback_instance_refresh_undoes_a_deploy_in_progress(aws: Emulator) -> None:
    template = make_group()
    served: list[str | None] = []
    autoscaling = boto3.client("autoscaling", region_name=REGION)
    with InstanceRefreshes(delay_seconds=0.3, bake_scale=0.01,
                           on_replace=lambda region, group, v: served.append(v)):
        with pytest.raises(ClientError) as nothing:
            autoscaling.rollback_instance_refresh(AutoScalingGroupName=GROUP)
        assert nothing.value.response["Error"]["Code"] == "ActiveInstanceRefreshNotFound"
        start("deploy", template)
        autoscaling.rollback_instance_refresh(AutoScalingGroupName=GROUP)
        wait_for("RollbackSuccessful")
    assert served == ["1"] and saved_version() == "1"


def test_a_restart_cannot_be_rolled_back_and_keeps_the_version(aws: Emulator) -> None:
    make_group()
    served: list[str | None] = []
    autoscaling = boto3.client("autoscaling", region_name=REGION)
    with InstanceRefreshes(delay_seconds=0.3,
                           on_replace=lambda region, group, v: served.append(v)):
        start("restart")
        with pytest.raises(ClientError) as irreversible:
            autoscaling.rollback_instance_refresh(AutoScalingGroupName=GROUP)
        assert irreversible.value.response["Error"]["Code"] == "IrreversibleInstanceRefresh"
        wait_for("Successful")
    assert served == [None] and saved_version() == "1"


@pytest.mark.parametrize(("version", "alarms", "fragment"), [
    ("$Latest", True, "rollbacks need a specific numbered version"),
    ("1", False, "alarm caresync-primary-alb-5xx does not exist"),
])
def test_what_auto_scaling_refuses_is_refused(aws: Emulator, version: str, alarms: bool,
                                              fragment: str) -> None:
    template = make_group(version, alarms=alarms)
    with InstanceRefreshes(delay_seconds=None):
        with pytest.raises(ClientError) as refused:
            start("deploy", template)
        assert refused.value.response["Error"]["Code"] == "ValidationError"
        assert fragment in refused.value.response["Error"]["Message"]
        request = refresh_request(MODES["deploy"], SITE, GROUP, TemplateVersion(template, 2))
        del request["DesiredConfiguration"]
        with pytest.raises(ClientError) as empty:
            boto3.client("autoscaling", region_name=REGION).start_instance_refresh(**request)
        assert "DesiredConfiguration parameter is empty" in empty.value.response[
            "Error"]["Message"]
        assert refreshes() == []

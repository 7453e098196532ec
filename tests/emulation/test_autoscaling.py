"""Auto Scaling where moto differs: instance refreshes, targets that warm up."""

from __future__ import annotations

import threading
import time
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto.autoscaling.responses import AutoScalingResponse

from caresync_dr.emulation.autoscaling import InstanceRefreshes, TargetWarmup
from caresync_dr.emulation.server import Emulator
from tests.emulation.test_refresh_rollbacks import make_group

GROUP = "caresync-primary-app"


def test_refresh_is_in_progress_then_successful_and_reboots_the_site(aws: Emulator) -> None:
    booted: list[tuple[str, str]] = []
    release = threading.Event()

    def reboot(region: str, group: str) -> None:  # the site's instances boot; held for a look
        booted.append((region, group))
        release.wait(10)

    make_group()
    autoscaling = boto3.client("autoscaling", region_name="us-east-1")

    def refreshes() -> list[Any]:
        return list(autoscaling.describe_instance_refreshes(
            AutoScalingGroupName=GROUP)["InstanceRefreshes"])

    with InstanceRefreshes(delay_seconds=0.2, on_complete=reboot):
        assert refreshes() == []
        started = time.monotonic()
        refresh_id = autoscaling.start_instance_refresh(
            AutoScalingGroupName=GROUP)["InstanceRefreshId"]
        assert [(r["InstanceRefreshId"], r["Status"]) for r in refreshes()] == [
            (refresh_id, "InProgress")]
        with pytest.raises(ClientError) as refused:  # one active refresh per group
            autoscaling.start_instance_refresh(AutoScalingGroupName=GROUP)
        assert refused.value.response["Error"]["Code"] == "InstanceRefreshInProgress"
        while not booted:
            time.sleep(0.01)
        assert time.monotonic() - started >= 0.2
        assert refreshes()[0]["Status"] == "InProgress"  # until the instances are in service
        release.set()
        while refreshes()[0]["Status"] == "InProgress" and time.monotonic() - started < 10:
            time.sleep(0.01)
        after = refreshes()[0]
        assert after["Status"] == "Successful" and after["EndTime"] >= after["StartTime"]
        assert booted == [("us-east-1", GROUP)]
        # Another group, another region: nothing to see.
        assert boto3.client("autoscaling", region_name="us-west-2").describe_instance_refreshes(
            AutoScalingGroupName=GROUP)["InstanceRefreshes"] == []
    # Disarmed: moto's gap is back.
    assert not hasattr(AutoScalingResponse, "describe_instance_refreshes")


def test_new_targets_pass_health_only_after_the_warmup(aws: Emulator) -> None:
    ec2 = boto3.client("ec2", region_name="us-west-2")
    elb = boto3.client("elbv2", region_name="us-west-2")
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    group = elb.create_target_group(Name="app", Protocol="HTTP", Port=8080,
                                    VpcId=vpc)["TargetGroups"][0]["TargetGroupArn"]
    image = ec2.describe_images()["Images"][0]["ImageId"]
    warm, new = (i["InstanceId"] for i in
                 ec2.run_instances(ImageId=image, MinCount=2, MaxCount=2)["Instances"])
    elb.register_targets(TargetGroupArn=group, Targets=[{"Id": warm}])
    now = [1000.0]
    launched: list[tuple[str, list[str]]] = []
    with TargetWarmup(delay_seconds=5, clock=lambda: now[0],
                      on_registered=lambda arn, ids: launched.append((arn, ids))):
        elb.register_targets(TargetGroupArn=group, Targets=[{"Id": new}])

        def states() -> dict[str, str]:
            health = elb.describe_target_health(TargetGroupArn=group)
            return {h["Target"]["Id"]: h["TargetHealth"]["State"]
                    for h in health["TargetHealthDescriptions"]}

        assert launched == [(group, [new])]  # the new instance boots now
        assert states() == {warm: "healthy", new: "initial"}
        now[0] += 4.9
        assert states() == {warm: "healthy", new: "initial"}
        now[0] += 0.1
        assert states() == {warm: "healthy", new: "healthy"}

"""Instance refreshes, answered by the emulator layer because moto has none."""

from __future__ import annotations

import time

import boto3

from caresync_dr.drill.emulator import Emulator
from caresync_dr.drill.refresh import InstanceRefreshes


def test_refresh_is_in_progress_then_successful_and_reboots_the_site(aws: Emulator) -> None:
    booted: list[tuple[str, str]] = []
    refreshes = InstanceRefreshes(delay_seconds=0.4,
                                  on_complete=lambda region, group: booted.append((region, group)))
    aws.responders.append(refreshes)
    autoscaling = boto3.client("autoscaling", region_name="us-east-1")

    assert autoscaling.describe_instance_refreshes(
        AutoScalingGroupName="caresync-primary-app")["InstanceRefreshes"] == []
    refresh_id = autoscaling.start_instance_refresh(
        AutoScalingGroupName="caresync-primary-app")["InstanceRefreshId"]
    during = autoscaling.describe_instance_refreshes(
        AutoScalingGroupName="caresync-primary-app")["InstanceRefreshes"]
    assert [(r["InstanceRefreshId"], r["Status"]) for r in during] == [(refresh_id, "InProgress")]
    assert booted == []

    time.sleep(0.6)
    after = autoscaling.describe_instance_refreshes(
        AutoScalingGroupName="caresync-primary-app")["InstanceRefreshes"][0]
    assert after["Status"] == "Successful" and after["EndTime"] >= after["StartTime"]
    assert booted == [("us-east-1", "caresync-primary-app")]
    # Another group, another region: nothing to see.
    assert boto3.client("autoscaling", region_name="us-west-2").describe_instance_refreshes(
        AutoScalingGroupName="caresync-primary-app")["InstanceRefreshes"] == []

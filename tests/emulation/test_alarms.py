"""Alarm evaluation, which moto never does (the emulation layer; issue 14)."""

from __future__ import annotations

import boto3

from caresync_dr.emulation.alarms import AlarmEvaluator
from caresync_dr.emulation.server import ACCOUNT_ID, Emulator

NAME = "caresync-primary-unhealthy-hosts"


def test_an_alarm_fires_after_n_breaching_datapoints_and_clears_on_one_good(
        aws: Emulator) -> None:
    cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
    cloudwatch.put_metric_alarm(
        AlarmName=NAME, MetricName="UnHealthyHostCount", Namespace="AWS/ApplicationELB",
        Statistic="Maximum", Period=60, EvaluationPeriods=3, Threshold=0,
        ComparisonOperator="GreaterThanThreshold")
    values = iter([1.0, 1.0, 0.0, 1.0, 1.0, 1.0, 0.0])
    evaluator = AlarmEvaluator(ACCOUNT_ID, period_seconds=60)
    evaluator.watch("us-east-1", NAME, lambda: next(values), lambda v: v > 0, datapoints=3)

    def state() -> str:
        return str(cloudwatch.describe_alarms(AlarmNames=[NAME])["MetricAlarms"][0]["StateValue"])

    seen = []
    for _ in range(7):
        evaluator.evaluate_once()
        seen.append(state())
    assert seen == ["OK", "OK", "OK", "OK", "OK", "ALARM", "OK"]
    assert [t[1] for t in evaluator.transitions] == ["ALARM", "OK"]

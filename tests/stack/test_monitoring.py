"""Alert topic and alarms: lag derived from the RPO, database, ALB, backups, Route 53."""

from __future__ import annotations

from caresync_dr.offline.runtime import ProgramRun, RegisteredResource, of_type
from caresync_dr.settings import REPLICA_LAG_DATAPOINTS_TO_ALARM, REPLICA_LAG_PERIOD_SECONDS
from tests.stack.checks import one

ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"


def _alarms(run: ProgramRun, metric: str) -> list[RegisteredResource]:
    return [a for a in of_type(run.resources, ALARM) if a.inputs["metricName"] == metric]


def test_alert_topic_is_encrypted_and_mails_the_oncall(any_stack: ProgramRun) -> None:
    site = "primary" if any_stack.stack == "prod" else "standby"
    topic = one(any_stack, "aws:sns/topic:Topic", f"{site}-monitoring-alerts")
    assert topic.inputs["kmsMasterKeyId"] == any_stack.outputs["kmsKeyArn"]
    subs = of_type(any_stack.resources, "aws:sns/topicSubscription:TopicSubscription")
    assert sorted(s.inputs["endpoint"] for s in subs) == [
        "engineering@caresync.health", "oncall@caresync.health"]
    assert all(s.inputs["protocol"] == "email" and s.inputs["topic"] == topic.outputs["arn"]
               for s in subs)


def test_replica_lag_alarms_derive_from_the_rpo(prod_bootstrap: ProgramRun,
                                                dr: ProgramRun) -> None:
    for run, watched in ((prod_bootstrap, "caresync-primary-db-replica-1"),
                         (dr, "caresync-standby-db")):
        lag = _alarms(run, "ReplicaLag")
        assert sorted(a.inputs["threshold"] for a in lag) == [180, 720], \
            "RPO 15 min: page at 900 - 60 s x 3 detection = 720 s, warn at a fifth (180 s)"
        for alarm in lag:  # the detection delay objectives.py adds to the threshold
            assert alarm.inputs["period"] == REPLICA_LAG_PERIOD_SECONDS
            assert alarm.inputs["evaluationPeriods"] == REPLICA_LAG_DATAPOINTS_TO_ALARM
            assert alarm.inputs["datapointsToAlarm"] == REPLICA_LAG_DATAPOINTS_TO_ALARM
        assert {a.inputs["dimensions"]["DBInstanceIdentifier"] for a in lag} == {watched}


def test_rpo_setting_moves_the_lag_threshold() -> None:
    from caresync_dr.offline.runtime import run_program

    run = run_program("prod", config_overrides={"rpoMinutes": "5"})
    # page at 300 - 180 = 120 s, warn at max(60, 5 x 12) = 60 s
    assert sorted(a.inputs["threshold"] for a in _alarms(run, "ReplicaLag")) == [60, 120]


def test_promoted_standby_has_no_lag_alarm(dr_promoted: ProgramRun) -> None:
    assert _alarms(dr_promoted, "ReplicaLag") == []


def test_database_alb_and_backup_alarms_exist(any_stack: ProgramRun) -> None:
    for metric in ("CPUUtilization", "FreeStorageSpace", "FreeableMemory",
                   "HTTPCode_Target_5XX_Count", "UnHealthyHostCount",
                   "NumberOfBackupJobsFailed", "NumberOfCopyJobsFailed"):
        alarms = _alarms(any_stack, metric)
        assert len(alarms) == 1, f"stack {any_stack.stack}: no single alarm on {metric}"
        topic = any_stack.outputs["alertTopicArn"]
        assert alarms[0].inputs["alarmActions"] == [topic], f"{metric} does not page"


def test_route53_health_checks_alarm_in_us_east_1(prod_bootstrap: ProgramRun,
                                                  dr: ProgramRun) -> None:
    alarms = _alarms(dr, "HealthCheckStatus")
    checks = {r.resource_id for r in of_type(dr.resources, "aws:route53/healthCheck:HealthCheck")}
    watched = {a.inputs["dimensions"]["HealthCheckId"] for a in alarms}
    assert watched == {dr.outputs["primaryHealthCheckId"], dr.outputs["standbyHealthCheckId"],
                       dr.outputs["primaryRecordHealthCheckId"]} and watched <= checks
    for alarm in alarms:
        # Route 53 metrics exist only in us-east-1; alarm actions need a topic of that region.
        assert alarm.inputs["region"] == "us-east-1"
        assert alarm.inputs["alarmActions"] == [prod_bootstrap.outputs["alertTopicArn"]]

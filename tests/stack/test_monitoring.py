"""Alert topic and alarms: lag derived from the RPO, database, ALB, backups, Route 53."""

from __future__ import annotations

import json
import re

import pytest

from caresync_dr.offline.runtime import ProgramRun, RegisteredResource, of_type
from caresync_dr.settings import REPLICA_LAG_DATAPOINTS_TO_ALARM, REPLICA_LAG_PERIOD_SECONDS
from components.monitoring import ALB_5XX_EXPRESSION
from tests.stack.checks import one

ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
INSTANCE = "aws:rds/instance:Instance"


def _alarms(run: ProgramRun, metric: str) -> list[RegisteredResource]:
    return [a for a in of_type(run.resources, ALARM) if a.inputs.get("metricName") == metric]


def _lag_thresholds(run: ProgramRun) -> list[RegisteredResource]:
    return [a for a in _alarms(run, "ReplicaLag")
            if a.inputs["comparisonOperator"] == "GreaterThanThreshold"]


def test_alert_topic_is_encrypted_and_mails_the_oncall(any_stack: ProgramRun) -> None:
    site = "primary" if any_stack.stack == "prod" else "standby"
    topic = one(any_stack, "aws:sns/topic:Topic", f"{site}-monitoring-alerts")
    assert topic.inputs["kmsMasterKeyId"] == any_stack.outputs["kmsKeyArn"]
    # The ops topic's own subscriptions (the security topic has its own); the escalation
    # tiers' filtered ones are tested below.
    subs = [s for s in of_type(any_stack.resources, "aws:sns/topicSubscription:TopicSubscription")
            if s.inputs["topic"] == topic.outputs["arn"] and "filterPolicy" not in s.inputs]
    assert sorted(s.inputs["endpoint"] for s in subs) == [
        "engineering@caresync.health", "oncall@caresync.health"]
    assert all(s.inputs["protocol"] == "email" and s.inputs["topic"] == topic.outputs["arn"]
               for s in subs)


def test_escalation_tiers_get_mail_only_once_engaged(any_stack: ProgramRun) -> None:
    """Each tier's addresses filter on the escalationTier attribute the notifier sets, so the
    CTO is not mailed every alarm, only incidents that reached the CTO tier."""
    subs = of_type(any_stack.resources, "aws:sns/topicSubscription:TopicSubscription")
    filtered = {s.inputs["endpoint"]: json.loads(s.inputs["filterPolicy"])
                for s in subs if "filterPolicy" in s.inputs}
    assert filtered == {"tech-lead@caresync.health": {"escalationTier": ["technical-lead"]},
                        "cto@caresync.health": {"escalationTier": ["cto"]},
                        "ceo@caresync.health": {"escalationTier": ["ceo"]}}


def test_replica_lag_alarms_derive_from_the_rpo(prod_bootstrap: ProgramRun,
                                                dr: ProgramRun) -> None:
    for run, watched in ((prod_bootstrap, "caresync-primary-db-replica-1"),
                         (dr, "caresync-standby-db")):
        lag = _lag_thresholds(run)
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
    assert sorted(a.inputs["threshold"] for a in _lag_thresholds(run)) == [60, 120]


def test_stopped_replication_pages_on_every_replica(prod_linked: ProgramRun,
                                                    dr: ProgramRun) -> None:
    """RDS reports ReplicaLag -1 when replication is not active, and nothing at all from a
    replica in error: neither crosses a lag threshold, so each replica has its own alarm."""
    for run in (prod_linked, dr):
        replicas = {r.inputs["identifier"] for r in of_type(run.resources, INSTANCE)
                    if r.inputs.get("replicateSourceDb")}
        broken = [a for a in _alarms(run, "ReplicaLag")
                  if a.inputs["comparisonOperator"] == "LessThanThreshold"]
        assert {a.inputs["dimensions"]["DBInstanceIdentifier"] for a in broken} == replicas
        for alarm in broken:
            assert alarm.inputs["threshold"] == 0 and alarm.inputs["statistic"] == "Minimum"
            assert alarm.inputs["treatMissingData"] == "breaching"
            assert alarm.inputs["alarmActions"] == [run.outputs["alertTopicArn"]]


def test_promoted_standby_watches_its_replicas_not_itself(dr_promoted: ProgramRun) -> None:
    watched = {a.inputs["dimensions"]["DBInstanceIdentifier"]
               for a in _alarms(dr_promoted, "ReplicaLag")}
    assert watched == set(dr_promoted.outputs["dbReplicaIdentifiers"])
    assert dr_promoted.outputs["dbIdentifier"] not in watched


def test_database_alb_and_backup_alarms_exist(any_stack: ProgramRun) -> None:
    for metric in ("CPUUtilization", "FreeStorageSpace", "FreeableMemory",
                   "UnHealthyHostCount",
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


def _evaluate(expression: str, series: dict[str, float | None]) -> float | None:
    """CloudWatch metric math for what the 5xx expression uses: FILL(x, v), * and /.
    None is a missing datapoint (FILL replaces it; arithmetic on it stays missing)."""
    def fill(match: re.Match[str]) -> str:
        value = series[match.group(1)]
        return repr(float(match.group(2)) if value is None else value)

    plain = re.sub(r"FILL\((\w+),\s*([\d.]+)\)", fill, expression)
    if re.search(r"[a-z_]", plain):
        return None  # an unfilled, missing series
    result: float = eval(plain, {"__builtins__": {}})  # digits and * / only
    return result


@pytest.mark.parametrize(("errors", "requests", "breaches"), [
    (10.0, 100.0, True),     # 10 %
    (4.0, 100.0, False),     # 4 %
    (26.0, 10000.0, False),  # the old count alarm (> 25) paged here: 0.26 %
    (None, 5000.0, False),   # no 5xx metric published while there are none
    (3.0, None, True),       # errors but no request metric: FILL(requests, 1) still alarms
])
def test_alb_5xx_alarm_is_a_ratio_of_requests(any_stack: ProgramRun, errors: float | None,
                                              requests: float | None, breaches: bool) -> None:
    site = "primary" if any_stack.stack == "prod" else "standby"
    alarm = one(any_stack, ALARM, f"{site}-monitoring-alb-5xx")
    assert "metricName" not in alarm.inputs and "namespace" not in alarm.inputs
    queries = {q["id"]: q for q in alarm.inputs["metricQueries"]}
    assert set(queries) == {"errors", "requests", "ratio"}
    for query_id, metric in (("errors", "HTTPCode_Target_5XX_Count"),
                             ("requests", "RequestCount")):
        query = queries[query_id]
        assert query["metric"]["metricName"] == metric
        assert query["metric"]["namespace"] == "AWS/ApplicationELB"
        assert query["metric"]["stat"] == "Sum" and query["metric"]["period"] == 300
        assert query["metric"]["dimensions"]["LoadBalancer"].startswith("app/")
        assert query.get("returnData") is False
    ratio = queries["ratio"]
    assert ratio["returnData"] is True
    assert alarm.inputs["threshold"] == 5 and alarm.inputs["evaluationPeriods"] == 1
    assert alarm.inputs["comparisonOperator"] == "GreaterThanThreshold"
    assert alarm.inputs["treatMissingData"] == "notBreaching"
    assert alarm.inputs["alarmActions"] == [any_stack.outputs["alertTopicArn"]]
    value = _evaluate(ratio["expression"], {"errors": errors, "requests": requests})
    assert value is not None and (value > alarm.inputs["threshold"]) is breaches, value


def test_no_traffic_is_no_datapoint_and_not_breaching() -> None:
    # Both series missing: CloudWatch emits no datapoint for the timestamp (FILL fills only
    # timestamps another series has), so treat_missing_data decides: notBreaching.
    assert "FILL(errors, 0)" in ALB_5XX_EXPRESSION and "FILL(requests, 1)" in ALB_5XX_EXPRESSION

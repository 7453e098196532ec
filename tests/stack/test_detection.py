"""Breach detection on both sites (issue 13): GuardDuty routed to a separate security topic,
CloudTrail in CloudWatch Logs with the CIS signals as filters and alarms, pgAudit."""

from __future__ import annotations

import json
from typing import Any

from caresync_dr.detection import METRIC_NAMESPACE, SIGNALS, signals_for
from caresync_dr.offline.runtime import ProgramRun, RegisteredResource, of_type
from tests import offline_runs
from tests.stack.checks import check, one, policy

TOPIC = "aws:sns/topic:Topic"
ACCOUNT = "111122223333"


def _site(run: ProgramRun) -> str:
    return "primary" if run.stack == "prod" else "standby"


def _region(run: ProgramRun) -> str:
    return "us-east-1" if run.stack == "prod" else "us-west-2"


def _security_topic(run: ProgramRun) -> RegisteredResource:
    return one(run, TOPIC, f"{_site(run)}-detection-security-topic")


def _statements(doc: Any) -> dict[str, dict[str, Any]]:
    document = json.loads(doc) if isinstance(doc, str) else doc
    return {s["Sid"]: s for s in document["Statement"]}


def test_security_topic_is_separate_encrypted_and_mails_the_security_team(
        any_stack: ProgramRun) -> None:
    site = _site(any_stack)
    topic = _security_topic(any_stack)
    alerts = one(any_stack, TOPIC, f"{site}-monitoring-alerts")
    assert topic.inputs["name"] == f"caresync-{site}-security" != alerts.inputs["name"]
    check(topic, topic.inputs["kmsMasterKeyId"] == any_stack.outputs["kmsKeyArn"],
          "not encrypted with the site key")
    subs = [s for s in of_type(any_stack.resources, "aws:sns/topicSubscription:TopicSubscription")
            if s.inputs["topic"] == topic.outputs["arn"]]
    assert {(s.inputs["protocol"], s.inputs["endpoint"]) for s in subs} == {
        ("email", "security@caresync.health")}
    assert any_stack.outputs["securityTopicArn"] == topic.outputs["arn"]


def test_only_this_sites_rule_and_alarms_may_publish_to_the_security_topic(
        any_stack: ProgramRun) -> None:
    topic = _security_topic(any_stack)
    rule = one(any_stack, "aws:cloudwatch/eventRule:EventRule",
               f"{_site(any_stack)}-detection-findings-rule")
    (topic_policy,) = [p for p in of_type(any_stack.resources, "aws:sns/topicPolicy:TopicPolicy")
                       if p.inputs["arn"] == topic.outputs["arn"]]
    sts = _statements(topic_policy.inputs["policy"])
    events = sts["GuardDutyFindingsFromThisRule"]
    assert events["Principal"] == {"Service": "events.amazonaws.com"}
    assert events["Action"] == "sns:Publish" and events["Resource"] == topic.outputs["arn"]
    assert events["Condition"] == {"ArnEquals": {"aws:SourceArn": rule.outputs["arn"]}}
    alarms = sts["AlarmsOfThisAccount"]
    assert alarms["Condition"]["ArnLike"]["aws:SourceArn"] == (
        f"arn:aws:cloudwatch:{_region(any_stack)}:{ACCOUNT}:alarm:*")
    assert alarms["Condition"]["StringEquals"] == {"aws:SourceAccount": ACCOUNT}
    # Both services publish to a KMS-encrypted topic only if the key lets them.
    key = one(any_stack, "aws:kms/key:Key", f"{_site(any_stack)}-key")
    services = {s["Principal"].get("Service") for s in policy(key)["Statement"]}
    assert {"events.amazonaws.com", "cloudwatch.amazonaws.com"} <= services


def test_guardduty_is_on_with_s3_and_rds_protection_and_cannot_be_deleted_by_accident(
        any_stack: ProgramRun) -> None:
    (detector,) = of_type(any_stack.resources, "aws:guardduty/detector:Detector")
    check(detector, detector.inputs["enable"] is True, "GuardDuty suspended")
    check(detector, detector.protect, "deleting the detector drops every finding: protect it")
    assert detector.inputs["findingPublishingFrequency"] == "FIFTEEN_MINUTES"
    assert "datasources" not in detector.inputs, "deprecated: features instead"
    features = {f.inputs["name"]: f for f in of_type(
        any_stack.resources, "aws:guardduty/detectorFeature:DetectorFeature")}
    assert set(features) == {"S3_DATA_EVENTS", "RDS_LOGIN_EVENTS"}
    for feature in features.values():
        assert feature.inputs["status"] == "ENABLED"
        assert feature.inputs["detectorId"] == detector.resource_id
    assert any_stack.outputs["guardDutyDetectorId"] == detector.resource_id


def test_findings_from_the_configured_severity_go_to_the_security_topic(
        any_stack: ProgramRun) -> None:
    rule = one(any_stack, "aws:cloudwatch/eventRule:EventRule",
               f"{_site(any_stack)}-detection-findings-rule")
    assert json.loads(rule.inputs["eventPattern"]) == {
        "source": ["aws.guardduty"], "detail-type": ["GuardDuty Finding"],
        "detail": {"severity": [{"numeric": [">=", 4.0]}]}}
    (target,) = of_type(any_stack.resources, "aws:cloudwatch/eventTarget:EventTarget")
    assert target.inputs["rule"] == rule.outputs["name"]
    assert target.inputs["arn"] == _security_topic(any_stack).outputs["arn"]


def test_min_severity_is_a_setting() -> None:
    run = offline_runs.dr_with({"guardDutyMinSeverity": "7"})
    rule = one(run, "aws:cloudwatch/eventRule:EventRule", "standby-detection-findings-rule")
    assert json.loads(rule.inputs["eventPattern"])["detail"]["severity"] == [
        {"numeric": [">=", 7.0]}]


def test_trail_also_delivers_to_an_encrypted_log_group_through_its_own_role(
        any_stack: ProgramRun) -> None:
    site = _site(any_stack)
    (trail,) = of_type(any_stack.resources, "aws:cloudtrail/trail:Trail")
    group = one(any_stack, "aws:cloudwatch/logGroup:LogGroup", f"{site}-audit-trail-logs")
    assert group.inputs["name"] == f"/caresync-dr/{site}/cloudtrail"
    check(group, group.inputs["kmsKeyId"] == any_stack.outputs["kmsKeyArn"], "no site key")
    assert group.inputs["retentionInDays"] == 365
    assert trail.inputs["cloudWatchLogsGroupArn"] == group.outputs["arn"] + ":*"
    role = one(any_stack, "aws:iam/role:Role", f"{site}-audit-trail-logs-role")
    assert trail.inputs["cloudWatchLogsRoleArn"] == role.outputs["arn"]
    (trust,) = policy(role, "assumeRolePolicy")["Statement"]
    assert trust["Principal"] == {"Service": "cloudtrail.amazonaws.com"}
    grant = one(any_stack, "aws:iam/rolePolicy:RolePolicy", f"{site}-audit-trail-logs-policy")
    streams = f"{group.outputs['arn']}:log-stream:{ACCOUNT}_CloudTrail_*"
    assert {(s["Action"], s["Resource"]) for s in policy(grant)["Statement"]} == {
        ("logs:CreateLogStream", streams), ("logs:PutLogEvents", streams)}
    assert grant.urn in trail.dependencies, "CloudTrail checks the role when it is created"
    assert any_stack.outputs["trailLogGroupName"] == group.inputs["name"]


def test_trail_log_retention_is_a_setting() -> None:
    run = offline_runs.dr_with({"trailLogRetentionDays": "731"})
    group = one(run, "aws:cloudwatch/logGroup:LogGroup", "standby-audit-trail-logs")
    assert group.inputs["retentionInDays"] == 731


def _filters_and_alarms(run: ProgramRun) -> tuple[dict[str, RegisteredResource],
                                                  dict[str, RegisteredResource]]:
    site = _site(run)
    filters = {f.inputs["name"].removeprefix(f"caresync-{site}-"): f for f in of_type(
        run.resources, "aws:cloudwatch/logMetricFilter:LogMetricFilter")}
    alarms = {a.inputs["name"].removeprefix(f"caresync-{site}-security-"): a
              for a in of_type(run.resources, "aws:cloudwatch/metricAlarm:MetricAlarm")
              if a.inputs["name"].startswith(f"caresync-{site}-security-")}
    return filters, alarms


def test_every_signal_has_awss_filter_and_an_alarm_to_the_security_topic(
        any_stack: ProgramRun) -> None:
    site = _site(any_stack)
    filters, alarms = _filters_and_alarms(any_stack)
    expected = {s.key: s for s in signals_for(global_events=any_stack.stack == "prod")}
    assert set(filters) == set(alarms) == set(expected)
    topic = _security_topic(any_stack).outputs["arn"]
    alert_topic = one(any_stack, TOPIC, f"{site}-monitoring-alerts").outputs["arn"]
    for key, signal in expected.items():
        metric_filter, alarm = filters[key], alarms[key]
        assert metric_filter.inputs["logGroupName"] == f"/caresync-dr/{site}/cloudtrail"
        assert metric_filter.inputs["pattern"] == signal.pattern
        transformation = metric_filter.inputs["metricTransformation"]
        assert transformation == {"name": signal.metric_name, "namespace": METRIC_NAMESPACE,
                                  "value": "1"}
        assert (alarm.inputs["namespace"], alarm.inputs["metricName"]) == (
            METRIC_NAMESPACE, signal.metric_name)
        assert alarm.inputs["statistic"] == "Sum" and alarm.inputs["period"] == 300
        assert alarm.inputs["threshold"] == signal.threshold
        assert alarm.inputs["comparisonOperator"] == "GreaterThanOrEqualToThreshold"
        assert alarm.inputs["treatMissingData"] == "notBreaching"
        assert alarm.inputs["alarmActions"] == [topic] and alert_topic not in str(alarm.inputs)


def test_iam_signals_only_where_the_trail_records_global_events(
        prod_linked: ProgramRun, dr: ProgramRun) -> None:
    global_only = {s.key for s in SIGNALS if s.global_events}
    assert global_only == {"iam-policy-changes"}
    assert global_only <= set(_filters_and_alarms(prod_linked)[0])
    assert not global_only & set(_filters_and_alarms(dr)[0])
    (dr_trail,) = of_type(dr.resources, "aws:cloudtrail/trail:Trail")
    assert dr_trail.inputs["includeGlobalServiceEvents"] is False


def test_parameter_group_loads_pgaudit_and_audits_roles_and_phi_access(
        any_stack: ProgramRun) -> None:
    group = one(any_stack, "aws:rds/parameterGroup:ParameterGroup",
                f"{_site(any_stack)}-database-params")
    params = {p["name"]: p for p in group.inputs["parameters"]}
    assert params["shared_preload_libraries"] == {
        "name": "shared_preload_libraries", "value": "pg_stat_statements,pgaudit",
        "applyMethod": "pending-reboot"}
    assert params["pgaudit.log"]["value"] == "ddl,role"
    assert params["pgaudit.role"]["value"] == "rds_pgaudit"
    assert params["pgaudit.log_parameter"]["value"] == "0"
    # Exported with the site key and a retention: the existing postgresql log group.
    db = one(any_stack, "aws:rds/instance:Instance", f"{_site(any_stack)}-database-instance")
    assert "postgresql" in db.inputs["enabledCloudwatchLogsExports"]
    identifier = db.inputs["identifier"]
    log = one(any_stack, "aws:cloudwatch/logGroup:LogGroup",
              f"{_site(any_stack)}-database-instance-postgresql-log")
    assert log.inputs["name"] == f"/aws/rds/instance/{identifier}/postgresql"
    assert log.inputs["kmsKeyId"] == any_stack.outputs["kmsKeyArn"]
    assert log.inputs["retentionInDays"] == 365


def test_docs_table_is_generated_from_the_signals() -> None:
    from caresync_dr.detection import signals_table
    from tests.ci_paths import ROOT

    assert signals_table() in (ROOT / "docs" / "detection.md").read_text(), \
        "docs/detection.md is out of date: paste caresync_dr.detection.signals_table()"

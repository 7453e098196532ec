"""Guardrails for breach detection (issue 13, docs/detection.md): what detects stays deployed.

* GuardDuty is on in every stack's region with S3 and RDS Protection, and its findings at or
  above ``guardDutyMinSeverity`` reach the site's security topic, which mails
  ``securityEmails``;
* every trail also delivers to a CloudWatch Logs group under a customer-managed key, kept
  ``trailLogRetentionDays`` (at least a year);
* every breach signal the trail can see (caresync_dr/detection.py) has its metric filter with
  AWS's pattern on that group and an alarm to the security topic at the documented threshold;
* every PostgreSQL parameter group loads pgAudit and audits role changes, with object audit
  through ``rds_pgaudit`` and parameter values never logged.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pulumi_policy import PolicyResource, ReportViolation, StackValidationArgs

from caresync_dr.db.pgaudit import AUDIT_ROLE
from caresync_dr.detection import (
    GUARDDUTY_FEATURES,
    METRIC_NAMESPACE,
    security_topic_name,
    signals_for,
)
from caresync_dr.settings import Settings
from policy.context import (
    RDS_PARAMETER_GROUP,
    check_each,
    items,
    of_type,
    prop,
    refers_to,
    resource_policy,
    stack_policy,
    truthy,
    with_settings,
)

DETECTOR = ("aws:guardduty/detector:Detector",)
DETECTOR_FEATURE = ("aws:guardduty/detectorFeature:DetectorFeature",)
EVENT_RULE = ("aws:cloudwatch/eventRule:EventRule",)
EVENT_TARGET = ("aws:cloudwatch/eventTarget:EventTarget",)
TOPIC = ("aws:sns/topic:Topic",)
TOPIC_SUBSCRIPTION = ("aws:sns/topicSubscription:TopicSubscription",)
TRAIL = ("aws:cloudtrail/trail:Trail",)
LOG_GROUP = ("aws:cloudwatch/logGroup:LogGroup",)
METRIC_FILTER = ("aws:cloudwatch/logMetricFilter:LogMetricFilter",)
METRIC_ALARM = ("aws:cloudwatch/metricAlarm:MetricAlarm",)


def _first_settings(args: StackValidationArgs, report: ReportViolation) -> Settings | None:
    if not args.resources:
        return None
    return with_settings(args.resources[0].urn, report)


def _security_topic(args: StackValidationArgs, settings: Settings) -> PolicyResource | None:
    wanted = security_topic_name(settings.site)
    return next((t for t in of_type(args.resources, TOPIC) if prop(t.props, "name") == wanted),
                None)


def _min_severity(pattern: Any) -> float | None:
    """The ``>=`` bound of a GuardDuty finding pattern's severity, or None if it has none."""
    try:
        data = json.loads(pattern) if isinstance(pattern, str) else pattern
    except json.JSONDecodeError:
        return None
    if not isinstance(data, Mapping) or "aws.guardduty" not in (data.get("source") or []):
        return None
    for clause in (data.get("detail") or {}).get("severity") or []:
        numeric = clause.get("numeric") if isinstance(clause, Mapping) else None
        if isinstance(numeric, list) and len(numeric) == 2 and numeric[0] == ">=":
            return float(numeric[1])
    return None


# --- GuardDuty --------------------------------------------------------------------------------

def _validate_guardduty(args: StackValidationArgs, report: ReportViolation) -> None:
    settings = _first_settings(args, report)
    if settings is None:
        return
    detectors = [d for d in of_type(args.resources, DETECTOR)
                 if prop(d.props, "enable") is None or truthy(prop(d.props, "enable"))]
    if not detectors:
        report("no enabled GuardDuty detector: add aws.guardduty.Detector(enable=True) "
               "(components/detection.py)", None)
        return
    detector = detectors[0]
    features = of_type(args.resources, DETECTOR_FEATURE)
    for name in GUARDDUTY_FEATURES:
        if not any(prop(f.props, "name") == name and prop(f.props, "status") == "ENABLED"
                   and refers_to(f, "detectorId", detector, ()) for f in features):
            report(f"GuardDuty feature {name} is not enabled on {detector.name}: add "
                   f"aws.guardduty.DetectorFeature(name='{name}', status='ENABLED')",
                   detector.urn)
    topic = _security_topic(args, settings)
    if topic is None:
        report(f"no security topic {security_topic_name(settings.site)}: findings and breach "
               "signals need their own topic, separate from the ops alerts", None)
        return
    subscribed = {prop(s.props, "endpoint") for s in of_type(args.resources, TOPIC_SUBSCRIPTION)
                  if refers_to(s, "topic", topic, ("arn",))
                  and prop(s.props, "protocol") == "email"}
    missing = [e for e in settings.security_emails if e not in subscribed]
    if missing:
        report(f"{topic.name} does not mail {', '.join(missing)} (securityEmails)", topic.urn)
    routed = []
    for rule in of_type(args.resources, EVENT_RULE):
        bound = _min_severity(prop(rule.props, "eventPattern"))
        if bound is None:
            continue
        targets = [t for t in of_type(args.resources, EVENT_TARGET)
                   if refers_to(t, "rule", rule, ("name",))
                   and refers_to(t, "arn", topic, ("arn",))]
        if targets:
            routed.append((rule, bound))
    if not routed:
        report(f"no EventBridge rule sends GuardDuty findings to {topic.name}", detector.urn)
    for rule, bound in routed:
        if bound > settings.guardduty_min_severity:
            report(f"{rule.name} forwards findings from severity {bound:g}, "
                   f"guardDutyMinSeverity is {settings.guardduty_min_severity:g}: findings in "
                   "between reach nobody", rule.urn)


guardduty_findings_routed = stack_policy(
    "guardduty-findings-routed",
    "GuardDuty is on with S3 and RDS Protection; findings reach the security topic.",
    _validate_guardduty)


# --- CloudTrail to CloudWatch Logs and the breach signals --------------------------------------

def _trail_group(trail: PolicyResource, groups: list[PolicyResource]) -> PolicyResource | None:
    arn = prop(trail.props, "cloudWatchLogsGroupArn")
    if any(dep.urn == g.urn for g in groups
           for dep in trail.property_dependencies.get("cloudWatchLogsGroupArn", [])):
        return next(g for g in groups if any(
            dep.urn == g.urn for dep in trail.property_dependencies["cloudWatchLogsGroupArn"]))
    if isinstance(arn, str):
        group_arn = arn.removesuffix(":*")
        return next((g for g in groups if prop(g.props, "arn") == group_arn), None)
    return None


def _notifies(alarm: PolicyResource, actions: list[Any], topic: PolicyResource | None) -> bool:
    if topic is None:
        return False
    if any(a in (prop(topic.props, "arn"), prop(topic.props, "id")) for a in actions):
        return True
    return any(dep.urn == topic.urn
               for dep in alarm.property_dependencies.get("alarmActions", []))


def _validate_trail_logs(args: StackValidationArgs, report: ReportViolation) -> None:
    settings = _first_settings(args, report)
    if settings is None:
        return
    groups = of_type(args.resources, LOG_GROUP)
    topic = _security_topic(args, settings)
    filters = of_type(args.resources, METRIC_FILTER)
    alarms = of_type(args.resources, METRIC_ALARM)

    def one(trail: PolicyResource) -> None:
        group = _trail_group(trail, groups)
        if group is None or not prop(trail.props, "cloudWatchLogsRoleArn"):
            report(f"{trail.name} does not deliver to a CloudWatch Logs group of this stack: set "
                   "cloud_watch_logs_group_arn (the group's ARN + ':*') and "
                   "cloud_watch_logs_role_arn (components/audit.py)", trail.urn)
            return
        if not prop(group.props, "kmsKeyId"):
            report(f"{group.name}: the trail's log group is not encrypted with the site key",
                   group.urn)
        days = prop(group.props, "retentionInDays")
        if days is None or int(days) != settings.trail_log_retention_days:
            report(f"{group.name} keeps events {days} days, trailLogRetentionDays is "
                   f"{settings.trail_log_retention_days}", group.urn)
        global_events = truthy(prop(trail.props, "includeGlobalServiceEvents"))
        group_name = prop(group.props, "name")
        for signal in signals_for(global_events):
            matching = [f for f in filters
                        if (refers_to(f, "logGroupName", group, ("name",))
                            or prop(f.props, "logGroupName") == group_name)
                        and prop(f.props, "pattern") == signal.pattern]
            metrics = {(prop(f.props, "metricTransformation", "namespace"),
                        prop(f.props, "metricTransformation", "name")) for f in matching}
            if not matching:
                report(f"no metric filter with AWS's pattern for '{signal.title}' on "
                       f"{group.name} (caresync_dr/detection.py, {signal.key})", trail.urn)
                continue
            alarmed = [a for a in alarms
                       if (prop(a.props, "namespace"), prop(a.props, "metricName")) in metrics
                       and prop(a.props, "namespace") == METRIC_NAMESPACE]
            if not alarmed:
                report(f"'{signal.title}' is counted but no alarm watches it", trail.urn)
                continue
            for alarm in alarmed:
                threshold = prop(alarm.props, "threshold")
                actions = items(prop(alarm.props, "alarmActions"))
                if threshold is None or float(threshold) > signal.threshold:
                    report(f"{alarm.name}: threshold {threshold}, the documented threshold is "
                           f"{signal.threshold} (docs/detection.md)", alarm.urn)
                if not _notifies(alarm, actions, topic):
                    report(f"{alarm.name} does not notify the security topic", alarm.urn)
    check_each(of_type(args.resources, TRAIL), one)


breach_signals_alarmed = stack_policy(
    "breach-signals-alarmed",
    "Trails deliver to CloudWatch Logs; every breach signal has its filter and alarm.",
    _validate_trail_logs)


# --- pgAudit ------------------------------------------------------------------------------------

def pgaudit_problems(props: Mapping[str, Any]) -> list[str]:
    if not str(prop(props, "family") or "").startswith("postgres"):
        return []
    params = {str(prop(p, "name")): str(prop(p, "value")) for p in items(prop(props,
                                                                              "parameters"))}
    problems = []
    preload = [s.strip() for s in params.get("shared_preload_libraries", "").split(",")]
    if "pgaudit" not in preload:
        problems.append("pgaudit is not in shared_preload_libraries: role changes and PHI "
                        "access go unaudited (caresync_dr/db/pgaudit.py)")
    classes = {c.strip() for c in params.get("pgaudit.log", "").split(",")}
    if not {"ddl", "role"} <= classes and "all" not in classes:
        problems.append(f"pgaudit.log is {params.get('pgaudit.log')!r}: it must include ddl "
                        "and role")
    if params.get("pgaudit.role") != AUDIT_ROLE:
        problems.append(f"pgaudit.role is {params.get('pgaudit.role')!r}: object audit of the "
                        f"PHI tables needs {AUDIT_ROLE}")
    if params.get("pgaudit.log_parameter") not in ("0", None):
        problems.append("pgaudit.log_parameter is on: statement parameters may hold PHI")
    return problems


rds_pgaudit = resource_policy(
    "rds-pgaudit",
    "PostgreSQL parameter groups load pgAudit: role changes, DDL and PHI-table access audited.",
    RDS_PARAMETER_GROUP, lambda args, _: pgaudit_problems(args.props))

POLICIES = [guardduty_findings_routed, breach_signals_alarmed, rds_pgaudit]

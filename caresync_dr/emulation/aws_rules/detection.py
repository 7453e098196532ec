"""Detection rules (issue 13): GuardDuty, EventBridge to SNS, CloudTrail to CloudWatch Logs,
metric filters, pgAudit parameters."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from caresync_dr.emulation.aws_rules.core import (
    ResourceLike,
    Rule,
    RunView,
    allows,
    arn_region,
    as_list,
    first,
    policy_statements,
    principals,
)

DETECTOR = "aws:guardduty/detector:Detector"
FEATURE = "aws:guardduty/detectorFeature:DetectorFeature"
EVENT_RULE = "aws:cloudwatch/eventRule:EventRule"
EVENT_TARGET = "aws:cloudwatch/eventTarget:EventTarget"
METRIC_FILTER = "aws:cloudwatch/logMetricFilter:LogMetricFilter"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
TOPIC = "aws:sns/topic:Topic"
TOPIC_POLICY = "aws:sns/topicPolicy:TopicPolicy"
TRAIL = "aws:cloudtrail/trail:Trail"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
KEY = "aws:kms/key:Key"
PARAMETER_GROUP = "aws:rds/parameterGroup:ParameterGroup"

PUBLISHING_FREQUENCIES = frozenset({"FIFTEEN_MINUTES", "ONE_HOUR", "SIX_HOURS"})
FEATURE_NAMES = frozenset({"S3_DATA_EVENTS", "EKS_AUDIT_LOGS", "EBS_MALWARE_PROTECTION",
                           "RDS_LOGIN_EVENTS", "EKS_RUNTIME_MONITORING", "LAMBDA_NETWORK_LOGS",
                           "RUNTIME_MONITORING", "AI_PROTECTION", "AI_ANALYST"})
RUNTIME_FEATURES = frozenset({"EKS_RUNTIME_MONITORING", "RUNTIME_MONITORING"})
RULE_STATES = frozenset({"DISABLED", "ENABLED", "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS"})
EVENT_PATTERN_MAX = 2048  # default quota; raisable to 4096 on request
_RULE_NAME = re.compile(r"[.\-_A-Za-z0-9]{1,64}")
FILTER_PATTERN_MAX = 1024
_FILTER_NAME = re.compile(r"[^:*]{1,512}")
STATIC_PGAUDIT = "shared_preload_libraries"
RDS_PGAUDIT_ROLE = "rds_pgaudit"


def _one_detector_per_region(detector: ResourceLike, view: RunView) -> list[str]:
    problems = []
    frequency = detector.inputs.get("findingPublishingFrequency")
    if frequency is not None and frequency not in PUBLISHING_FREQUENCIES:
        problems.append(f"finding_publishing_frequency {frequency!r} is not one of "
                        f"{', '.join(sorted(PUBLISHING_FREQUENCIES))}")
    region = view.region_of(detector)
    others = [d for d in view.of_type(DETECTOR) if d is not detector
              and view.region_of(d) == region]
    if others:
        problems.append(f"a second GuardDuty detector in {region}: an account has one detector "
                        "per region (CreateDetector: 'a detector already exists for the current "
                        "account')")
    if detector.inputs.get("datasources") and any(
            _refers(f.inputs.get("detectorId"), detector) for f in view.of_type(FEATURE)):
        problems.append("datasources and DetectorFeature resources on one detector: the "
                        "datasources block is deprecated in favour of features, and the two "
                        "overwrite each other's settings on every update")
    return problems


def _refers(value: Any, resource: ResourceLike) -> bool:
    return value is not None and value in (resource.resource_id, resource.outputs.get("id"),
                                           resource.outputs.get("arn"))


def _feature(feature: ResourceLike, view: RunView) -> list[str]:
    problems = []
    name = str(feature.inputs.get("name") or "")
    if name not in FEATURE_NAMES:
        problems.append(f"feature name {name!r} is not one GuardDuty knows "
                        f"({', '.join(sorted(FEATURE_NAMES))})")
    status = feature.inputs.get("status")
    if status not in ("ENABLED", "DISABLED"):
        problems.append(f"status {status!r}: ENABLED or DISABLED")
    if as_list(feature.inputs.get("additionalConfigurations")) and name not in RUNTIME_FEATURES:
        problems.append(f"additional_configurations on {name}: only EKS_RUNTIME_MONITORING and "
                        "RUNTIME_MONITORING take them")
    detector = feature.inputs.get("detectorId")
    siblings = [f for f in view.of_type(FEATURE) if f is not feature
                and f.inputs.get("detectorId") == detector]
    if any(f.inputs.get("name") == name for f in siblings):
        problems.append(f"two resources manage feature {name} of one detector: each update "
                        "overwrites the other")
    if name in RUNTIME_FEATURES and any(f.inputs.get("name") in RUNTIME_FEATURES - {name}
                                        for f in siblings):
        problems.append("EKS_RUNTIME_MONITORING and RUNTIME_MONITORING on one detector: "
                        "'adding both features will cause an error'")
    return problems


def _event_rule(rule: ResourceLike, view: RunView) -> list[str]:
    problems = []
    pattern = rule.inputs.get("eventPattern")
    if not pattern and not rule.inputs.get("scheduleExpression"):
        problems.append("neither event_pattern nor schedule_expression: one is required")
    if pattern:
        text = str(pattern)
        if len(text) > EVENT_PATTERN_MAX:
            problems.append(f"event_pattern is {len(text)} characters; the quota is "
                            f"{EVENT_PATTERN_MAX}")
        try:
            if not isinstance(json.loads(text), Mapping):
                problems.append("event_pattern is not a JSON object")
        except json.JSONDecodeError:
            problems.append("event_pattern is not valid JSON")
    state = rule.inputs.get("state")
    if state is not None and state not in RULE_STATES:
        problems.append(f"state {state!r} is not one of {', '.join(sorted(RULE_STATES))}")
    if state is not None and rule.inputs.get("isEnabled") is not None:
        problems.append("is_enabled and state conflict: set one")
    name = rule.inputs.get("name")
    if name is not None and not _RULE_NAME.fullmatch(str(name)):
        problems.append(f"rule name {name!r}: 1-64 letters, digits, '.', '-', '_'")
    return problems


def _topic_of(view: RunView, arn: Any) -> ResourceLike | None:
    return view.with_output(TOPIC, "arn", arn)


def _key_allows(view: RunView, key_ref: Any, service: str, action: str) -> bool | None:
    key = view.with_output(KEY, "arn", key_ref) or view.with_output(KEY, "keyId", key_ref)
    if key is None:
        return None
    return any(service in principals(s, "Service") and allows(s, action)
               for s in policy_statements(key.inputs.get("policy")))


def _sns_target(target: ResourceLike, view: RunView) -> list[str]:
    arn = target.inputs.get("arn")
    topic = _topic_of(view, arn)
    if topic is None:
        return []
    problems = []
    policies = [p for p in view.of_type(TOPIC_POLICY) if p.inputs.get("arn") == arn]
    published = any(
        "events.amazonaws.com" in principals(s, "Service") and allows(s, "sns:Publish")
        for p in policies for s in policy_statements(p.inputs.get("policy")))
    if not published:
        problems.append(f"EventBridge targets topic {arn} but no topic policy lets "
                        "events.amazonaws.com sns:Publish: every delivery fails")
    key = topic.inputs.get("kmsMasterKeyId")
    for action in ("kms:GenerateDataKey", "kms:Decrypt"):
        if key and _key_allows(view, key, "events.amazonaws.com", action) is False:
            problems.append(f"the topic is encrypted with {key}, whose policy does not allow "
                            f"events.amazonaws.com {action}: deliveries are dropped")
    return problems


def _metric_filter(metric_filter: ResourceLike, view: RunView) -> list[str]:
    problems = []
    pattern = str(metric_filter.inputs.get("pattern") or "")
    if len(pattern) > FILTER_PATTERN_MAX:
        problems.append(f"pattern is {len(pattern)} characters; PutMetricFilter accepts "
                        f"{FILTER_PATTERN_MAX}")
    name = str(metric_filter.inputs.get("name") or "")
    if not _FILTER_NAME.fullmatch(name):
        problems.append(f"filter name {name!r}: 1-512 characters, no ':' or '*'")
    transformation = first(metric_filter.inputs.get("metricTransformation"))
    if str(transformation.get("namespace", "")).startswith("AWS/"):
        problems.append("metric namespace starts with AWS/, which AWS reserves for its services")
    dimensions = transformation.get("dimensions") or {}
    if len(dimensions) > 3:
        problems.append(f"{len(dimensions)} dimensions: at most 3")
    if dimensions and transformation.get("defaultValue") is not None:
        problems.append("default_value conflicts with dimensions")
    group_name = metric_filter.inputs.get("logGroupName")
    group = view.with_output(LOG_GROUP, "name", group_name)
    if group is None:
        problems.append(f"log group {group_name} is not created by this program: PutMetricFilter "
                        "fails with ResourceNotFoundException")
    elif not view.depends_on(metric_filter, group):
        problems.append(f"the filter does not wait for log group {group_name} "
                        "(ResourceNotFoundException on a fresh deploy)")
    return problems


def _trail_to_logs(trail: ResourceLike, view: RunView) -> list[str]:
    group_arn = trail.inputs.get("cloudWatchLogsGroupArn")
    role_arn = trail.inputs.get("cloudWatchLogsRoleArn")
    if not group_arn and not role_arn:
        return []
    if not (group_arn and role_arn):
        return ["cloud_watch_logs_group_arn and cloud_watch_logs_role_arn go together: CloudTrail "
                "refuses one without the other"]
    problems = []
    if not str(group_arn).endswith(":*"):
        problems.append(f"cloud_watch_logs_group_arn {group_arn} lacks the ':*' log stream "
                        "wildcard CloudTrail requires")
    if arn_region(group_arn) not in (None, view.region_of(trail)):
        problems.append(f"the log group is in {arn_region(group_arn)}, the trail's home region "
                        f"is {view.region_of(trail)}: CloudTrail delivers to a group of its home "
                        "region only")
    role = view.with_output(ROLE, "arn", role_arn)
    if role is None:
        return problems
    trusted = any("cloudtrail.amazonaws.com" in principals(s, "Service")
                  and allows(s, "sts:AssumeRole")
                  for s in policy_statements(role.inputs.get("assumeRolePolicy")))
    if not trusted:
        problems.append(f"role {role_arn} does not trust cloudtrail.amazonaws.com")
    group = str(group_arn).removesuffix(":*")
    granting = [p for p in view.of_type(ROLE_POLICY)
                if p.inputs.get("role") in (role.resource_id, role.outputs.get("name"))]
    for action in ("logs:CreateLogStream", "logs:PutLogEvents"):
        if not any(allows(s, action) and any(str(r).startswith(group) or r == "*"
                                              for r in as_list(s.get("Resource")))
                   for p in granting for s in policy_statements(p.inputs.get("policy"))):
            problems.append(f"role {role_arn} may not {action} in {group}: CloudTrail refuses "
                            "the role (InvalidCloudWatchLogsRoleArnException)")
    if granting and not any(view.depends_on(trail, p) for p in granting):
        problems.append("the trail does not wait for its delivery role's policy: CloudTrail "
                        "checks the role's permissions when the trail is created or updated")
    return problems


def _parameters(group: ResourceLike) -> dict[str, Mapping[str, Any]]:
    return {str(p.get("name")): p for p in as_list(group.inputs.get("parameters"))
            if isinstance(p, Mapping)}


def _pgaudit_parameters(group: ResourceLike, view: RunView) -> list[str]:
    params = _parameters(group)
    problems = []
    preload = params.get(STATIC_PGAUDIT)
    if preload is not None and preload.get("applyMethod", "immediate") != "pending-reboot":
        problems.append(f"{STATIC_PGAUDIT} is static: RDS refuses apply_method 'immediate' "
                        "(InvalidParameterCombination); use 'pending-reboot'")
    audit = [n for n in params if n.startswith("pgaudit.")]
    libraries = [s.strip() for s in str((preload or {}).get("value", "")).split(",")]
    if audit and "pgaudit" not in libraries:
        problems.append(f"sets {', '.join(sorted(audit))} without pgaudit in "
                        f"{STATIC_PGAUDIT}: nothing is audited")
    role = params.get("pgaudit.role")
    if role is not None and role.get("value") != RDS_PGAUDIT_ROLE:
        problems.append(f"pgaudit.role is {role.get('value')!r}: on RDS the only allowable value "
                        f"is {RDS_PGAUDIT_ROLE}")
    return problems


RDS_PGAUDIT_DOC = ("https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/"
                   "Appendix.PostgreSQL.CommonDBATasks.pgaudit.html")
RULES = [
    Rule("guardduty-one-detector-per-region", "One GuardDuty detector per region, a publishing "
         "frequency GuardDuty offers, features instead of the deprecated datasources",
         "pulumi-aws aws.guardduty.Detector docstring (finding_publishing_frequency, "
         "datasources); https://docs.aws.amazon.com/guardduty/latest/APIReference/"
         "API_CreateDetector.html", (DETECTOR,), _one_detector_per_region),
    Rule("guardduty-detector-feature", "Detector features: known names and statuses, one "
         "resource per feature, runtime monitoring in one form only",
         "pulumi-aws aws.guardduty.DetectorFeature docstring (name, status, "
         "additional_configurations)", (FEATURE,), _feature),
    Rule("eventbridge-rule-shape", "EventBridge rules: a pattern or schedule, a pattern within "
         "the quota, a valid state and name",
         "pulumi-aws aws.cloudwatch.EventRule docstring (event_pattern, state, is_enabled); "
         "https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutRule.html",
         (EVENT_RULE,), _event_rule),
    Rule("eventbridge-sns-target-permissions", "An SNS target's topic policy admits "
         "EventBridge, and its KMS key does too",
         "https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-use-resource-based.html"
         "#eb-sns-permissions; https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html"
         "#compatibility-with-aws-services", (EVENT_TARGET,), _sns_target),
    Rule("logs-metric-filter", "Metric filters: a pattern within 1024 characters, a valid "
         "name and metric, on a log group created first",
         "https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/"
         "API_PutMetricFilter.html; pulumi-aws aws.cloudwatch.LogMetricFilter docstring",
         (METRIC_FILTER,), _metric_filter),
    Rule("cloudtrail-cloudwatch-logs-delivery", "A trail's CloudWatch Logs delivery: the group "
         "ARN with ':*' in its home region, a role CloudTrail may assume that may write there",
         "pulumi-aws aws.cloudtrail.Trail docstring (cloud_watch_logs_group_arn); "
         "https://docs.aws.amazon.com/awscloudtrail/latest/userguide/"
         "cloudtrail-required-policy-for-cloudwatch-logs.html", (TRAIL,), _trail_to_logs),
    Rule("rds-pgaudit-parameters", "pgAudit parameters need pgaudit preloaded (a static "
         "parameter, pending-reboot) and pgaudit.role rds_pgaudit",
         RDS_PGAUDIT_DOC + "; https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/"
         "API_ModifyDBParameterGroup.html", (PARAMETER_GROUP,), _pgaudit_parameters),
]

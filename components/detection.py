"""Breach detection of one site (issue 13): GuardDuty, CloudTrail signals, the security topic.

* **Security topic** ``caresync-<site>-security``: separate from the ops alerts (different people
  act on it; a breach page must not drown in replica-lag noise), encrypted with the site key,
  e-mail subscriptions from ``securityEmails``. Its policy lets EventBridge publish for this
  site's GuardDuty rule only and CloudWatch publish for this account's alarms only (SNS
  developer guide, "Amazon SNS access control" and "Enable compatibility between event sources
  from AWS services and encrypted topics": a service publishing to a KMS-encrypted topic also
  needs the key, components/kms_key.py).
* **GuardDuty**: the region's detector, enabled, with S3 Protection (``S3_DATA_EVENTS``) and RDS
  Protection (``RDS_LOGIN_EVENTS``) as ``DetectorFeature`` resources (the detector's
  ``datasources`` block is deprecated in favour of them: pulumi-aws docstrings). Deleting a
  detector disables GuardDuty in the region and removes every existing finding (pulumi-aws
  aws.guardduty.Detector docstring), evidence included, so it is ``protect``-ed like the site
  key. Deleting a DetectorFeature resource does not disable the feature; set its status to
  DISABLED instead. Findings at or above ``guardDutyMinSeverity`` go to the security topic by
  an EventBridge rule.
* **CloudTrail signals**: one metric filter and one alarm per signal of
  :data:`caresync_dr.detection.SIGNALS` (the CIS monitoring controls) on the trail's CloudWatch
  Logs group (components/audit.py), alarming to the security topic. Signals of global services
  (IAM) exist only where the trail records global service events (prod).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from caresync_dr.detection import (
    ALARM_PERIOD_SECONDS,
    GUARDDUTY_FEATURES,
    GUARDDUTY_PUBLISHING_FREQUENCY,
    METRIC_NAMESPACE,
    alarm_name,
    guardduty_finding_pattern,
    signals_for,
)
from caresync_dr.names import (
    findings_rule_name,
    security_metric_filter_name,
    security_topic_name,
)


def security_topic_policy(topic_arn: str, rule_arn: str, account_id: str,
                          region: str) -> str:
    """Who may publish to the security topic besides the account's own principals."""
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "GuardDutyFindingsFromThisRule", "Effect": "Allow",
         "Principal": {"Service": "events.amazonaws.com"}, "Action": "sns:Publish",
         "Resource": topic_arn, "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}}},
        {"Sid": "AlarmsOfThisAccount", "Effect": "Allow",
         "Principal": {"Service": "cloudwatch.amazonaws.com"}, "Action": "sns:Publish",
         "Resource": topic_arn,
         "Condition": {"ArnLike": {"aws:SourceArn":
                                   f"arn:aws:cloudwatch:{region}:{account_id}:alarm:*"},
                       "StringEquals": {"aws:SourceAccount": account_id}}},
    ]})


@dataclass(frozen=True)
class DetectionArgs:
    site: str
    region: str
    account_id: pulumi.Input[str]
    kms_key_arn: pulumi.Input[str]
    emails: Sequence[str]
    min_severity: float
    trail_log_group_name: pulumi.Input[str]
    global_events: bool  # the trail records global service events (prod)
    # Resources the filters must wait for (the trail's log group).
    depends_on: Sequence[pulumi.Resource] = ()


class Detection(pulumi.ComponentResource):
    topic: aws.sns.Topic
    detector: aws.guardduty.Detector
    findings_rule: aws.cloudwatch.EventRule
    alarms: list[aws.cloudwatch.MetricAlarm]

    def __init__(self, name: str, args: DetectionArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("caresync:dr:Detection", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = {"caresync:site": args.site}
        self.topic = aws.sns.Topic(f"{name}-security-topic", name=security_topic_name(args.site),
                                   kms_master_key_id=args.kms_key_arn, tags=tags, opts=child)
        for i, email in enumerate(args.emails):
            aws.sns.TopicSubscription(f"{name}-security-email-{i + 1}", topic=self.topic.arn,
                                      protocol="email", endpoint=email, opts=child)

        self.detector = aws.guardduty.Detector(
            f"{name}-guardduty", enable=True,
            finding_publishing_frequency=GUARDDUTY_PUBLISHING_FREQUENCY, tags=tags,
            opts=pulumi.ResourceOptions(parent=self, protect=True))
        for feature in GUARDDUTY_FEATURES:
            aws.guardduty.DetectorFeature(
                f"{name}-guardduty-{feature.lower().replace('_', '-')}",
                detector_id=self.detector.id, name=feature, status="ENABLED", opts=child)

        self.findings_rule = aws.cloudwatch.EventRule(
            f"{name}-findings-rule", name=findings_rule_name(args.site),
            description=f"GuardDuty findings of severity {args.min_severity:g} and above to "
                        "the security topic",
            event_pattern=guardduty_finding_pattern(args.min_severity), tags=tags, opts=child)
        account = pulumi.Output.from_input(args.account_id)
        topic_policy = aws.sns.TopicPolicy(
            f"{name}-security-topic-policy", arn=self.topic.arn,
            policy=pulumi.Output.all(self.topic.arn, self.findings_rule.arn, account).apply(
                lambda v: security_topic_policy(v[0], v[1], v[2], args.region)), opts=child)
        aws.cloudwatch.EventTarget(
            f"{name}-findings-to-topic", rule=self.findings_rule.name, arn=self.topic.arn,
            target_id="security-topic",
            # EventBridge can publish only once the topic policy admits it.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[topic_policy]))

        self.alarms = []
        for signal in signals_for(args.global_events):
            metric_filter = aws.cloudwatch.LogMetricFilter(
                f"{name}-{signal.key}-filter",
                name=security_metric_filter_name(args.site, signal.key),
                log_group_name=args.trail_log_group_name, pattern=signal.pattern,
                metric_transformation=aws.cloudwatch.LogMetricFilterMetricTransformationArgs(
                    name=signal.metric_name, namespace=METRIC_NAMESPACE, value="1"),
                opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on)))
            self.alarms.append(aws.cloudwatch.MetricAlarm(
                f"{name}-{signal.key}-alarm", name=alarm_name(args.site, signal),
                alarm_description=f"{signal.title}: {signal.threshold} or more in "
                                  f"{ALARM_PERIOD_SECONDS // 60} minutes "
                                  "(docs/detection.md; runbook docs/runbooks/data-breach.md)",
                namespace=METRIC_NAMESPACE, metric_name=signal.metric_name, statistic="Sum",
                period=ALARM_PERIOD_SECONDS, evaluation_periods=1, datapoints_to_alarm=1,
                threshold=signal.threshold, comparison_operator="GreaterThanOrEqualToThreshold",
                treat_missing_data="notBreaching", alarm_actions=[self.topic.arn],
                opts=pulumi.ResourceOptions(parent=self,
                                            depends_on=[metric_filter, topic_policy])))
        outputs: dict[str, Any] = {"topicArn": self.topic.arn, "detectorId": self.detector.id}
        self.register_outputs(outputs)

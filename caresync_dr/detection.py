"""What each site watches for a breach in progress, as data (issue 13, detection).

Shared by the stack (``components/detection.py`` builds the filters, alarms and the GuardDuty
routing from it), the guardrails (``policy/detection_rules.py`` require every signal), the docs
(``docs/detection.md`` shows :func:`signals_table`; a test keeps it in sync) and ``breach.py``
(which notifies the security topic named here).

The metric filters are AWS's documented patterns, verbatim: the CIS AWS Foundations Benchmark
monitoring controls as AWS Security Hub checks them ("Security Hub controls for Amazon
CloudWatch", [CloudWatch.1] to [CloudWatch.14]; Security Hub fails the control if "additional
fields or terms" are added, so none are). One signal is ours, not CIS's: changes to S3 Block
Public Access (CloudWatch.8 covers bucket policies, ACLs, CORS, lifecycle and replication, not
the public-access block that keeps a policy from opening a bucket).

Thresholds: every signal alarms on one matching event in five minutes (CIS: ``Sum >= 1``),
except unauthorized API calls, which alarm on five: single AccessDenied answers are routine
(an operator without a permission, a console page probing what it may show), a burst is what a
stolen credential exploring the account looks like. Missing data is not breaching: the metric
exists only while events match.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from caresync_dr.names import security_alarm_name, security_topic_name, trail_log_group_name

SECURITY_HUB_CLOUDWATCH = ("https://docs.aws.amazon.com/securityhub/latest/userguide/"
                           "cloudwatch-controls.html")
METRIC_NAMESPACE = "CareSync/Security"
ALARM_PERIOD_SECONDS = 300
# GuardDuty severities: Low 1.0-3.9, Medium 4.0-6.9, High 7.0-8.9, Critical 9.0-10.0 (GuardDuty
# user guide, "Severity levels of GuardDuty findings").
GUARDDUTY_SEVERITY_RANGE = (1.0, 10.0)
DEFAULT_GUARDDUTY_MIN_SEVERITY = 4.0
# The protection plans issue 13 asks for (pulumi-aws aws.guardduty.DetectorFeature docstring,
# name; GuardDuty API DetectorFeatureConfiguration): S3 Protection watches the CloudTrail S3 data
# events of every bucket, RDS Protection the login activity of RDS databases.
GUARDDUTY_FEATURES = ("S3_DATA_EVENTS", "RDS_LOGIN_EVENTS")
# How soon GuardDuty re-publishes an updated finding (the first occurrence is published within
# about five minutes whatever this says); FIFTEEN_MINUTES is the shortest it offers.
GUARDDUTY_PUBLISHING_FREQUENCY = "FIFTEEN_MINUTES"


@dataclass(frozen=True)
class Signal:
    """One CloudTrail metric filter and its alarm.

    ``global_events``: the events are recorded only by a trail that includes global service
    events (IAM is a global service; CloudTrail delivers its events to the trail's home region
    only with ``IncludeGlobalServiceEvents``). The dr trail records its own region only
    (components/audit.py), so these signals exist on the prod site alone.
    """

    key: str            # metric name suffix and alarm key
    title: str
    pattern: str        # CloudWatch Logs filter pattern, verbatim from its source
    source: str         # where the pattern comes from
    threshold: int = 1  # events in ALARM_PERIOD_SECONDS that raise the alarm
    global_events: bool = False

    @property
    def metric_name(self) -> str:
        return "".join(part.capitalize() for part in self.key.split("-"))


def _cis(control: int) -> str:
    return f"Security Hub [CloudWatch.{control}] ({SECURITY_HUB_CLOUDWATCH})"


SIGNALS: tuple[Signal, ...] = (
    Signal("root-use", "root user used",
           '{$.userIdentity.type="Root" && $.userIdentity.invokedBy NOT EXISTS && '
           '$.eventType !="AwsServiceEvent"}', _cis(1)),
    Signal("unauthorized-api-calls", "unauthorized API calls (a burst)",
           '{($.errorCode="*UnauthorizedOperation") || ($.errorCode="AccessDenied*")}',
           _cis(2), threshold=5),
    Signal("console-sign-in-without-mfa", "console sign-in without MFA",
           '{ ($.eventName = "ConsoleLogin") && ($.additionalEventData.MFAUsed != "Yes") && '
           '($.userIdentity.type = "IAMUser") && ($.responseElements.ConsoleLogin = "Success") }',
           _cis(3)),
    Signal("iam-policy-changes", "IAM policy changes",
           "{($.eventName=DeleteGroupPolicy) || ($.eventName=DeleteRolePolicy) || "
           "($.eventName=DeleteUserPolicy) || ($.eventName=PutGroupPolicy) || "
           "($.eventName=PutRolePolicy) || ($.eventName=PutUserPolicy) || "
           "($.eventName=CreatePolicy) || ($.eventName=DeletePolicy) || "
           "($.eventName=CreatePolicyVersion) || ($.eventName=DeletePolicyVersion) || "
           "($.eventName=AttachRolePolicy) || ($.eventName=DetachRolePolicy) || "
           "($.eventName=AttachUserPolicy) || ($.eventName=DetachUserPolicy) || "
           "($.eventName=AttachGroupPolicy) || ($.eventName=DetachGroupPolicy)}",
           _cis(4), global_events=True),
    Signal("trail-changes", "CloudTrail configuration changes",
           "{($.eventName=CreateTrail) || ($.eventName=UpdateTrail) || ($.eventName=DeleteTrail) "
           "|| ($.eventName=StartLogging) || ($.eventName=StopLogging)}", _cis(5)),
    Signal("console-authentication-failures", "console authentication failures",
           '{($.eventName=ConsoleLogin) && ($.errorMessage="Failed authentication")}', _cis(6)),
    Signal("kms-key-disabled-or-deleted", "KMS key disabled or scheduled for deletion",
           "{($.eventSource=kms.amazonaws.com) && (($.eventName=DisableKey) || "
           "($.eventName=ScheduleKeyDeletion))}", _cis(7)),
    Signal("bucket-policy-changes", "S3 bucket policy, ACL, CORS, lifecycle or replication "
           "changes",
           "{($.eventSource=s3.amazonaws.com) && (($.eventName=PutBucketAcl) || "
           "($.eventName=PutBucketPolicy) || ($.eventName=PutBucketCors) || "
           "($.eventName=PutBucketLifecycle) || ($.eventName=PutBucketReplication) || "
           "($.eventName=DeleteBucketPolicy) || ($.eventName=DeleteBucketCors) || "
           "($.eventName=DeleteBucketLifecycle) || ($.eventName=DeleteBucketReplication))}",
           _cis(8)),
    Signal("bucket-public-access-changes", "S3 Block Public Access changed (bucket or account)",
           "{($.eventSource=s3.amazonaws.com) && (($.eventName=PutBucketPublicAccessBlock) || "
           "($.eventName=DeleteBucketPublicAccessBlock) || "
           "($.eventName=PutAccountPublicAccessBlock) || "
           "($.eventName=DeleteAccountPublicAccessBlock))}",
           "ours, in the form of [CloudWatch.8]: the CloudTrail event names of S3's "
           "PutPublicAccessBlock/DeletePublicAccessBlock for a bucket and for the account "
           "(S3 API reference; IAM actions s3:PutBucketPublicAccessBlock, "
           "s3:PutAccountPublicAccessBlock)"),
    Signal("aws-config-changes", "AWS Config recording changes",
           "{($.eventSource=config.amazonaws.com) && (($.eventName=StopConfigurationRecorder) || "
           "($.eventName=DeleteDeliveryChannel) || ($.eventName=PutDeliveryChannel) || "
           "($.eventName=PutConfigurationRecorder))}", _cis(9)),
    Signal("security-group-changes", "security group changes",
           "{($.eventName=AuthorizeSecurityGroupIngress) || "
           "($.eventName=AuthorizeSecurityGroupEgress) || "
           "($.eventName=RevokeSecurityGroupIngress) || ($.eventName=RevokeSecurityGroupEgress) "
           "|| ($.eventName=CreateSecurityGroup) || ($.eventName=DeleteSecurityGroup)}",
           _cis(10)),
    Signal("network-acl-changes", "network ACL changes",
           "{($.eventName=CreateNetworkAcl) || ($.eventName=CreateNetworkAclEntry) || "
           "($.eventName=DeleteNetworkAcl) || ($.eventName=DeleteNetworkAclEntry) || "
           "($.eventName=ReplaceNetworkAclEntry) || ($.eventName=ReplaceNetworkAclAssociation)}",
           _cis(11)),
    Signal("network-gateway-changes", "network gateway changes",
           "{($.eventName=CreateCustomerGateway) || ($.eventName=DeleteCustomerGateway) || "
           "($.eventName=AttachInternetGateway) || ($.eventName=CreateInternetGateway) || "
           "($.eventName=DeleteInternetGateway) || ($.eventName=DetachInternetGateway)}",
           _cis(12)),
    Signal("route-table-changes", "route table changes",
           "{($.eventName=CreateRoute) || ($.eventName=CreateRouteTable) || "
           "($.eventName=ReplaceRoute) || ($.eventName=ReplaceRouteTableAssociation) || "
           "($.eventName=DeleteRouteTable) || ($.eventName=DeleteRoute) || "
           "($.eventName=DisassociateRouteTable)}", _cis(13)),
    Signal("vpc-changes", "VPC changes",
           "{($.eventName=CreateVpc) || ($.eventName=DeleteVpc) || "
           "($.eventName=ModifyVpcAttribute) || ($.eventName=AcceptVpcPeeringConnection) || "
           "($.eventName=CreateVpcPeeringConnection) || ($.eventName=DeleteVpcPeeringConnection) "
           "|| ($.eventName=RejectVpcPeeringConnection) || ($.eventName=AttachClassicLinkVpc) || "
           "($.eventName=DetachClassicLinkVpc) || ($.eventName=DisableVpcClassicLink) || "
           "($.eventName=EnableVpcClassicLink)}", _cis(14)),
)


def signals_for(global_events: bool) -> tuple[Signal, ...]:
    """The signals a site's trail can see: all of them only with global service events."""
    return tuple(s for s in SIGNALS if global_events or not s.global_events)


__all__ = ["SIGNALS", "Signal", "alarm_name", "guardduty_finding_pattern", "security_topic_name",
           "signals_for", "signals_table", "trail_log_group_name"]


def alarm_name(site: str, signal: Signal) -> str:
    return security_alarm_name(site, signal.key)


def guardduty_finding_pattern(min_severity: float) -> str:
    """EventBridge pattern for GuardDuty findings at or above ``min_severity`` (GuardDuty user
    guide, "Creating custom responses to GuardDuty findings with Amazon EventBridge": source
    ``aws.guardduty``, detail-type ``GuardDuty Finding``, numeric matching on
    ``detail.severity``; EventBridge user guide, "Numeric matching")."""
    return json.dumps({"source": ["aws.guardduty"], "detail-type": ["GuardDuty Finding"],
                       "detail": {"severity": [{"numeric": [">=", min_severity]}]}},
                      sort_keys=True)


def signals_table() -> str:
    """The Markdown table of docs/detection.md (generated; a test keeps the file in sync)."""
    lines = ["| signal | alarm at (events / 5 min) | sites | filter pattern | source |",
             "|---|---|---|---|---|"]
    for s in SIGNALS:
        sites = "prod only (global events)" if s.global_events else "prod and dr"
        pattern = s.pattern.replace("|", "\\|")
        lines.append(f"| `{s.key}`: {s.title} | >= {s.threshold} | {sites} | `{pattern}` | "
                     f"{s.source} |")
    return "\n".join(lines) + "\n"

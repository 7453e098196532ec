"""Route 53 rules: health-check limits, calculated checks, failover record pairs, metrics."""

from __future__ import annotations

from collections import defaultdict

from caresync_dr.emulation.aws_rules.core import (
    ResourceLike,
    Rule,
    RunView,
    as_list,
    first,
    number,
)

HEALTH_CHECK = "aws:route53/healthCheck:HealthCheck"
RECORD = "aws:route53/record:Record"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
API = "https://docs.aws.amazon.com/Route53/latest/APIReference/API_HealthCheckConfig.html"
CHECKER_REGIONS = frozenset({"us-east-1", "us-west-1", "us-west-2", "eu-west-1",
                             "ap-southeast-1", "ap-southeast-2", "ap-northeast-1", "sa-east-1"})
ENDPOINT_TYPES = frozenset({"HTTP", "HTTPS", "HTTP_STR_MATCH", "HTTPS_STR_MATCH", "TCP"})


def endpoint_check_limits(check: ResourceLike, view: RunView) -> list[str]:
    kind = check.inputs.get("type")
    problems = []
    if kind in ENDPOINT_TYPES:
        interval = number(check.inputs.get("requestInterval"))
        if interval is not None and interval not in (10, 30):
            problems.append(f"request_interval {interval:g}: Route 53 allows 10 or 30 seconds")
        threshold = number(check.inputs.get("failureThreshold"))
        if threshold is not None and not 1 <= threshold <= 10:
            problems.append(f"failure_threshold {threshold:g} is outside 1-10")
        regions = as_list(check.inputs.get("regions"))
        if regions and (len(set(regions)) < 3 or not set(regions) <= CHECKER_REGIONS):
            problems.append(f"regions {regions}: at least three of {sorted(CHECKER_REGIONS)}")
    search = check.inputs.get("searchString")
    if search is not None and (kind not in ("HTTP_STR_MATCH", "HTTPS_STR_MATCH")
                               or len(str(search)) > 255):
        problems.append("search_string needs an *_STR_MATCH check and at most 255 characters")
    return problems


def calculated_check(check: ResourceLike, view: RunView) -> list[str]:
    if check.inputs.get("type") != "CALCULATED":
        return []
    children = as_list(check.inputs.get("childHealthchecks"))
    threshold = number(check.inputs.get("childHealthThreshold")) or 0
    problems = []
    if not 1 <= len(children) <= 256:
        problems.append("a CALCULATED check needs 1-256 child health checks")
    if threshold > len(children):
        problems.append(f"child_health_threshold {threshold:g} exceeds the {len(children)} "
                        "children: the check could never be healthy")
    for field in ("fqdn", "port", "requestInterval", "resourcePath", "regions"):
        if check.inputs.get(field) is not None:
            problems.append(f"{field} does not apply to a CALCULATED check")
    return problems


def failover_pairs(record: ResourceLike, view: RunView) -> list[str]:
    policy = first(record.inputs.get("failoverRoutingPolicies"))
    if not policy:
        return []
    problems = []
    if not record.inputs.get("setIdentifier"):
        problems.append("a failover record needs set_identifier")
    if record.inputs.get("aliases") and (record.inputs.get("ttl") is not None
                                         or record.inputs.get("records")):
        problems.append("an alias record cannot set ttl or records")
    peers: dict[str, list[ResourceLike]] = defaultdict(list)
    for other in view.of_type(RECORD):
        same = all(other.inputs.get(k) == record.inputs.get(k) for k in ("zoneId", "name", "type"))
        if same and first(other.inputs.get("failoverRoutingPolicies")):
            peers[str(first(other.inputs["failoverRoutingPolicies"]).get("type"))].append(other)
    if sorted(peers) != ["PRIMARY", "SECONDARY"] or any(len(v) != 1 for v in peers.values()):
        found = {kind: len(records) for kind, records in peers.items()}
        problems.append(f"failover records for {record.inputs.get('name')} must be exactly one "
                        f"PRIMARY and one SECONDARY, found {found}")
    ids = [r.inputs.get("setIdentifier") for group in peers.values() for r in group]
    if len(ids) != len(set(ids)):
        problems.append("the failover records share a set_identifier")
    return problems


def health_metrics_in_us_east_1(alarm: ResourceLike, view: RunView) -> list[str]:
    if alarm.inputs.get("namespace") != "AWS/Route53":
        return []
    if view.region_of(alarm) != "us-east-1":
        return [f"Route 53 publishes health-check metrics in us-east-1 only; this alarm is in "
                f"{view.region_of(alarm)} and would never see data"]
    return []


RULES = [
    Rule("route53-health-check-limits", "Endpoint checks: interval 10 or 30 s, failure "
         "threshold 1-10, at least three checker regions; string search only on *_STR_MATCH",
         API + "; pulumi-aws aws.route53.HealthCheck docstring", (HEALTH_CHECK,),
         endpoint_check_limits),
    Rule("route53-calculated-check", "A CALCULATED check has 1-256 children, a reachable "
         "threshold and no endpoint settings", API, (HEALTH_CHECK,), calculated_check),
    Rule("route53-failover-record-pair", "Failover records: one PRIMARY and one SECONDARY per "
         "name, distinct set identifiers, aliases without ttl",
         "https://docs.aws.amazon.com/Route53/latest/DeveloperGuide/routing-policy-failover.html"
         "; pulumi-aws aws.route53.Record docstring", (RECORD,), failover_pairs),
    Rule("route53-metrics-in-us-east-1", "Alarms on Route 53 health-check metrics live in "
         "us-east-1", "https://docs.aws.amazon.com/Route53/latest/DeveloperGuide/"
         "monitoring-health-checks.html", (ALARM,), health_metrics_in_us_east_1),
]

"""Traffic guardrails: failover records are health-checked within the detection budget, and only
the load balancer is open to the internet, on 80 and 443."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pulumi_policy import (
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    StackValidationArgs,
)

from policy.context import (
    LOAD_BALANCER,
    ROUTE53_HEALTH_CHECK,
    ROUTE53_RECORD,
    SECURITY_GROUP,
    SG_INGRESS_RULE,
    SG_RULE,
    check_each,
    identities,
    items,
    of_type,
    prop,
    refers_to,
    resource_policy,
    stack_policy,
    truthy,
    with_settings,
)

WORLD = ("0.0.0.0/0", "::/0")
WEB_PORTS = (80, 443)
# Route 53's defaults when a health check leaves them out.
DEFAULT_INTERVAL, DEFAULT_THRESHOLD = 30, 3
ENDPOINT_CHECK_TYPES = ("HTTP", "HTTPS", "HTTP_STR_MATCH", "HTTPS_STR_MATCH", "TCP")


# --- Route 53 ---------------------------------------------------------------------------------

def failover_record_problems(props: Mapping[str, Any]) -> list[str]:
    policies = items(prop(props, "failoverRoutingPolicies"))
    if not policies:
        return []
    role = str(prop(policies[0], "type"))
    if prop(props, "healthCheckId"):
        return []
    if role == "PRIMARY":
        return ["the PRIMARY failover record has no health_check_id: attach the health check "
                "that combines the site's health and the traffic switch (without it Route 53 "
                "never fails over)"]
    if any(truthy(prop(alias, "evaluateTargetHealth")) for alias in items(prop(props, "aliases"))):
        return []
    return [f"the {role} failover record is not health-checked: set health_check_id, or "
            "evaluate_target_health=True on its alias"]


def detection_seconds(props: Mapping[str, Any]) -> int | None:
    """Seconds for an endpoint health check to declare failure; None for other check types."""
    if str(prop(props, "type")) not in ENDPOINT_CHECK_TYPES:
        return None
    interval = prop(props, "requestInterval")
    threshold = prop(props, "failureThreshold")
    return (int(interval) if interval is not None else DEFAULT_INTERVAL) * (
        int(threshold) if threshold is not None else DEFAULT_THRESHOLD)


route53_failover_health_checked = resource_policy(
    "route53-failover-health-checked", "Every Route 53 failover record is health-checked.",
    ROUTE53_RECORD, lambda args, _: failover_record_problems(args.props))


def _health_check_timing(args: ResourceValidationArgs, report: ReportViolation) -> list[str]:
    seconds = detection_seconds(args.props)
    if seconds is None:
        return []
    settings = with_settings(args.urn, report)
    if settings is None:
        return []
    budget = settings.health_check_interval_seconds * settings.health_check_failure_threshold
    if seconds <= budget:
        return []
    return [f"detects a failure after {seconds} s but the RTO budget allows {budget} s: set "
            f"request_interval={settings.health_check_interval_seconds} and "
            f"failure_threshold={settings.health_check_failure_threshold} "
            "(healthCheckIntervalSeconds / healthCheckFailureThreshold)"]


route53_health_check_timing = resource_policy(
    "route53-health-check-timing",
    "Endpoint health checks detect failure within the RTO budget's detection time.",
    ROUTE53_HEALTH_CHECK, _health_check_timing)


# --- security groups --------------------------------------------------------------------------

def _world_open(cidrs: list[Any]) -> bool:
    return any(str(c) in WORLD for c in cidrs)


def _is_web_port(protocol: Any, from_port: Any, to_port: Any) -> bool:
    if str(protocol).lower() not in ("tcp", "6"):
        return False
    return from_port is not None and from_port == to_port and int(from_port) in WEB_PORTS


def world_ingress(resource_type: str, props: Mapping[str, Any]) -> list[tuple[bool, str]]:
    """Every world-open ingress of a resource: (is tcp 80/443 exactly, description)."""
    found: list[tuple[bool, str]] = []

    def add(protocol: Any, from_port: Any, to_port: Any) -> None:
        found.append((_is_web_port(protocol, from_port, to_port),
                      f"{protocol} {from_port}-{to_port} from the internet"))

    if resource_type in SECURITY_GROUP:
        for rule in items(prop(props, "ingress")):
            cidrs = items(prop(rule, "cidrBlocks")) + items(prop(rule, "ipv6CidrBlocks"))
            if _world_open(cidrs):
                add(prop(rule, "protocol"), prop(rule, "fromPort"), prop(rule, "toPort"))
    elif resource_type in SG_INGRESS_RULE:
        if _world_open([prop(props, "cidrIpv4"), prop(props, "cidrIpv6")]):
            add(prop(props, "ipProtocol"), prop(props, "fromPort"), prop(props, "toPort"))
    elif resource_type in SG_RULE and prop(props, "type") == "ingress":
        cidrs = items(prop(props, "cidrBlocks")) + items(prop(props, "ipv6CidrBlocks"))
        if _world_open(cidrs):
            add(prop(props, "protocol"), prop(props, "fromPort"), prop(props, "toPort"))
    return found


def _ingress_problems(args: ResourceValidationArgs, _: ReportViolation) -> list[str]:
    return [f"allows {what}: only the load balancer may be open to 0.0.0.0/0 or ::/0, on tcp "
            "443 or 80; restrict the source to a security group or a private CIDR"
            for web, what in world_ingress(args.resource_type, args.props) if not web]


sg_no_world_ingress = resource_policy(
    "sg-no-world-ingress",
    "No security group is open to 0.0.0.0/0 or ::/0 except on tcp 443/80.",
    SECURITY_GROUP + SG_INGRESS_RULE + SG_RULE, _ingress_problems)


def _validate_world_only_on_lb(args: StackValidationArgs, report: ReportViolation) -> None:
    groups = of_type(args.resources, SECURITY_GROUP)
    balancers = of_type(args.resources, LOAD_BALANCER)

    def on_a_balancer(group: PolicyResource) -> bool:
        return any(refers_to(lb, "securityGroups", group, ()) or _lists_group(lb, group)
                   for lb in balancers)

    def one(resource: PolicyResource) -> None:
        if not world_ingress(resource.resource_type, resource.props):
            return
        if resource.resource_type in SECURITY_GROUP:
            owners = [resource]
        else:
            owners = [g for g in groups if refers_to(resource, "securityGroupId", g, ())]
        if not owners or not any(on_a_balancer(g) for g in owners):
            report(f"{resource.name} opens the internet to a security group that no load "
                   "balancer uses: only the load balancer's group may accept 0.0.0.0/0",
                   resource.urn)
    check_each(args.resources, one)


def _lists_group(balancer: PolicyResource, group: PolicyResource) -> bool:
    listed = {str(v) for v in items(prop(balancer.props, "securityGroups"))}
    return bool(listed & identities(group))


sg_world_only_on_load_balancer = stack_policy(
    "sg-world-ingress-only-on-load-balancer",
    "Internet-facing ingress (443/80) is only on security groups of a load balancer.",
    _validate_world_only_on_lb)

POLICIES = [route53_failover_health_checked, route53_health_check_timing, sg_no_world_ingress,
            sg_world_only_on_load_balancer]

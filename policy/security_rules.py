"""Guardrails from the Checkov scan (docs/checkov.md): what was fixed stays fixed.

* every internet-facing load balancer is behind a web ACL enforcing AWS's managed rule groups;
* RDS Enhanced Monitoring is on, at an interval RDS accepts, with its role;
* the default security group of every VPC is adopted and has no rule;
* every SSM parameter of the stacks is a SecureString under a customer-managed key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pulumi_policy import PolicyResource, ReportViolation, StackValidationArgs

from policy.context import (
    DEFAULT_SECURITY_GROUP,
    LOAD_BALANCER,
    RDS_INSTANCE,
    SSM_PARAMETER,
    VPC,
    WAF_ASSOCIATION,
    WAF_WEB_ACL,
    check_each,
    items,
    of_type,
    prop,
    refers_to,
    resource_policy,
    stack_policy,
    truthy,
)

# The groups a public load balancer's web ACL must enforce: the OWASP baseline and the known
# exploit patterns (Log4j and alike). components/waf.py adds more.
REQUIRED_RULE_GROUPS = ("AWSManagedRulesCommonRuleSet", "AWSManagedRulesKnownBadInputsRuleSet")
# RDS API reference, ModifyDBInstance, MonitoringInterval (0 = off).
MONITORING_INTERVALS = (1, 5, 10, 15, 30, 60)
AWS_MANAGED_SSM_KEY = "alias/aws/ssm"


# --- RDS Enhanced Monitoring ------------------------------------------------------------------

def monitoring_problems(props: Mapping[str, Any]) -> list[str]:
    interval = prop(props, "monitoringInterval")
    role = prop(props, "monitoringRoleArn")
    seconds = int(interval) if interval is not None else 0
    if seconds == 0:
        return ["Enhanced Monitoring is off: set monitoring_interval=60 and monitoring_role_arn "
                "(components/rds_monitoring.py)"]
    if seconds not in MONITORING_INTERVALS:
        return [f"monitoring_interval is {seconds}: RDS accepts 0, 1, 5, 10, 15, 30 or 60 "
                "(RDS API reference, ModifyDBInstance)"]
    if not role:
        return ["monitoring_interval without monitoring_role_arn: RDS refuses it (RDS API "
                "reference, ModifyDBInstance); use the role of components/rds_monitoring.py"]
    return []


rds_enhanced_monitoring = resource_policy(
    "rds-enhanced-monitoring",
    "RDS instances publish Enhanced Monitoring at an interval RDS accepts, with its role.",
    RDS_INSTANCE, lambda args, _: monitoring_problems(args.props))


# --- SSM parameters ---------------------------------------------------------------------------

def parameter_problems(props: Mapping[str, Any]) -> list[str]:
    kind = prop(props, "type")
    if kind != "SecureString":
        return [f"type is {kind!r}: infrastructure details are SecureStrings, set "
                "type='SecureString' and key_id to the site key's alias "
                "(caresync_dr/site_keys.py), and let its readers kms:Decrypt"]
    key = prop(props, "keyId")
    if not key or str(key) == AWS_MANAGED_SSM_KEY:
        return ["a SecureString on the AWS-managed aws/ssm key: set key_id to the site key's "
                "alias, so the key policy and IAM decide who decrypts it"]
    return []


ssm_parameters_encrypted = resource_policy(
    "ssm-parameters-encrypted",
    "SSM parameters are SecureStrings under a customer-managed key.",
    SSM_PARAMETER, lambda args, _: parameter_problems(args.props))


# --- WAF on public load balancers -------------------------------------------------------------

def enforced_rule_groups(web_acl: Mapping[str, Any]) -> set[str]:
    """AWS managed rule groups the web ACL enforces (``override_action: none``)."""
    groups: set[str] = set()
    for rule in items(prop(web_acl, "rules")):
        statement = prop(rule, "statement", "managedRuleGroupStatement")
        if statement is None or prop(statement, "vendorName") != "AWS":
            continue
        if prop(rule, "overrideAction", "none") is not None:
            groups.add(str(prop(statement, "name")))
    return groups


def _internet_facing(balancer: PolicyResource) -> bool:
    kind = prop(balancer.props, "loadBalancerType")
    return not truthy(prop(balancer.props, "internal")) and kind in (None, "application")


def _validate_waf(args: StackValidationArgs, report: ReportViolation) -> None:
    associations = of_type(args.resources, WAF_ASSOCIATION)
    acls = of_type(args.resources, WAF_WEB_ACL)

    def one(balancer: PolicyResource) -> None:
        if not _internet_facing(balancer):
            return
        attached = [a for a in associations
                    if refers_to(a, "resourceArn", balancer, ("arn",))]
        used = [acl for acl in acls
                if any(refers_to(a, "webAclArn", acl, ("arn",)) for a in attached)]
        if not used:
            report(f"{balancer.name} is internet-facing without a web ACL: add an "
                   "aws.wafv2.WebAclAssociation to a web ACL of this stack (components/waf.py)",
                   balancer.urn)
            return
        enforced = set().union(*(enforced_rule_groups(acl.props) for acl in used))
        missing = [g for g in REQUIRED_RULE_GROUPS if g not in enforced]
        if missing:
            report(f"{balancer.name}'s web ACL does not enforce {', '.join(missing)}: add the "
                   "AWS managed rule group(s) with override_action none", balancer.urn)
    check_each(of_type(args.resources, LOAD_BALANCER), one)


waf_on_public_load_balancers = stack_policy(
    "waf-on-public-load-balancers",
    "Internet-facing load balancers are behind a web ACL enforcing AWS managed rule groups.",
    _validate_waf)


# --- default security groups ------------------------------------------------------------------

def _validate_default_groups(args: StackValidationArgs, report: ReportViolation) -> None:
    defaults = of_type(args.resources, DEFAULT_SECURITY_GROUP)

    def one(vpc: PolicyResource) -> None:
        mine = [d for d in defaults if refers_to(d, "vpcId", vpc, ())]
        if not mine:
            report(f"VPC {vpc.name}'s default security group keeps AWS's rules (all traffic "
                   "within the group, all egress): add aws.ec2.DefaultSecurityGroup(vpc_id=..., "
                   "ingress=[], egress=[])", vpc.urn)
        for group in mine:
            rules = items(prop(group.props, "ingress")) + items(prop(group.props, "egress"))
            if rules:
                report(f"{group.name}: the default security group of {vpc.name} has "
                       f"{len(rules)} rule(s): set ingress=[] and egress=[] (give what needs "
                       "access a group of its own)", group.urn)
    check_each(of_type(args.resources, VPC), one)


vpc_default_security_group_closed = stack_policy(
    "vpc-default-security-group-closed",
    "The default security group of every VPC is managed and has no rules.",
    _validate_default_groups)

POLICIES = [rds_enhanced_monitoring, ssm_parameters_encrypted, waf_on_public_load_balancers,
            vpc_default_security_group_closed]

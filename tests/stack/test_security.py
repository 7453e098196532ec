"""What the Checkov scan made the stacks fix (docs/checkov.md), in every bootstrap state."""

from __future__ import annotations

import base64
import json

from caresync_dr.offline.runtime import ProgramRun, of_type
from components.rds_monitoring import MANAGED_POLICY
from components.waf import MANAGED_RULE_GROUPS, REDACTED_HEADERS
from tests.stack.checks import check, listify, one, policy

SITES = {"prod": "primary", "dr": "standby"}


def site_of(run: ProgramRun) -> str:
    return SITES[run.stack]


def test_the_public_load_balancer_is_behind_aws_managed_rule_groups(any_stack: ProgramRun) -> None:
    site = site_of(any_stack)
    alb = one(any_stack, "aws:lb/loadBalancer:LoadBalancer", f"{site}-app-alb")
    acl = one(any_stack, "aws:wafv2/webAcl:WebAcl", f"{site}-waf-acl")
    association = one(any_stack, "aws:wafv2/webAclAssociation:WebAclAssociation",
                      f"{site}-waf-alb")
    check(association, association.inputs["resourceArn"] == alb.outputs["arn"]
          and association.inputs["webAclArn"] == acl.outputs["arn"], "not the site's ALB/ACL")
    check(acl, acl.inputs["scope"] == "REGIONAL" and "allow" in acl.inputs["defaultAction"],
          "a regional ACL that allows what no rule blocks")
    enforced = [r["statement"]["managedRuleGroupStatement"]["name"] for r in acl.inputs["rules"]
                if "none" in r["overrideAction"]]
    check(acl, enforced == list(MANAGED_RULE_GROUPS), f"enforces {enforced}")
    logging = one(any_stack, "aws:wafv2/webAclLoggingConfiguration:WebAclLoggingConfiguration",
                  f"{site}-waf-logging")
    [destination] = logging.inputs["logDestinationConfigs"]
    check(logging, destination.startswith("arn:aws:s3:::aws-waf-logs-caresync-"),
          f"WAF delivers only to aws-waf-logs-* buckets, not {destination}")
    redacted = {f["singleHeader"]["name"] for f in logging.inputs["redactedFields"]}
    check(logging, redacted == set(REDACTED_HEADERS), f"redacts {redacted}")


def test_every_database_has_enhanced_monitoring(any_stack: ProgramRun) -> None:
    role = one(any_stack, "aws:iam/role:Role", f"{site_of(any_stack)}-rds-monitoring-role")
    trust = policy(role, "assumeRolePolicy")["Statement"][0]
    check(role, trust["Principal"] == {"Service": "monitoring.rds.amazonaws.com"}
          and "aws:SourceAccount" in trust["Condition"]["StringEquals"], "trust")
    attachments = of_type(any_stack.resources,
                          "aws:iam/rolePolicyAttachment:RolePolicyAttachment")
    assert any(a.inputs["role"] == role.outputs["name"]
               and a.inputs["policyArn"] == MANAGED_POLICY for a in attachments)
    for database in of_type(any_stack.resources, "aws:rds/instance:Instance"):
        check(database, database.inputs.get("monitoringInterval") == 60
              and database.inputs.get("monitoringRoleArn") == role.outputs["arn"],
              "Enhanced Monitoring off or without the site's role")


def test_the_default_security_group_of_each_vpc_is_closed(any_stack: ProgramRun) -> None:
    vpcs = of_type(any_stack.resources, "aws:ec2/vpc:Vpc")
    defaults = of_type(any_stack.resources,
                       "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup")
    assert {d.inputs["vpcId"] for d in defaults} == {v.resource_id for v in vpcs}
    for group in defaults:
        check(group, group.inputs["ingress"] == [] and group.inputs["egress"] == [],
              "the default group keeps rules")


def test_parameters_are_securestrings_under_the_site_key(any_stack: ProgramRun) -> None:
    site = site_of(any_stack)
    alias = one(any_stack, "aws:kms/alias:Alias", f"{site}-alias")
    home = str(any_stack.outputs["region"])
    other = "standby" if site == "primary" else "primary"
    for parameter in of_type(any_stack.resources, "aws:ssm/parameter:Parameter"):
        # A parameter in the other site's region (the reversed inventory copy) is under that
        # site's key: an alias resolves only in its own region.
        region = parameter.inputs.get("region") or home
        wanted = alias.outputs["name"] if region == home else f"alias/caresync-{other}"
        check(parameter, parameter.inputs["type"] == "SecureString"
              and parameter.inputs["keyId"] == wanted
              and alias.outputs["name"] == f"alias/caresync-{site}",
              "not a SecureString under its region's site key alias (what failover.py "
              "writes with)")


def test_the_app_decrypts_its_own_endpoint_through_ssm_in_its_region(
        any_stack: ProgramRun) -> None:
    site = site_of(any_stack)
    key = one(any_stack, "aws:kms/key:Key", f"{site}-key")
    parameter = one(any_stack, "aws:ssm/parameter:Parameter", f"{site}-database-endpoint")
    statements = {s["Sid"]: s for s in policy(
        one(any_stack, "aws:iam/rolePolicy:RolePolicy", f"{site}-app-instance-read-endpoint"))[
        "Statement"]}
    decrypt = statements["DecryptDatabaseHost"]
    assert decrypt["Action"] == "kms:Decrypt" and decrypt["Resource"] == key.outputs["arn"]
    region = str(any_stack.outputs["region"])
    assert decrypt["Condition"]["StringEquals"] == {
        "kms:ViaService": f"ssm.{region}.amazonaws.com",
        "kms:EncryptionContext:PARAMETER_ARN": parameter.outputs["arn"]}
    template = one(any_stack, "aws:ec2/launchTemplate:LaunchTemplate",
                   f"{site}-app-launch-template")
    script = base64.b64decode(template.inputs["userData"]).decode()
    assert "--with-decryption" in script


def test_the_operator_can_read_and_rewrite_both_sites_parameters(
        prod_bootstrap: ProgramRun, dr: ProgramRun) -> None:
    """failover.py reads the inventory (standby key) and rewrites the endpoint parameters
    (each under its own site's key): the role needs both keys, by ARN."""
    statements = policy(one(dr, "aws:iam/rolePolicy:RolePolicy", "operator-policy"))["Statement"]
    [keys] = [s for s in statements if s["Sid"] == "ParameterKeys"]
    primary_key = one(prod_bootstrap, "aws:kms/key:Key", "primary-key").outputs["arn"]
    standby_key = one(dr, "aws:kms/key:Key", "standby-key").outputs["arn"]
    assert sorted(listify(keys["Resource"])) == sorted([primary_key, standby_key])
    assert {"kms:Decrypt", "kms:Encrypt"} <= set(listify(keys["Action"]))
    inventory = one(dr, "aws:ssm/parameter:Parameter", "failover-inventory-parameter")
    assert inventory.inputs["keyId"] == "alias/caresync-standby"
    json.loads(inventory.inputs["value"])  # still the plain JSON document to SSM

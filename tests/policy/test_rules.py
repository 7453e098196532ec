"""Each guardrail passes a compliant stack and rejects a deliberately bad resource.

The policies are called through the real pulumi_policy argument classes (policy/local.py), with
props behind the engine's unknown-checking proxy.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from caresync_dr.detection import guardduty_finding_pattern
from policy.backup_rules import ScheduleError, max_gap_hours
from policy.context import PROJECT_DIR_ENV, SG_INGRESS_RULE, SSM_PARAMETER
from policy.local import Resource, Violation, evaluate
from policy.rules import POLICIES
from tests.policy import fixtures

ROOT = Path(__file__).resolve().parents[2]


def _messages(resources: list[Resource], stack: str = "prod") -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for violation in evaluate(stack, resources):
        found.setdefault(violation.policy, []).append(str(violation))
    return found


def _change(resources: list[Resource], name: str, **inputs: Any) -> list[Resource]:
    """The stack with one resource's inputs changed (a value of None removes the key)."""
    out = []
    for resource in resources:
        if resource.name == name:
            merged = {**resource.inputs, **inputs}
            out.append(replace(resource, inputs={k: v for k, v in merged.items()
                                                 if v is not None}))
        else:
            out.append(resource)
    assert out != resources, f"no resource named {name}"
    return out


def _without(resources: list[Resource], name: str) -> list[Resource]:
    out = [r for r in resources if r.name != name]
    assert len(out) == len(resources) - 1
    return out


def test_policy_names_are_unique_and_mandatory() -> None:
    names = [p.name for p in POLICIES]
    assert len(names) == len(set(names))
    assert all(p.enforcement_level is not None and p.enforcement_level.value == "mandatory"
               for p in POLICIES)


@pytest.mark.parametrize("stack", ["prod", "dr"])
def test_compliant_stack_passes_every_policy(stack: str) -> None:
    assert evaluate(stack, fixtures.compliant_stack(stack)) == []


BAD_CASES: list[tuple[str, str, dict[str, Any], str, str]] = [
    # (what, resource, changed inputs, policy that must fail, fragment of its message)
    ("SSE with AES256", "backups-sse", {"rules": [{"applyServerSideEncryptionByDefault": {
        "sseAlgorithm": "AES256"}}]}, "s3-encryption-kms", "set sse_algorithm to 'aws:kms'"),
    ("SSE on the AWS-managed key", "backups-sse", {"rules": [{
        "applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms"}}]},
     "s3-encryption-kms", "customer-managed KMS key"),
    ("versioning suspended", "backups-versioning",
     {"versioningConfiguration": {"status": "Suspended"}}, "s3-versioning-enabled",
     "status: 'Enabled'"),
    ("one public-access flag off", "switch-pab", {"restrictPublicBuckets": False},
     "s3-public-access-blocked", "restrict_public_buckets=True"),
    ("policy without the TLS deny", "switch-tls", {"policy": json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*",
                                                 "Action": "s3:GetObject",
                                                 "Resource": "arn:aws:s3:::x/*"}]})},
     "s3-tls-only-policy", "aws:SecureTransport"),
    ("backups expire after 7 days", "backups-lifecycle", {"rules": [{
        "id": "expire", "status": "Enabled", "filter": {"prefix": "backups/"},
        "expiration": {"days": 7}}]},
     "s3-backup-expiry", "backupRetentionDays is 30"),
    ("a whole-bucket 30-day expiry deletes incident timelines", "backups-lifecycle",
     {"rules": [{"id": "expire", "status": "Enabled", "filter": {"prefix": ""},
                 "expiration": {"days": 30}}]},
     "s3-backup-expiry", "expires incidents/ objects after 30 days but they must be kept 2190"),
    ("expiry scoped to another prefix", "backups-lifecycle", {"rules": [{
        "id": "expire", "status": "Enabled", "filter": {"prefix": "dumps/"},
        "expiration": {"days": 30}}]},
     "s3-backup-expiry", "no enabled rule expires 'backups/'"),
    ("incidents kept one year", "backups-lifecycle", {"rules": [
        {"id": "expire", "status": "Enabled", "filter": {"prefix": "backups/"},
         "expiration": {"days": 30}},
        {"id": "incidents", "status": "Enabled", "filter": {"prefix": "incidents/"},
         "expiration": {"days": 365}}]},
     "s3-backup-expiry", "rule 'incidents' expires incidents/ objects after 365 days"),
    ("database unencrypted", "db", {"storageEncrypted": False}, "rds-encrypted",
     "storage_encrypted=True"),
    ("database on the AWS-managed key", "db", {"kmsKeyId": None}, "rds-encrypted",
     "kms_key_id"),
    ("database public", "db", {"publiclyAccessible": True}, "rds-not-public",
     "publicly_accessible=False"),
    ("cross-region replica without deletion protection", "db-standby",
     {"deletionProtection": False}, "rds-deletion-protection", "deletion_protection=True"),
    ("retiring tag on a writer that keeps running", "db",
     {"deletionProtection": False, "tags": {"caresync:lifecycle": "active"}},
     "rds-deletion-protection", "deletion_protection=True"),
    ("7-day retention", "db", {"backupRetentionPeriod": 7.0}, "rds-backup-retention",
     "at least 30"),
    ("force_ssl off", "db-params", {"parameters": [{"name": "rds.force_ssl", "value": "0"}]},
     "rds-force-ssl", "set it to '1'"),
    ("default parameter group", "db", {"parameterGroupName": "default.postgres15"},
     "rds-custom-parameter-group", "rds.force_ssl=1"),
    ("primary record without health check", "app-primary", {"healthCheckId": None},
     "route53-failover-health-checked", "PRIMARY failover record has no health_check_id"),
    ("secondary record not evaluating target health", "app-secondary", {"aliases": [
        {"name": "s.elb", "zoneId": "Z2", "evaluateTargetHealth": False}]},
     "route53-failover-health-checked", "SECONDARY failover record is not health-checked"),
    ("slow health check", "primary-health", {"requestInterval": 30.0, "failureThreshold": 5.0},
     "route53-health-check-timing", "after 150 s but the RTO budget allows 30 s"),
    ("SSH open to the world", "lb-sg", {"ingress": [
        {"protocol": "tcp", "fromPort": 22.0, "toPort": 22.0, "cidrBlocks": ["0.0.0.0/0"]}]},
     "sg-no-world-ingress", "tcp 22.0-22.0 from the internet"),
    ("a port range containing 443", "lb-sg", {"ingress": [
        {"protocol": "tcp", "fromPort": 0.0, "toPort": 65535.0, "ipv6CidrBlocks": ["::/0"]}]},
     "sg-no-world-ingress", "only the load balancer may be open"),
    ("app group open on 443", "app-sg", {"ingress": [
        {"protocol": "tcp", "fromPort": 443.0, "toPort": 443.0, "cidrBlocks": ["0.0.0.0/0"]}]},
     "sg-world-ingress-only-on-load-balancer", "app-sg opens the internet"),
    ("database without enhanced monitoring", "db",
     {"monitoringInterval": None, "monitoringRoleArn": None}, "rds-enhanced-monitoring",
     "monitoring_interval=60"),
    ("a monitoring interval RDS refuses", "db-replica-1", {"monitoringInterval": 45.0},
     "rds-enhanced-monitoring", "RDS accepts 0, 1, 5, 10, 15, 30 or 60"),
    ("monitoring without its role", "db", {"monitoringRoleArn": None},
     "rds-enhanced-monitoring", "RDS refuses it"),
    ("a plain-text parameter", "db-endpoint", {"type": "String", "keyId": None},
     "ssm-parameters-encrypted", "type='SecureString'"),
    ("a parameter on aws/ssm", "db-endpoint", {"keyId": "alias/aws/ssm"},
     "ssm-parameters-encrypted", "AWS-managed aws/ssm key"),
    ("an app group on $Latest", "app-asg", {"launchTemplate": {
        "id": "lt-0123456789abcdef0", "version": "$Latest"}}, "app-group-rolls-back",
     "a rollback needs a specific numbered version"),
    ("provider-driven auto rollback", "app-asg", {"instanceRefresh": {
        "strategy": "Rolling", "preferences": {"autoRollback": True}}},
     "app-group-rolls-back", "terraform-provider-aws #34189"),
    ("backups once a day", "backup-plan", {"rules": [{
        "ruleName": "daily", "targetVaultName": "v", "schedule": "cron(0 5 * * ? *)",
        "copyActions": [{"destinationVaultArn": fixtures.DR_VAULT}]}]},
     "backup-plan-interval-and-cross-region-copy", "no rule runs at least every 6 h"),
    ("copy into the same region", "backup-plan", {"rules": [{
        "ruleName": "every-6h", "targetVaultName": "v", "schedule": "cron(0 */6 * * ? *)",
        "copyActions": [{"destinationVaultArn":
                         "arn:aws:backup:us-east-1:111122223333:backup-vault:local"}]}]},
     "backup-plan-interval-and-cross-region-copy", "copies no recovery point out of us-east-1"),
    ("GuardDuty RDS Protection off", "guardduty-rds_login_events", {"status": "DISABLED"},
     "guardduty-findings-routed", "RDS_LOGIN_EVENTS is not enabled"),
    ("findings forwarded only from High", "findings-rule",
     {"eventPattern": guardduty_finding_pattern(7.0)}, "guardduty-findings-routed",
     "findings in between reach nobody"),
    ("findings sent to the ops topic", "findings-to-topic",
     {"arn": "arn:aws:sns:us-east-1:111122223333:caresync-primary-alerts"},
     "guardduty-findings-routed", "no EventBridge rule sends GuardDuty findings"),
    ("security topic without the security team", "security-email-1",
     {"endpoint": "oncall@caresync.health"}, "guardduty-findings-routed",
     "does not mail security@caresync.health"),
    ("trail not in CloudWatch Logs", "trail", {"cloudWatchLogsGroupArn": None},
     "breach-signals-alarmed", "does not deliver to a CloudWatch Logs group"),
    ("trail logs kept 90 days", "trail-logs", {"retentionInDays": 90.0},
     "breach-signals-alarmed", "keeps events 90.0 days, trailLogRetentionDays is 365"),
    ("a signal's pattern edited", "root-use-filter", {"pattern": '{$.userIdentity.type="Root"}'},
     "breach-signals-alarmed", "no metric filter with AWS's pattern for 'root user used'"),
    ("a threshold raised", "unauthorized-api-calls-alarm", {"threshold": 50.0},
     "breach-signals-alarmed", "the documented threshold is 5"),
    ("an alarm that tells nobody", "kms-key-disabled-or-deleted-alarm", {"alarmActions": []},
     "breach-signals-alarmed", "does not notify the security topic"),
    ("pgAudit not preloaded", "db-params", {"parameters": [
        {"name": "rds.force_ssl", "value": "1"}]}, "rds-pgaudit",
     "pgaudit is not in shared_preload_libraries"),
    ("pgAudit logging parameter values", "db-params", {"parameters": [
        {"name": "rds.force_ssl", "value": "1"},
        *[p if p["name"] != "pgaudit.log_parameter" else {**p, "value": "1"}
          for p in fixtures.PGAUDIT_PARAMETERS]]}, "rds-pgaudit", "may hold PHI"),
]


@pytest.mark.parametrize(("what", "name", "inputs", "policy", "fragment"), BAD_CASES,
                         ids=[case[0] for case in BAD_CASES])
def test_bad_resource_is_rejected(what: str, name: str, inputs: dict[str, Any], policy: str,
                                  fragment: str) -> None:
    found = _messages(_change(fixtures.compliant_stack(), name, **inputs))
    assert policy in found, f"{what}: {policy} did not fire; got {found}"
    assert any(fragment in message for message in found[policy]), found[policy]


def test_every_resource_policy_has_a_bad_case() -> None:
    covered = {case[3] for case in BAD_CASES}
    stack_only = {"s3-bucket-guardrails-complete", "rds-instances-force-ssl",
                  "objectives-present-for-both-sites", "dr-region-differs-from-primary",
                  "objectives-feasible", "waf-on-public-load-balancers",
                  "vpc-default-security-group-closed"}
    assert {p.name for p in POLICIES} - covered == stack_only


def test_app_group_whose_version_pulumi_switches_is_rejected() -> None:
    switched = [replace(r, ignore_changes=()) if r.name == "app-asg" else r
                for r in fixtures.compliant_stack()]
    found = _messages(switched)
    assert any("ignore_changes must hold launchTemplate.version" in m
               for m in found["app-group-rolls-back"]), found


# --- stack-level: linking sub-resources to buckets and groups ---------------------------------

@pytest.mark.parametrize(("missing", "label"), [
    ("backups-sse", "no KMS default encryption"), ("switch-versioning", "no versioning"),
    ("switch-pab", "no public-access block"), ("backups-tls", "no TLS-only bucket policy")])
def test_bucket_without_a_sub_resource_is_rejected(missing: str, label: str) -> None:
    found = _messages(_without(fixtures.compliant_stack(), missing))
    assert any(label in m for m in found["s3-bucket-guardrails-complete"]), found


def test_sub_resource_targeting_another_bucket_does_not_count() -> None:
    resources = _change(fixtures.compliant_stack(), "switch-versioning",
                        bucket="caresync-backups-prod")
    found = _messages(resources)
    assert any("bucket switch has no versioning" in m
               for m in found["s3-bucket-guardrails-complete"]), found


def test_traffic_switch_bucket_may_use_sse_s3_but_must_be_encrypted() -> None:
    switch = fixtures.bucket_set("traffic-switch-bucket", "caresync-traffic-switch", backup=False)
    aes = {"rules": [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}]}
    allowed = _change([*fixtures.compliant_stack(), *switch], "traffic-switch-bucket-sse", **aes)
    assert _messages(allowed) == {}
    unencrypted = _without([*fixtures.compliant_stack(), *switch], "traffic-switch-bucket-sse")
    assert list(_messages(unencrypted)) == ["s3-bucket-guardrails-complete"]
    # The exception is by name, not by algorithm: the backups bucket still needs KMS.
    assert "s3-encryption-kms" in _messages(_change(allowed, "backups-sse", **aes))


def test_promoted_standby_plan_need_not_copy_into_the_failed_region(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    no_copy = [r if r.name != "backup-plan" else fixtures.backup_plan(copy_to=None)
               for r in fixtures.compliant_stack("dr")]
    assert "backup-plan-interval-and-cross-region-copy" in _messages(no_copy, stack="dr")
    _project(tmp_path, monkeypatch, promoted=("dr", 'caresync-dr:activeSite: primary',
                                              'caresync-dr:activeSite: standby'))
    assert _messages(no_copy, stack="dr") == {}
    slow = [r if r.name != "backup-plan" else fixtures.backup_plan("cron(0 3 * * ? *)", None)
            for r in fixtures.compliant_stack("dr")]
    assert "backup-plan-interval-and-cross-region-copy" in _messages(slow, stack="dr")


def test_backup_bucket_without_lifecycle_is_rejected() -> None:
    found = _messages(_without(fixtures.compliant_stack(), "backups-lifecycle"))
    assert any("has no lifecycle configuration" in m and "30 days" in m
               for m in found["s3-backup-expiry"])


def test_instance_using_a_group_the_stack_does_not_define_is_rejected() -> None:
    found = _messages(_change(fixtures.compliant_stack(), "db", parameterGroupName="other"))
    assert any("does not define" in m for m in found["rds-instances-force-ssl"]), found


def test_public_load_balancer_without_a_web_acl_is_rejected() -> None:
    found = _messages(_without(fixtures.compliant_stack(), "web-acl-alb"))
    assert any("alb is internet-facing without a web ACL" in m
               for m in found["waf-on-public-load-balancers"]), found
    # An internal load balancer needs none.
    internal = _change(_without(fixtures.compliant_stack(), "web-acl-alb"), "alb",
                       internal=True)
    assert "waf-on-public-load-balancers" not in _messages(internal)


def test_web_acl_that_only_counts_known_bad_inputs_is_rejected() -> None:
    [acl] = [r for r in fixtures.compliant_stack() if r.name == "web-acl"]
    rules = [dict(rule) for rule in acl.inputs["rules"]]
    rules[1] = {**rules[1], "overrideAction": {"count": {}}}
    found = _messages(_change(fixtures.compliant_stack(), "web-acl", rules=rules))
    assert any("does not enforce AWSManagedRulesKnownBadInputsRuleSet" in m
               for m in found["waf-on-public-load-balancers"]), found


def test_default_security_group_left_open_or_unmanaged_is_rejected() -> None:
    open_rules = _change(fixtures.compliant_stack(), "vpc-default-sg", ingress=[
        {"protocol": "-1", "fromPort": 0.0, "toPort": 0.0, "self": True}])
    assert any("has 1 rule(s)" in m for m in
               _messages(open_rules)["vpc-default-security-group-closed"])
    unmanaged = _without(fixtures.compliant_stack(), "vpc-default-sg")
    assert any("vpc's default security group keeps AWS's rules" in m for m in
               _messages(unmanaged)["vpc-default-security-group-closed"])


def test_world_rule_on_a_group_without_load_balancer_is_rejected() -> None:
    rule = Resource(SG_INGRESS_RULE[0], "app-https", {
        "securityGroupId": "sg-0app", "cidrIpv4": "0.0.0.0/0", "ipProtocol": "tcp",
        "fromPort": 443.0, "toPort": 443.0})
    found = _messages([*fixtures.compliant_stack(), rule])
    assert list(found) == ["sg-world-ingress-only-on-load-balancer"], found


def test_unknown_value_during_preview_is_reported_not_passed() -> None:
    from pulumi_policy.proxy import UNKNOWN_STRING_VALUE

    resources = _change(fixtures.compliant_stack(), "db", kmsKeyId=UNKNOWN_STRING_VALUE,
                        storageEncrypted=True)
    advisory = [v for v in evaluate("prod", resources) if v.policy == "rds-encrypted"]
    assert advisory == [Violation("rds-encrypted", "string value at .kmsKeyId can't be known "
                                  "during preview", "db", advisory=True)]


# --- the schedule reader ------------------------------------------------------------------------

@pytest.mark.parametrize(("schedule", "gap"), [
    ("cron(0 */6 * * ? *)", 6), ("cron(0 5 * * ? *)", 24), ("cron(30 0,6,12,18 * * ? *)", 6),
    ("cron(0 2/5 * * ? *)", 5),   # 2, 7, 12, 17, 22; 22 -> 2 next day is 4
    ("cron(0 8-20/6 * * ? *)", 12), ("cron(0 * * * ? *)", 1), ("cron(0 3 ? * MON *)", 168)])
def test_max_gap_hours(schedule: str, gap: int) -> None:
    assert max_gap_hours(schedule) == gap


def test_unreadable_schedule_is_an_error() -> None:
    with pytest.raises(ScheduleError, match="not an AWS cron"):
        max_gap_hours("rate(6 hours)")


# --- stack rules on the settings of both sites ---------------------------------------------

def _project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
             **replacements: tuple[str, str, str]) -> None:
    """Copy both stack files to tmp_path, edit them, and point the pack at the copy."""
    for stack in ("prod", "dr"):
        (tmp_path / f"Pulumi.{stack}.yaml").write_text((ROOT / f"Pulumi.{stack}.yaml").read_text())
    for _, (stack, old, new) in replacements.items():
        path = tmp_path / f"Pulumi.{stack}.yaml"
        text = path.read_text()
        assert old in text
        path.write_text(text.replace(old, new))
    monkeypatch.setenv(PROJECT_DIR_ENV, str(tmp_path))


def test_stack_rules_pass_on_the_committed_stack_files() -> None:
    found = _messages(fixtures.compliant_stack("dr"), stack="dr")
    assert found == {}


def test_objectives_that_differ_between_sites_are_rejected(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _project(tmp_path, monkeypatch,
             rpo=("dr", 'caresync-dr:rpoMinutes: "15"', 'caresync-dr:rpoMinutes: "10"'))
    found = _messages(fixtures.compliant_stack(), stack="prod")
    assert found["objectives-present-for-both-sites"] == [
        "objectives-present-for-both-sites (mandatory): caresync-dr:rpoMinutes is 15 in prod "
        "but 10 in dr: make both sites agree"]


def test_objective_left_to_its_default_is_rejected(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _project(tmp_path, monkeypatch, rto=("prod", '  caresync-dr:rtoMinutes: "60"\n', ""))
    found = _messages(fixtures.compliant_stack("dr"), stack="dr")
    assert any("Pulumi.prod.yaml does not declare caresync-dr:rtoMinutes" in m
               for m in found["objectives-present-for-both-sites"]), found


def test_standby_in_the_primary_region_is_rejected(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _project(tmp_path, monkeypatch,
             region=("dr", "caresync-dr:standbyRegion: us-west-2",
                     "caresync-dr:standbyRegion: us-east-1"))
    found = _messages(fixtures.compliant_stack(), stack="prod")
    assert any("must differ from primaryRegion" in m
               for m in found["objectives-present-for-both-sites"]), found
    # dr's own settings are refused outright: every settings-based rule says why.
    found_dr = _messages(fixtures.compliant_stack("dr"), stack="dr")
    assert any("must differ from primaryRegion" in m
               for m in found_dr["dr-region-differs-from-primary"]), found_dr


def test_configuration_that_cannot_meet_its_rto_fails_the_pack(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _project(tmp_path, monkeypatch,
             rto_prod=("prod", 'caresync-dr:rtoMinutes: "60"', 'caresync-dr:rtoMinutes: "30"'),
             rto_dr=("dr", 'caresync-dr:rtoMinutes: "60"', 'caresync-dr:rtoMinutes: "30"'))
    found = _messages(fixtures.compliant_stack("dr"), stack="dr")
    assert list(found) == ["objectives-feasible"], found
    [message] = found["objectives-feasible"]
    # 37 min 30 s = 2250 s: the committed budget, verification at failover.py's 600 s default
    assert "worst-case failover takes 37 min 30 s but rtoMinutes is 30 min" in message


def test_inventory_objectives_must_match_the_settings() -> None:
    objectives = {"rtoMinutes": 90, "rpoMinutes": 15}
    inventory: dict[str, Any] = {"version": 1, "objectives": objectives,
                                 "primary": {}, "standby": {}}
    parameter = Resource(SSM_PARAMETER[0], "inventory", {
        "name": "/caresync-dr/failover-inventory", "type": "SecureString",
        "keyId": "alias/caresync-standby", "value": json.dumps(inventory)})
    found = _messages([*fixtures.compliant_stack("dr"), parameter], stack="dr")
    assert any("inventory's objectives" in m for m in found["objectives-present-for-both-sites"])
    objectives["rtoMinutes"] = 60
    ok = replace(parameter, inputs={**parameter.inputs, "value": json.dumps(inventory)})
    assert _messages([*fixtures.compliant_stack("dr"), ok], stack="dr") == {}


def test_bootstrap_config_relaxes_only_the_cross_region_copy() -> None:
    # `pulumi up -s prod --policy-pack policy --policy-pack-config policy/bootstrap-config.json`
    # for the very first prod deploy only (dr, the copy target, does not exist yet).
    config = json.loads((ROOT / "policy" / "bootstrap-config.json").read_text())
    assert config == {"backup-plan-interval-and-cross-region-copy": "advisory"}
    assert set(config) <= {p.name for p in POLICIES}


def test_ci_doc_rules_table_lists_every_policy() -> None:
    section = (ROOT / "docs" / "ci.md").read_text()
    listed = set(re.findall(r"^\| `([a-z0-9-]+)`", section, flags=re.MULTILINE))
    assert listed == {p.name for p in POLICIES}


@pytest.mark.parametrize("site", ["primary", "standby"])
def test_alb_access_log_bucket_may_use_sse_s3_with_its_reason(site: str) -> None:
    from policy.s3_rules import SSE_S3_ALLOWED

    name = f"{site}-audit-alb-logs"
    assert "SSE-S3" in SSE_S3_ALLOWED[name], "every exception states why"
    logs = fixtures.bucket_set(name, f"caresync-{site}-alb-logs", backup=False)
    aes = {"rules": [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}]}
    assert _messages(_change([*fixtures.compliant_stack(), *logs], f"{name}-sse", **aes)) == {}
    # Only that bucket: the audit bucket next to it (CloudTrail, flow logs) still needs KMS.
    audit = fixtures.bucket_set(f"{site}-audit-bucket", f"caresync-{site}-audit", backup=False)
    rejected = _messages(_change([*fixtures.compliant_stack(), *audit],
                                 f"{site}-audit-bucket-sse", **aes))
    assert "s3-encryption-kms" in rejected

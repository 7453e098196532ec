"""The AWS rules oracle: each rule refuses a deliberately wrong resource, the program passes
every rule in every state, every offline run enforces them, and docs/aws-rules.md is the table.

Each case takes a resource the real program registers and breaks one thing about it, the way a
careless edit would; the named rule must report it, with the resource's URN and its source.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from caresync_dr.emulation import aws_rules
from caresync_dr.emulation.aws_rules import RULES, AwsRulesError
from caresync_dr.offline.runtime import ProgramRun, RegisteredResource, run_program
from tests import offline_runs
from tests.ci_paths import ROOT

DOC = ROOT / "docs" / "aws-rules.md"
Mutation = Callable[[RegisteredResource], RegisteredResource]


def inputs(**changes: Any) -> Mutation:
    """Set (or, with None, remove) top-level inputs."""
    def change(resource: RegisteredResource) -> RegisteredResource:
        new = {k: v for k, v in resource.inputs.items() if changes.get(k, 0) is not None}
        new.update({k: v for k, v in changes.items() if v is not None})
        return dataclasses.replace(resource, inputs=new)
    return change


def nested(key: str, edit: Callable[[Any], None]) -> Mutation:
    """Edit a copy of one nested input (a list or object) in place."""
    def change(resource: RegisteredResource) -> RegisteredResource:
        value = json.loads(json.dumps(resource.inputs[key]))
        edit(value)
        return dataclasses.replace(resource, inputs={**resource.inputs, key: value})
    return change


def key_policy_without(*sids: str) -> Mutation:
    def change(resource: RegisteredResource) -> RegisteredResource:
        policy = json.loads(resource.inputs["policy"])
        policy["Statement"] = [s for s in policy["Statement"] if s.get("Sid") not in sids]
        return dataclasses.replace(resource, inputs={**resource.inputs,
                                                     "policy": json.dumps(policy)})
    return change


def policy_statements_edit(edit: Callable[[list[dict[str, Any]]], None]) -> Mutation:
    """Edit the statements of a resource's ``policy`` (JSON text)."""
    def change(resource: RegisteredResource) -> RegisteredResource:
        policy = json.loads(resource.inputs["policy"])
        edit(policy["Statement"])
        return dataclasses.replace(resource, inputs={**resource.inputs,
                                                     "policy": json.dumps(policy)})
    return change


def without_dependencies(fragment: str) -> Mutation:
    def change(resource: RegisteredResource) -> RegisteredResource:
        kept = tuple(d for d in resource.dependencies if fragment not in d)
        return dataclasses.replace(resource, dependencies=kept)
    return change


def options(**changes: Any) -> Mutation:
    def change(resource: RegisteredResource) -> RegisteredResource:
        return dataclasses.replace(resource, **changes)
    return change


def _first_rule(key: str, **changes: Any) -> Callable[[Any], None]:
    def edit(value: Any) -> None:
        value[0][key] = {**value[0][key][0], **changes} if isinstance(value[0][key], list) \
            else {**value[0][key], **changes}
    return edit


EAST_KEY = "arn:aws:kms:us-east-1:111122223333:key/00000000-1234-4abc-9def-000000000000"
WEST_CERT = "arn:aws:acm:us-west-2:111122223333:certificate/0a6d2c1e-44b1-4b8e-8f0e-2f6c9d1e7b22"

# (rule, stack state, resource name, mutation)
CASES: list[tuple[str, str, str, Mutation]] = [
    ("rds-no-managed-password-on-replication", "prod", "primary-database-instance",
     inputs(manageMasterUserPassword=True, password=None)),
    ("rds-replica-source-arn-with-subnet-group", "prod", "primary-database-replica-1",
     inputs(replicateSourceDb="caresync-primary-db")),
    ("rds-cross-region-replica-key", "dr", "standby-database-instance",
     inputs(kmsKeyId=EAST_KEY)),
    ("rds-replica-no-creation-arguments", "dr", "standby-database-instance",
     inputs(username="caresync_admin")),
    ("rds-replica-deletable-without-final-snapshot", "prod", "primary-database-replica-1",
     inputs(skipFinalSnapshot=False, finalSnapshotIdentifier="replica-1-final")),
    ("rds-final-snapshot-identifier", "prod", "primary-database-instance",
     inputs(finalSnapshotIdentifier="caresync--final-")),
    ("rds-replica-backups-need-14-1", "prod", "primary-database-instance",
     inputs(engineVersion="13")),
    ("rds-parameter-group-family", "prod", "primary-database-instance",
     inputs(engineVersion="16")),
    ("rds-engine-version-major-with-auto-minor", "prod", "primary-database-instance",
     inputs(engineVersion="15.4")),
    ("rds-log-groups-before-instance", "prod", "primary-database-instance",
     without_dependencies("logGroup")),
    ("rds-backup-retention", "prod", "primary-database-instance",
     inputs(backupRetentionPeriod=0.0)),
    ("rds-backup-window-outside-maintenance", "prod", "primary-database-instance",
     inputs(backupWindow="04:30-05:00")),
    ("rds-performance-insights-key", "prod", "primary-database-instance",
     inputs(performanceInsightsEnabled=False)),
    ("rds-max-allocated-storage", "prod", "primary-database-instance",
     inputs(maxAllocatedStorage=50.0)),
    ("rds-identifier", "prod", "primary-database-replica-1", inputs(identifier="1-replica")),
    ("rds-automated-backups-replication", "dr", "standby-pitr-replication",
     inputs(sourceDbInstanceArn="arn:aws:rds:us-west-2:111122223333:db:caresync-primary-db")),
    ("kms-policy-principals-exist", "prod", "primary-key", without_dependencies("autoscaling")),
    ("kms-deletion-window", "prod", "primary-key", inputs(deletionWindowInDays=5.0)),
    ("kms-alias-name", "prod", "primary-alias", inputs(name="alias/aws/caresync")),
    ("ebs-key-grants-autoscaling", "prod", "primary-key",
     key_policy_without("AutoScalingAttachesVolumes")),
    ("secrets-replica-key-of-its-region", "prod", "primary-credentials-app-secret",
     nested("replicas", lambda v: v[0].update(kmsKeyId=EAST_KEY))),
    ("secrets-name", "prod", "primary-credentials-app-secret", inputs(name="caresync db app")),
    ("logs-key-and-retention", "prod", "primary-database-instance-postgresql-log",
     inputs(retentionInDays=100.0)),
    ("sns-encrypted-topic-admits-cloudwatch", "prod", "primary-key",
     key_policy_without("CloudWatchAlarmsToEncryptedTopic")),
    ("cloudtrail-key-admits-cloudtrail", "prod", "primary-key",
     key_policy_without("CloudTrailEncryptsLogs")),
    ("iam-role-session-duration", "dr", "operator-role", inputs(maxSessionDuration=60.0)),
    ("route53-health-check-limits", "dr", "dns-primary-health", inputs(requestInterval=15.0)),
    ("route53-calculated-check", "dr", "dns-primary-record-health",
     inputs(childHealthThreshold=3.0)),
    ("route53-failover-record-pair", "dr", "dns-standby-record",
     nested("failoverRoutingPolicies", lambda v: v[0].update(type="PRIMARY"))),
    ("route53-metrics-in-us-east-1", "dr", "dns-primary-health-alarm",
     inputs(region="us-west-2")),
    ("backup-lifetimes-within-vault-lock", "prod", "primary-backup-plan",
     nested("rules", _first_rule("lifecycle", deleteAfter=40.0))),
    ("backup-plan-windows", "prod", "primary-backup-plan",
     nested("rules", lambda v: v[0].update(completionWindow=90.0))),
    ("backup-vault-lock-bounds", "prod", "primary-backup-vault-lock",
     inputs(changeableForDays=2.0)),
    ("backup-vault-lock-delete-before-replace", "prod", "primary-backup-vault-lock",
     options(delete_before_replace=False)),
    ("backup-restore-testing-plan", "prod", "primary-backup-restore-testing",
     inputs(startWindowHours=200.0)),
    ("s3-bucket-name", "prod", "primary-backups-bucket", inputs(bucket="Caresync_Backups")),
    ("s3-replication-prerequisites", "prod", "primary-backups-replication",
     without_dependencies("bucketVersioning")),
    ("elb-access-logs-sse-s3", "prod", "primary-audit-alb-logs-sse",
     nested("rules", _first_rule("applyServerSideEncryptionByDefault",
                                 sseAlgorithm="aws:kms"))),
    ("elb-names", "prod", "primary-app-alb", inputs(name="caresync-primary-application-alb-01")),
    ("elb-two-availability-zones", "prod", "primary-app-alb",
     nested("subnets", lambda v: v.pop())),
    ("elb-https-listener-certificate", "prod", "primary-app-https",
     inputs(certificateArn=WEST_CERT)),
    ("ec2-security-group-description", "prod", "primary-network-db-sg", inputs(description="")),
    ("ec2-flow-log-aggregation", "prod", "primary-audit-vpc-flow-log",
     inputs(maxAggregationInterval=300.0)),
    ("autoscaling-capacity", "prod", "primary-app-asg", inputs(minSize=5.0)),
    ("autoscaling-instance-refresh-request", "prod", "primary-app-asg",
     inputs(instanceRefresh={"strategy": "Rolling", "preferences": {
         "minHealthyPercentage": 50.0, "maxHealthyPercentage": 200.0}})),
    ("autoscaling-app-group-rolls-back", "prod", "primary-app-asg",
     nested("launchTemplate", lambda v: v.update(version="$Latest"))),
    ("cloudwatch-alarm-shape", "prod", "primary-monitoring-db-cpu",
     inputs(datapointsToAlarm=5.0)),
    ("rds-replica-stopped-alarm", "prod",
     "primary-monitoring-caresync-primary-db-replica-1-replication-stopped",
     inputs(comparisonOperator="GreaterThanThreshold")),
    ("wafv2-log-destination", "prod", "primary-waf-logging",
     inputs(logDestinationConfigs=["arn:aws:s3:::caresync-primary-waf-logs"])),
    ("wafv2-regional-association", "prod", "primary-waf-alb",
     inputs(resourceArn="arn:aws:elasticloadbalancing:us-west-2:111122223333:loadbalancer/"
            "app/caresync-standby-alb/0123456789abcdef")),
    ("ssm-parameter-name-and-size", "prod", "primary-database-endpoint",
     inputs(name="caresync-dr/primary/database-host")),
    ("guardduty-one-detector-per-region", "prod", "primary-detection-guardduty",
     inputs(findingPublishingFrequency="ONE_DAY")),
    ("guardduty-detector-feature", "prod", "primary-detection-guardduty-rds-login-events",
     inputs(name="RDS_PROTECTION")),
    ("eventbridge-rule-shape", "prod", "primary-detection-findings-rule",
     inputs(eventPattern='{"source": ["aws.guardduty"]')),
    ("eventbridge-sns-target-permissions", "prod", "primary-key",
     key_policy_without("EventBridgeToEncryptedTopic")),
    ("logs-metric-filter", "prod", "primary-detection-root-use-filter",
     without_dependencies("logGroup")),
    ("cloudtrail-cloudwatch-logs-delivery", "prod", "primary-audit-trail",
     lambda r: dataclasses.replace(r, inputs={
         **r.inputs, "cloudWatchLogsGroupArn": r.inputs["cloudWatchLogsGroupArn"][:-2]})),
    ("rds-pgaudit-parameters", "prod", "primary-database-params",
     nested("parameters", lambda v: next(p for p in v if p["name"] ==
                                         "shared_preload_libraries").update(
                                             value="pg_stat_statements"))),
    # a grant that names every instance one by one instead of the region's pattern
    ("iam-role-inline-policy-size", "dr", "incident-responder-breach-policy",
     policy_statements_edit(lambda statements: statements.append({
         "Sid": "EveryInstanceByName", "Effect": "Allow", "Action": "ec2:StopInstances",
         "Resource": [f"arn:aws:ec2:us-west-2:111122223333:instance/i-{n:017x}"
                      for n in range(120)]}))),
    ("iam-trust-policy-size", "dr", "operator-role",
     lambda r: dataclasses.replace(r, inputs={**r.inputs, "assumeRolePolicy": json.dumps({
         "Version": "2012-10-17", "Statement": [{
             "Sid": f"Operator{n}", "Effect": "Allow", "Action": "sts:AssumeRole",
             "Principal": {"AWS": f"arn:aws:iam::111122223333:user/operator-{n}"}}
             for n in range(30)]})})),
    ("iam-role-name", "dr", "backup-role", inputs(name="caresync dr backup")),
    ("iam-policy-grammar", "dr", "backup-backup-policy",
     policy_statements_edit(lambda statements: statements[0].update(Sid="Backup-Data-Keys"))),
    # the standby key by its alias ARN (decision D2 addresses it so): KMS never matches it
    ("iam-action-resource-types", "dr", "backup-backup-policy",
     policy_statements_edit(lambda statements: statements[0].update(Resource=[
         "arn:aws:kms:us-west-2:111122223333:alias/caresync-standby"]))),
    # the failover operator reads the traffic switch without listing its bucket
    # SSM encrypts a SecureString with the caller's kms:Encrypt: the bucket key's grant has none
    ("iam-kms-on-the-callers-behalf", "dr", "operator-policy",
     policy_statements_edit(lambda statements: statements.remove(next(
         s for s in statements if s["Sid"] == "ParameterKeys")))),
    ("iam-s3-readers-list-the-bucket", "dr", "operator-policy",
     policy_statements_edit(lambda statements: statements.remove(next(
         s for s in statements if s["Sid"] == "TrafficSwitchMissingObject")))),
]

# Rules that report on the resource AWS refuses, not on the one the case breaks.
REPORTED_ON: dict[str, str | tuple[str, ...]] = {
    # the in-region replica follows its source's version, so it is wrong too
    "rds-parameter-group-family": ("primary-database-instance", "primary-database-replica-1"),
    "route53-failover-record-pair": ("dns-primary-record", "dns-standby-record"),
    "rds-replica-backups-need-14-1": "primary-database-replica-1",
    "ebs-key-grants-autoscaling": "primary-app-asg",
    "sns-encrypted-topic-admits-cloudwatch": ("primary-monitoring-alerts",
                                              "primary-detection-security-topic"),
    "eventbridge-sns-target-permissions": "primary-detection-findings-to-topic",
    "cloudtrail-key-admits-cloudtrail": "primary-audit-trail",
    "elb-access-logs-sse-s3": "primary-app-alb",
    "rds-replica-stopped-alarm": "primary-database-replica-1",
    "iam-role-inline-policy-size": "incident-responder-role",
    "iam-s3-readers-list-the-bucket": "operator-role",
    "iam-kms-on-the-callers-behalf": "operator-role",
}


def _run(state: str) -> ProgramRun:
    return offline_runs.dr_promoted() if state == "dr_promoted" else offline_runs.steady()[
        {"prod": "prod", "dr": "dr"}[state]]


def _check(run: ProgramRun, resources: list[RegisteredResource],
           config: dict[str, str]) -> list[aws_rules.Violation]:
    region = "us-east-1" if run.stack == "prod" else "us-west-2"
    return aws_rules.check(run.stack, region, resources, config=config, outputs=run.outputs)


@pytest.mark.parametrize(("rule", "state", "name", "mutation"), CASES,
                         ids=[case[0] for case in CASES])
def test_rule_refuses_a_deliberately_wrong_resource(rule: str, state: str, name: str,
                                                    mutation: Mutation) -> None:
    run = _run(state)
    config = {"dbEngineVersion": "15"}
    assert not [v for v in _check(run, run.resources, config) if v.rule.name == rule], \
        "the unchanged program must pass the rule, or the case proves nothing"
    (target,) = [r for r in run.resources if r.name == name and r.custom]
    broken = [mutation(r) if r is target else r for r in run.resources]
    found = [v for v in _check(run, broken, config) if v.rule.name == rule]
    assert found, f"{rule} did not refuse the broken {name}"
    text = str(found[0])
    assert text.startswith(f"{rule}: urn:pulumi:") and "(source: " in text
    reported = REPORTED_ON.get(rule, name)
    names = (reported,) if isinstance(reported, str) else reported
    assert {v.urn for v in found} == {r.urn for r in run.resources
                                      if r.name in names and r.custom}


def test_every_rule_has_a_refusal_case() -> None:
    assert sorted({case[0] for case in CASES}) == sorted(rule.name for rule in RULES)
    assert len({rule.name for rule in RULES}) == len(RULES), "rule names repeat"


@pytest.mark.parametrize("state", ["bootstrap", "dr", "prod"])
def test_the_program_passes_every_rule(state: str) -> None:
    # run_program enforces the rules; getting the runs at all means they passed. Check the
    # enforcement itself found nothing, with the settings the run used.
    run = offline_runs.steady()[state]
    assert _check(run, run.resources, {"dbEngineVersion": "15"}) == []


def test_every_offline_run_enforces_the_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    import components.backup_plan

    monkeypatch.setattr(components.backup_plan, "COMPLIANCE_GRACE_DAYS", 2)
    with pytest.raises(AwsRulesError) as err:
        run_program("prod", project_dir=ROOT, config_overrides={"vaultLockMode": "compliance"})
    message = str(err.value)
    assert "backup-vault-lock-bounds: urn:pulumi:prod::caresync-dr::caresync:dr:BackupPlan" \
           "$aws:backup/vaultLockConfiguration:VaultLockConfiguration::primary-backup-vault-lock" \
           in message
    assert "changeable_for_days 2" in message and "(source: " in message
    run = run_program("prod", project_dir=ROOT, config_overrides={"vaultLockMode": "compliance"},
                      aws_rules=False)
    assert run.resources, "the oracle can be skipped only explicitly"


def test_docs_table_is_generated_from_the_rules() -> None:
    text = DOC.read_text()
    assert aws_rules.rules_table() in text, \
        "docs/aws-rules.md is out of date: python -m caresync_dr.emulation.aws_rules"


def test_the_docs_list_every_resource_type_the_program_uses() -> None:
    types = {r.type for run in (*offline_runs.steady().values(), offline_runs.dr_promoted())
             for r in run.resources if r.custom}
    text = Path(DOC).read_text()
    missing = sorted(t for t in types if f"`{t}`" not in text)
    assert not missing, f"docs/aws-rules.md does not say what was checked for {missing}"

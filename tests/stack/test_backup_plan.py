"""AWS Backup: every 6 hours, kept 30 days, copied cross-region, locked, restore-tested daily."""

from __future__ import annotations

import json
import re

from caresync_dr.offline.runtime import ProgramRun, of_type
from tests.stack.checks import one

PLAN = "aws:backup/plan:Plan"


def _hours(schedule: str) -> set[int]:
    """The hours an AWS Backup cron expression fires (minute 0 expected)."""
    match = re.fullmatch(r"cron\((\S+) (\S+) \* \* \? \*\)", schedule)
    assert match, f"unexpected schedule {schedule!r}"
    minute, hours = match.groups()
    assert minute == "0"
    start, _, step = hours.partition("/")
    return set(range(int(start), 24, int(step or 24)))


def test_primary_backs_up_every_6_hours_and_keeps_30_days(prod_bootstrap: ProgramRun) -> None:
    plan = one(prod_bootstrap, PLAN, "primary-backup-plan")
    (rule,) = plan.inputs["rules"]
    assert _hours(rule["schedule"]) == {0, 6, 12, 18}
    assert rule["lifecycle"]["deleteAfter"] == 30
    assert rule["targetVaultName"] == "caresync-primary"
    selection = one(prod_bootstrap, "aws:backup/selection:Selection", "primary-backup-selection")
    assert selection.inputs["resources"] == [prod_bootstrap.outputs["dbArn"]]
    assert selection.inputs["planId"] == plan.resource_id


def test_backup_interval_setting_drives_the_schedule() -> None:
    from caresync_dr.offline.runtime import run_program

    run = run_program("prod", config_overrides={"backupIntervalHours": "4"})
    (rule,) = one(run, PLAN, "primary-backup-plan").inputs["rules"]
    assert _hours(rule["schedule"]) == {0, 4, 8, 12, 16, 20}


def test_copies_go_to_the_standby_vault_once_linked(
        prod_bootstrap: ProgramRun, prod_linked: ProgramRun, dr: ProgramRun) -> None:
    (bootstrap_rule,) = one(prod_bootstrap, PLAN, "primary-backup-plan").inputs["rules"]
    assert not bootstrap_rule.get("copyActions"), "no standby vault exists during bootstrap"
    (rule,) = one(prod_linked, PLAN, "primary-backup-plan").inputs["rules"]
    (copy,) = rule["copyActions"]
    assert copy["destinationVaultArn"] == dr.outputs["backupVaultArn"]
    assert copy["destinationVaultArn"].split(":")[3] == "us-west-2"
    assert copy["lifecycle"]["deleteAfter"] == 30


def test_vaults_are_kms_encrypted_and_locked_in_governance_mode(any_stack: ProgramRun) -> None:
    vault = one(any_stack, "aws:backup/vault:Vault", f"{_site(any_stack)}-backup-vault")
    assert vault.inputs["kmsKeyArn"] == any_stack.outputs["kmsKeyArn"]
    lock = one(any_stack, "aws:backup/vaultLockConfiguration:VaultLockConfiguration",
               f"{_site(any_stack)}-backup-vault-lock")
    assert lock.inputs["backupVaultName"] == vault.outputs["name"]
    assert "changeableForDays" not in lock.inputs, "governance mode omits changeable_for_days"
    assert lock.inputs["maxRetentionDays"] >= 30


def test_compliance_mode_is_a_setting() -> None:
    from caresync_dr.offline.runtime import run_program

    run = run_program("prod", config_overrides={"vaultLockMode": "compliance"})
    lock = one(run, "aws:backup/vaultLockConfiguration:VaultLockConfiguration",
               "primary-backup-vault-lock")
    assert lock.inputs["changeableForDays"] >= 3


def test_database_is_restore_tested_daily(prod_bootstrap: ProgramRun) -> None:
    plan = one(prod_bootstrap, "aws:backup/restoreTestingPlan:RestoreTestingPlan",
               "primary-backup-restore-testing")
    assert re.fullmatch(r"cron\(\d+ \d+ \? \* \* \*\)", plan.inputs["scheduleExpression"])
    vault = one(prod_bootstrap, "aws:backup/vault:Vault", "primary-backup-vault")
    assert plan.inputs["recoveryPointSelection"]["includeVaults"] == [vault.outputs["arn"]]
    selection = one(prod_bootstrap, "aws:backup/restoreTestingSelection:RestoreTestingSelection",
                    "primary-backup-restore-testing-selection")
    assert selection.inputs["protectedResourceType"] == "RDS"
    assert selection.inputs["protectedResourceArns"] == [prod_bootstrap.outputs["dbArn"]]
    assert selection.inputs["restoreTestingPlanName"] == plan.inputs["name"]


def test_standby_has_a_vault_but_backs_up_only_once_promoted(
        dr: ProgramRun, dr_promoted: ProgramRun) -> None:
    assert of_type(dr.resources, PLAN) == [], "a read replica is not backed up by AWS Backup"
    selection = one(dr_promoted, "aws:backup/selection:Selection", "standby-backup-selection")
    assert selection.inputs["resources"] == [dr_promoted.outputs["dbArn"]]


def _site(run: ProgramRun) -> str:
    return "primary" if run.stack == "prod" else "standby"


def test_restored_test_databases_land_in_the_private_subnets_unreachable(
        prod_bootstrap: ProgramRun, dr_promoted: ProgramRun) -> None:
    for run, site in ((prod_bootstrap, "primary"), (dr_promoted, "standby")):
        selection = one(run, "aws:backup/restoreTestingSelection:RestoreTestingSelection",
                        f"{site}-backup-restore-testing-selection")
        overrides = selection.inputs["restoreMetadataOverrides"]
        subnets = one(run, "aws:rds/subnetGroup:SubnetGroup", f"{site}-database-subnets")
        private = {r.resource_id for r in of_type(run.resources, "aws:ec2/subnet:Subnet")
                   if "-private-" in r.name}
        assert overrides["dbSubnetGroupName"] == subnets.outputs["name"]
        assert set(subnets.inputs["subnetIds"]) == private and private
        group = one(run, "aws:ec2/securityGroup:SecurityGroup", f"{site}-network-restore-test-sg")
        assert json.loads(overrides["vpcSecurityGroupIds"]) == [group.resource_id]
        assert group.inputs["ingress"] == [] and group.inputs["egress"] == [], \
            "the restored copy of PHI must be reachable from nowhere"
        used_by = [r.name for r in of_type(run.resources, "aws:rds/instance:Instance")
                   if group.resource_id in r.inputs.get("vpcSecurityGroupIds", [])]
        assert used_by == [], f"the restore-test group is also used by {used_by}"

"""AWS Backup for a site: a KMS-encrypted, locked vault and (where a writer runs) the plan.

* Plan: a backup every ``interval_hours`` (the seed: every 6 hours), deleted after
  ``retention_days`` (30), each recovery point copied to the standby region's vault.
* Selection: the site's database.
* Vault lock: governance mode by default (``changeable_for_days`` omitted), compliance mode as a
  setting (``changeable_for_days`` set; after that grace period nobody, not even root, can
  shorten retention or delete recovery points). Either way a breach cannot quietly purge backups.
* A daily restore-testing plan and selection for the database: the seed's "daily automated
  restore test", run by AWS Backup itself. The restored copy holds PHI, so its restore metadata
  is overridden (``restore_metadata_overrides``): the site's DB subnet group (private subnets)
  and a security group without any ingress or egress, not the default VPC AWS Backup would
  otherwise infer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from caresync_dr.names import backup_service_role_name, backup_vault_name, site_prefix
from components.iam import service_trust_policy

COMPLIANCE_GRACE_DAYS = 3  # AWS Backup's minimum cooling-off period before compliance locks
RESTORE_TEST_SCHEDULE = "cron(0 5 ? * * *)"  # daily, 05:00 UTC
BACKUP_SERVICE_POLICIES = (
    "arn:aws:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForBackup",
    "arn:aws:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForRestores",
)


def backup_schedule(interval_hours: int) -> str:
    """AWS Backup cron: minute 0 of every ``interval_hours``-th hour, every day."""
    return f"cron(0 0/{interval_hours} * * ? *)"


@dataclass(frozen=True)
class BackupPlanArgs:
    site: str
    kms_key_arn: pulumi.Input[str]
    retention_days: int
    interval_hours: int
    vault_lock_mode: str
    database_arn: pulumi.Input[str] | None  # None: vault only (a standby replica's site)
    copy_to_vault_arn: str | None  # the standby region's vault (dr stack output)
    # Where restore testing puts the restored database (required with database_arn).
    db_subnet_group_name: pulumi.Input[str] | None = None
    restore_test_security_group_id: pulumi.Input[str] | None = None


def restore_overrides(subnet_group: str, security_group: str) -> dict[str, str]:
    """RDS keys of AWS Backup's restore testing metadata (AWS Backup developer guide, "Restore
    testing inferred metadata"); ``vpcSecurityGroupIds`` is a JSON list in a string."""
    return {"dbSubnetGroupName": subnet_group,
            "vpcSecurityGroupIds": json.dumps([security_group])}


class BackupPlan(pulumi.ComponentResource):
    vault: aws.backup.Vault
    plan: aws.backup.Plan | None

    def __init__(self, name: str, args: BackupPlanArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("caresync:dr:BackupPlan", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        # Protected: pulumi refuses to delete the vault (and AWS refuses while it holds
        # recovery points), so `pulumi destroy` cannot take the backups with it.
        self.vault = aws.backup.Vault(f"{name}-vault", name=backup_vault_name(args.site),
                                      kms_key_arn=args.kms_key_arn,
                                      opts=pulumi.ResourceOptions(parent=self, protect=True))
        aws.backup.VaultLockConfiguration(
            f"{name}-vault-lock", backup_vault_name=self.vault.name,
            min_retention_days=1, max_retention_days=max(args.retention_days, 35),
            changeable_for_days=(COMPLIANCE_GRACE_DAYS if args.vault_lock_mode == "compliance"
                                 else None),
            # Every argument forces a replacement and the id is the vault's name: replaced
            # create-before-delete, the old one's delete would remove the lock just put
            # (governance -> compliance would leave the vault unlocked).
            opts=pulumi.ResourceOptions(parent=self, delete_before_replace=True))
        self.plan = None
        if args.database_arn is None:
            self.register_outputs({"vaultArn": self.vault.arn})
            return

        if args.db_subnet_group_name is None or args.restore_test_security_group_id is None:
            raise ValueError("restore testing of the database needs db_subnet_group_name and "
                             "restore_test_security_group_id (the restored copy holds PHI)")
        role = aws.iam.Role(
            f"{name}-role", name=backup_service_role_name(args.site),
            assume_role_policy=service_trust_policy("backup.amazonaws.com"), opts=child)
        for i, policy_arn in enumerate(BACKUP_SERVICE_POLICIES):
            aws.iam.RolePolicyAttachment(f"{name}-role-policy-{i + 1}", role=role.name,
                                         policy_arn=policy_arn, opts=child)
        lifecycle = aws.backup.PlanRuleLifecycleArgs(delete_after=args.retention_days)
        copy_actions = [] if args.copy_to_vault_arn is None else [
            aws.backup.PlanRuleCopyActionArgs(
                destination_vault_arn=args.copy_to_vault_arn,
                lifecycle=aws.backup.PlanRuleCopyActionLifecycleArgs(
                    delete_after=args.retention_days))]
        self.plan = aws.backup.Plan(
            f"{name}-plan", name=backup_vault_name(args.site),
            rules=[aws.backup.PlanRuleArgs(
                rule_name=f"every-{args.interval_hours}h", target_vault_name=self.vault.name,
                schedule=backup_schedule(args.interval_hours), start_window=60,
                completion_window=180, lifecycle=lifecycle, copy_actions=copy_actions)],
            opts=child)
        # Every argument of a selection forces a replacement (AWS Backup has no update) and
        # its name is fixed: a new writer on this site (a point-in-time restore's generation,
        # scripts/pitr.py) replaces it delete-first; the plan selects nothing only for the
        # seconds between the two calls.
        aws.backup.Selection(f"{name}-selection", name=f"{site_prefix(args.site)}-database",
                             plan_id=self.plan.id, iam_role_arn=role.arn,
                             resources=[args.database_arn],
                             opts=pulumi.ResourceOptions(parent=self,
                                                         delete_before_replace=True))
        restore_plan = aws.backup.RestoreTestingPlan(
            f"{name}-restore-testing", name=f"caresync_{args.site}_daily_restore_test",
            schedule_expression=RESTORE_TEST_SCHEDULE, start_window_hours=2,
            recovery_point_selection=aws.backup.RestoreTestingPlanRecoveryPointSelectionArgs(
                algorithm="LATEST_WITHIN_WINDOW", include_vaults=[self.vault.arn],
                recovery_point_types=["SNAPSHOT"], selection_window_days=1),
            opts=child)
        aws.backup.RestoreTestingSelection(
            f"{name}-restore-testing-selection", name=f"caresync_{args.site}_database",
            restore_testing_plan_name=restore_plan.name, protected_resource_type="RDS",
            protected_resource_arns=[args.database_arn], iam_role_arn=role.arn,
            validation_window_hours=2,
            restore_metadata_overrides=pulumi.Output.all(
                args.db_subnet_group_name, args.restore_test_security_group_id).apply(
                lambda v: restore_overrides(v[0], v[1])), opts=child)
        self.register_outputs({"vaultArn": self.vault.arn, "planId": self.plan.id})

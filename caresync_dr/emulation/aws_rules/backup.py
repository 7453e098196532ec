"""AWS Backup rules: vault-lock bounds against plan and copy lifetimes, windows, lock updates."""

from __future__ import annotations

import re

from caresync_dr.emulation.aws_rules.core import (
    ResourceLike,
    Rule,
    RunView,
    arn_resource_name,
    as_list,
    first,
    number,
)

PLAN = "aws:backup/plan:Plan"
VAULT = "aws:backup/vault:Vault"
LOCK = "aws:backup/vaultLockConfiguration:VaultLockConfiguration"
RESTORE_PLAN = "aws:backup/restoreTestingPlan:RestoreTestingPlan"
GUIDE = "https://docs.aws.amazon.com/aws-backup/latest/devguide/"


def _lock_for(view: RunView, vault_ref: object) -> ResourceLike | None:
    """The lock configuration of a vault named by name or ARN, if the run creates it."""
    name = arn_resource_name(vault_ref) if vault_ref else None
    for lock in view.of_type(LOCK):
        if lock.inputs.get("backupVaultName") in (vault_ref, name):
            return lock
    return None


def _outside(days: float | None, lock: ResourceLike) -> str | None:
    low = number(lock.inputs.get("minRetentionDays"))
    high = number(lock.inputs.get("maxRetentionDays"))
    if days is None:
        return "keeps recovery points forever" if high is not None else None
    if (low is not None and days < low) or (high is not None and days > high):
        return f"keeps recovery points {days:g} days, outside the lock's {low:g}-{high:g}" \
            if low is not None and high is not None else f"keeps them {days:g} days"
    return None


def lifetimes_within_lock(plan: ResourceLike, view: RunView) -> list[str]:
    problems = []
    for rule in as_list(plan.inputs.get("rules")):
        name = rule.get("ruleName")
        lock = _lock_for(view, rule.get("targetVaultName"))
        if lock is not None:
            days = number(first(rule.get("lifecycle")).get("deleteAfter"))
            outside = _outside(days, lock)
            if outside:
                problems.append(f"rule {name} {outside} of vault {rule.get('targetVaultName')}: "
                                "AWS Backup fails the backup job")
        for copy in as_list(rule.get("copyActions")):
            lock = _lock_for(view, copy.get("destinationVaultArn"))
            if lock is not None:
                days = number(first(copy.get("lifecycle")).get("deleteAfter"))
                outside = _outside(days, lock)
                if outside:
                    problems.append(f"rule {name}'s copy {outside} of the destination vault: "
                                    "the copy job fails")
    return problems


def plan_windows(plan: ResourceLike, view: RunView) -> list[str]:
    problems = []
    for rule in as_list(plan.inputs.get("rules")):
        start = number(rule.get("startWindow")) or 60
        completion = number(rule.get("completionWindow")) or 10080
        if start < 60:
            problems.append(f"rule {rule.get('ruleName')}: start_window {start:g} min is below "
                            "AWS Backup's 60-minute minimum")
        if completion < start + 60:
            problems.append(f"rule {rule.get('ruleName')}: completion_window must exceed "
                            "start_window by at least 60 minutes")
        schedule = str(rule.get("schedule") or "")
        if schedule and not re.fullmatch(r"cron\(.+\)|rate\(.+\)", schedule):
            problems.append(f"rule {rule.get('ruleName')}: schedule {schedule!r} is no cron() or "
                            "rate() expression")
    return problems


def lock_bounds(lock: ResourceLike, view: RunView) -> list[str]:
    low = number(lock.inputs.get("minRetentionDays"))
    high = number(lock.inputs.get("maxRetentionDays"))
    grace = number(lock.inputs.get("changeableForDays"))
    problems = []
    if low is not None and high is not None and low > high:
        problems.append(f"min_retention_days {low:g} exceeds max_retention_days {high:g}")
    if low is not None and low < 1:
        problems.append("min_retention_days must be at least 1")
    if grace is not None and grace < 3:
        problems.append(f"changeable_for_days {grace:g}: compliance mode needs a grace period of "
                        "at least 3 days")
    return problems


def lock_replaced_delete_first(lock: ResourceLike, view: RunView) -> list[str]:
    if lock.delete_before_replace:
        return []
    return ["every argument of a vault lock configuration forces a replacement and its id is the "
            "vault's name: replaced create-before-delete, the old one's delete removes the lock "
            "just put; set delete_before_replace"]


def restore_testing_plan(plan: ResourceLike, view: RunView) -> list[str]:
    problems = []
    name = str(plan.inputs.get("name") or "")
    if name and not re.fullmatch(r"[A-Za-z0-9_]{1,50}", name):
        problems.append(f"name {name!r}: 1-50 letters, digits and underscores")
    hours = number(plan.inputs.get("startWindowHours"))
    if hours is not None and not 1 <= hours <= 168:
        problems.append(f"start_window_hours {hours:g} is outside 1-168")
    return problems


RULES = [
    Rule("backup-lifetimes-within-vault-lock", "Plan and copy lifetimes fall inside the "
         "target vault's lock bounds", GUIDE + "vault-lock.html", (PLAN,),
         lifetimes_within_lock),
    Rule("backup-plan-windows", "Start window at least 60 min, completion window 60 min beyond "
         "it, a cron or rate schedule", GUIDE + "creating-a-backup-plan.html; AWS Backup API "
         "BackupRule", (PLAN,), plan_windows),
    Rule("backup-vault-lock-bounds", "Lock minimum <= maximum, compliance grace >= 3 days",
         GUIDE + "vault-lock.html; pulumi-aws aws.backup.VaultLockConfiguration",
         (LOCK,), lock_bounds),
    Rule("backup-vault-lock-delete-before-replace", "A replaced vault lock is deleted before "
         "the new one is put", "terraform-provider-aws internal/service/backup/"
         "vault_lock_configuration.go (all arguments ForceNew, id = vault name)", (LOCK,),
         lock_replaced_delete_first),
    Rule("backup-restore-testing-plan", "Restore-testing plan names and start windows",
         "pulumi-aws aws.backup.RestoreTestingPlan docstring", (RESTORE_PLAN,),
         restore_testing_plan),
]

"""RDS guardrails: encrypted with a customer-managed key, private, protected, retained, TLS only."""

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
    RDS_INSTANCE,
    RDS_PARAMETER_GROUP,
    check_each,
    items,
    of_type,
    prop,
    refers_to,
    resource_policy,
    stack_policy,
    truthy,
    with_settings,
)


def _arn_region(value: Any) -> str | None:
    parts = str(value or "").split(":")
    return parts[3] if len(parts) > 3 and parts[0] == "arn" else None


def replica_kind(props: Mapping[str, Any]) -> str:
    """'primary', 'cross-region replica' or 'in-region replica'.

    Every replica names its source by ARN (the provider requires it with a subnet group), so
    the kind is the source's region against the replica's own: its ``region`` when given, else
    its KMS key's (a cross-region replica must use a key of its own region)."""
    source = prop(props, "replicateSourceDb")
    if not source:
        return "primary"
    source_region = _arn_region(source)
    if source_region is None:
        return "in-region replica"  # an identifier names an instance of the same region
    own_region = prop(props, "region") or _arn_region(prop(props, "kmsKeyId"))
    return "in-region replica" if own_region == source_region else "cross-region replica"


def retiring(props: Mapping[str, Any]) -> bool:
    """A database generation being retired on purpose (components/database.py)."""
    return bool(prop(props, "tags", "caresync:lifecycle") == "retiring")


def encryption_problems(props: Mapping[str, Any]) -> list[str]:
    kind = replica_kind(props)
    encrypted = prop(props, "storageEncrypted")
    key = prop(props, "kmsKeyId")
    if encrypted is not None and not truthy(encrypted):
        return ["storage_encrypted is False: set storage_encrypted=True with kms_key_id"]
    if kind == "primary":
        if not truthy(encrypted):
            return ["storage is not encrypted: set storage_encrypted=True and kms_key_id to the "
                    "site's customer-managed KMS key"]
        if not key:
            return ["storage uses the AWS-managed aws/rds key: set kms_key_id to the site's "
                    "customer-managed KMS key ARN"]
    if kind == "cross-region replica" and not key:
        return ["a cross-region replica needs kms_key_id set to a KMS key of its own region"]
    return []


def public_problems(props: Mapping[str, Any]) -> list[str]:
    if truthy(prop(props, "publiclyAccessible")):
        return ["publicly_accessible is True: set publicly_accessible=False (patient data "
                "stays in private subnets)"]
    return []


def deletion_protection_problems(props: Mapping[str, Any]) -> list[str]:
    # The data-holding instances (writers and cross-region replicas, the DR copy) must be
    # protected; an in-region replica holds nothing its source lacks and must stay deletable
    # so dbReadReplicas can shrink, and a retiring generation is being deleted on purpose.
    if replica_kind(props) == "in-region replica" or retiring(props):
        return []
    if not truthy(prop(props, "deletionProtection")):
        return ["deletion_protection is off: set deletion_protection=True"]
    return []


def retention_problems(props: Mapping[str, Any], retention_days: int) -> list[str]:
    if replica_kind(props) == "in-region replica":
        return []   # it is never promoted across regions; its source keeps the backups
    period = prop(props, "backupRetentionPeriod")
    days = int(period) if period is not None else 0
    if days < retention_days:
        return [f"backup_retention_period is {period}: set it to at least {retention_days} "
                "(backupRetentionDays)"]
    return []


def force_ssl_problems(props: Mapping[str, Any]) -> list[str]:
    family = str(prop(props, "family") or "")
    if not family.startswith("postgres"):
        return []
    for parameter in items(prop(props, "parameters")):
        if prop(parameter, "name") == "rds.force_ssl":
            if str(prop(parameter, "value")) == "1":
                return []
            return [f"rds.force_ssl is {prop(parameter, 'value')!r}: set it to '1'"]
    return ["rds.force_ssl is not set: add parameters=[{name: 'rds.force_ssl', value: '1'}]"]


def parameter_group_named(props: Mapping[str, Any]) -> list[str]:
    name = prop(props, "parameterGroupName")
    if not name or str(name).startswith("default."):
        return [f"parameter_group_name is {name!r}: use the stack's parameter group that sets "
                "rds.force_ssl=1 (default groups allow plain-text connections)"]
    return []


def _retention(args: ResourceValidationArgs, report: ReportViolation) -> list[str]:
    settings = with_settings(args.urn, report)
    return [] if settings is None else retention_problems(args.props,
                                                          settings.backup_retention_days)


rds_encrypted = resource_policy(
    "rds-encrypted", "RDS storage is encrypted with a customer-managed key.", RDS_INSTANCE,
    lambda args, _: encryption_problems(args.props))
rds_not_public = resource_policy(
    "rds-not-public", "RDS instances are not publicly accessible.", RDS_INSTANCE,
    lambda args, _: public_problems(args.props))
rds_deletion_protection = resource_policy(
    "rds-deletion-protection",
    "RDS writers and cross-region replicas have deletion protection (in-region replicas and "
    "retiring generations excepted).", RDS_INSTANCE,
    lambda args, _: deletion_protection_problems(args.props))
rds_backup_retention = resource_policy(
    "rds-backup-retention",
    "RDS automated backups are kept at least backupRetentionDays (in-region replicas excepted).",
    RDS_INSTANCE, _retention)
rds_force_ssl_group = resource_policy(
    "rds-force-ssl", "PostgreSQL parameter groups set rds.force_ssl=1.", RDS_PARAMETER_GROUP,
    lambda args, _: force_ssl_problems(args.props))
rds_named_parameter_group = resource_policy(
    "rds-custom-parameter-group", "RDS instances use a custom (TLS-enforcing) parameter group.",
    RDS_INSTANCE, lambda args, _: parameter_group_named(args.props))


def _validate_instances_use_force_ssl(args: StackValidationArgs,
                                      report: ReportViolation) -> None:
    groups = of_type(args.resources, RDS_PARAMETER_GROUP)

    def one(instance: PolicyResource) -> None:
        used = [g for g in groups if refers_to(instance, "parameterGroupName", g, ("name",))]
        if not used:
            name = prop(instance.props, "parameterGroupName")
            report(f"{instance.name} uses parameter group {name!r}, which this stack does not "
                   "define: use the stack's group that sets rds.force_ssl=1", instance.urn)
        elif any(force_ssl_problems(g.props) for g in used):
            report(f"{instance.name} uses parameter group {used[0].name}, which does not set "
                   "rds.force_ssl=1: set it there", instance.urn)
    check_each(of_type(args.resources, RDS_INSTANCE), one)


rds_instances_force_ssl = stack_policy(
    "rds-instances-force-ssl",
    "Every RDS instance uses a parameter group of this stack with rds.force_ssl=1.",
    _validate_instances_use_force_ssl)

POLICIES = [rds_encrypted, rds_not_public, rds_deletion_protection, rds_backup_retention,
            rds_force_ssl_group, rds_named_parameter_group, rds_instances_force_ssl]

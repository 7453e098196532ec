"""S3 guardrails for pulumi-aws v7, where a bucket's settings are separate resources.

Each sub-resource is checked on its own (resource-level), and a stack-level rule checks that
every bucket is actually targeted by a compliant one: a bucket without any
BucketServerSideEncryptionConfiguration is not encrypted with KMS, whatever else is right.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping
from typing import Any

from pulumi_policy import PolicyResource, ReportViolation, StackValidationArgs

from caresync_dr.retention import BACKUP_PREFIX, INCIDENT_PREFIX, RECORDS_RETENTION_DAYS
from policy.context import (
    BUCKET,
    BUCKET_LIFECYCLE,
    BUCKET_PAB,
    BUCKET_POLICY,
    BUCKET_SSE,
    BUCKET_VERSIONING,
    check_each,
    items,
    of_type,
    plain,
    prop,
    refers_to,
    resource_policy,
    stack_policy,
    truthy,
    with_settings,
)

KMS_ALGORITHMS = ("aws:kms", "aws:kms:dsse")
# Buckets (by logical name) that may use SSE-S3 instead of KMS, each with the reason. A child
# resource belongs to the bucket whose name it starts with (``<bucket>-sse``).
SSE_S3_ALLOWED: dict[str, str] = {
    "traffic-switch-bucket": "Route 53's health checkers read the switch object anonymously and "
                             "cannot decrypt SSE-KMS; it holds one word and no patient data",
    **{f"{site}-audit-alb-logs": "Elastic Load Balancing delivers access logs only to buckets "
                                 "with SSE-S3 (ELB user guide, 'Enable access logs'); request "
                                 "metadata only, versioned, public access blocked, TLS-only"
       for site in ("primary", "standby")},
}
PUBLIC_ACCESS_FLAGS = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls",
                       "restrictPublicBuckets")
_SNAKE = {"blockPublicAcls": "block_public_acls", "blockPublicPolicy": "block_public_policy",
          "ignorePublicAcls": "ignore_public_acls",
          "restrictPublicBuckets": "restrict_public_buckets"}


# --- checks on one sub-resource's properties (each returns what to change) -------------------

def sse_s3_allowed(name: str) -> bool:
    return any(name == bucket or name.startswith(f"{bucket}-") for bucket in SSE_S3_ALLOWED)


def sse_problems(props: Mapping[str, Any], allow_sse_s3: bool = False) -> list[str]:
    rules = items(prop(props, "rules"))
    if not rules:
        return ["has no rules: add a rule with apply_server_side_encryption_by_default="
                "{sse_algorithm: 'aws:kms', kms_master_key_id: <the site's KMS key ARN>}"]
    problems = []
    for index, rule in enumerate(rules):
        algorithm = prop(rule, "applyServerSideEncryptionByDefault", "sseAlgorithm")
        key = prop(rule, "applyServerSideEncryptionByDefault", "kmsMasterKeyId")
        if allow_sse_s3 and algorithm == "AES256":
            continue
        if algorithm not in KMS_ALGORITHMS:
            problems.append(f"rules[{index}] encrypts with {algorithm!r}: set sse_algorithm to "
                            "'aws:kms' and kms_master_key_id to the site's customer-managed key")
        elif not key:
            problems.append(f"rules[{index}] uses the AWS-managed aws/s3 key: set "
                            "kms_master_key_id to the site's customer-managed KMS key ARN")
    return problems


def versioning_problems(props: Mapping[str, Any]) -> list[str]:
    status = prop(props, "versioningConfiguration", "status")
    if status != "Enabled":
        return [f"versioning status is {status!r}: set versioning_configuration="
                "{status: 'Enabled'} (backups and replication need object versions)"]
    return []


def public_access_problems(props: Mapping[str, Any]) -> list[str]:
    off = [flag for flag in PUBLIC_ACCESS_FLAGS if not truthy(prop(props, flag))]
    if off:
        return ["public access is not fully blocked: set "
                + ", ".join(f"{_SNAKE[flag]}=True" for flag in off)]
    return []


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _denies_insecure_transport(statement: Mapping[str, Any]) -> bool:
    if statement.get("Effect") != "Deny":
        return False
    principal = statement.get("Principal")
    if principal not in ("*", {"AWS": "*"}):
        return False
    actions = _as_list(statement.get("Action", []))
    if "s3:*" not in actions and "*" not in actions:
        return False
    resources = [str(r) for r in _as_list(statement.get("Resource", []))]
    if not any(r.endswith("/*") for r in resources) or not any(
            not r.endswith("/*") for r in resources):
        return False
    condition = statement.get("Condition", {})
    secure = condition.get("Bool", {}).get("aws:SecureTransport") if isinstance(
        condition, dict) else None
    return str(secure).lower() == "false"


def tls_policy_problems(props: Mapping[str, Any]) -> list[str]:
    document = plain(prop(props, "policy"))
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except json.JSONDecodeError:
            return ["policy is not valid JSON"]
    statements = _as_list(document.get("Statement", [])) if isinstance(document, dict) else []
    if not any(isinstance(s, dict) and _denies_insecure_transport(s) for s in statements):
        return ["no statement denies plain-HTTP access: add {Effect: Deny, Principal: '*', "
                "Action: 's3:*', Resource: [<bucket ARN>, <bucket ARN>/*], Condition: {Bool: "
                "{'aws:SecureTransport': 'false'}}}"]
    return []


def _scope(rule: Mapping[str, Any]) -> str | None:
    """The key prefix a lifecycle rule applies to ("" = every object), or None when its filter
    has conditions other than a prefix (tags, sizes, ``and``): such a rule may skip objects."""
    filter_ = prop(rule, "filter")
    prefix = prop(rule, "prefix")
    if isinstance(filter_, Mapping):
        if any(prop(filter_, key) for key in filter_ if key != "prefix"):
            return None
        prefix = prop(filter_, "prefix") or prefix
    return str(prefix or "")


def _covers(rule: Mapping[str, Any], key_prefix: str) -> bool:
    """True when the enabled rule applies to every key under ``key_prefix``."""
    scope = _scope(rule)
    return prop(rule, "status") == "Enabled" and scope is not None and key_prefix.startswith(
        scope)


def _touches(rule: Mapping[str, Any], key_prefix: str) -> bool:
    """True when the enabled rule applies to some key under ``key_prefix``."""
    scope = _scope(rule)
    if prop(rule, "status") != "Enabled":
        return False
    if scope is None:  # a filtered rule with a prefix may still reach into key_prefix
        filter_ = prop(rule, "filter")
        scope = str(prop(filter_, "and", "prefix") or prop(filter_, "prefix") or "") if \
            isinstance(filter_, Mapping) else ""
    return key_prefix.startswith(scope) or scope.startswith(key_prefix)


def expiry_problems(props: Mapping[str, Any], retention_days: int,
                    backup_prefix: str = BACKUP_PREFIX,
                    kept: Mapping[str, int] | None = None) -> list[str]:
    """Backups (keys under ``backup_prefix``) expire after exactly ``retention_days``, and no
    rule expires records under a kept prefix (``incidents/``) before its retention."""
    kept = {INCIDENT_PREFIX: RECORDS_RETENTION_DAYS} if kept is None else kept
    rules = items(prop(props, "rules"))
    problems = []
    for prefix, days in kept.items():
        for rule in rules:
            expires = prop(rule, "expiration", "days")
            if _touches(rule, prefix) and expires is not None and int(expires) < days:
                problems.append(
                    f"rule {prop(rule, 'id')!r} expires {prefix} objects after {int(expires)} "
                    f"days but they must be kept {days}: scope it to {backup_prefix!r}")
    days_seen = sorted({int(d) for rule in rules if _covers(rule, backup_prefix)
                        for d in [prop(rule, "expiration", "days")] if d is not None})
    if not days_seen:
        problems.append(f"no enabled rule expires {backup_prefix!r} (or the whole bucket): add "
                        f"a rule with filter={{prefix: {backup_prefix!r}}} and "
                        f"expiration={{days: {retention_days}}} (backupRetentionDays)")
    elif days_seen[0] != retention_days:
        problems.append(f"backups expire after {days_seen[0]} days but backupRetentionDays is "
                        f"{retention_days}: set expiration={{days: {retention_days}}} on the "
                        f"enabled rule for {backup_prefix!r}")
    return problems


# --- resource-level policies ------------------------------------------------------------------

s3_encryption_kms = resource_policy(
    "s3-encryption-kms", "S3 default encryption uses a customer-managed KMS key (the traffic "
    "switch and ALB access-log buckets may use SSE-S3: see SSE_S3_ALLOWED).", BUCKET_SSE,
    lambda args, _: sse_problems(args.props, sse_s3_allowed(args.name)))
s3_versioning = resource_policy(
    "s3-versioning-enabled", "S3 bucket versioning is Enabled.", BUCKET_VERSIONING,
    lambda args, _: versioning_problems(args.props))
s3_public_access = resource_policy(
    "s3-public-access-blocked", "All four S3 public-access blocks are on.", BUCKET_PAB,
    lambda args, _: public_access_problems(args.props))
s3_tls_only = resource_policy(
    "s3-tls-only-policy", "S3 bucket policies deny requests without TLS.", BUCKET_POLICY,
    lambda args, _: tls_policy_problems(args.props))


# --- stack-level: every bucket is targeted by a compliant sub-resource -------------------------

def is_backup_bucket(bucket: PolicyResource) -> bool:
    """A bucket holding backups: tagged ``purpose: backups`` or named ``...backup...``."""
    tags = prop(bucket.props, "tags")
    if isinstance(tags, Mapping):
        for key in ("purpose", "Purpose", "caresync:purpose"):
            if key in tags and "backup" in str(tags[key]).lower():
                return True
    return "backup" in bucket.name.lower()


_REQUIREMENTS: tuple[tuple[str, tuple[str, ...], Any, str], ...] = (
    ("KMS default encryption", BUCKET_SSE, sse_problems,
     "aws.s3.BucketServerSideEncryptionConfiguration with sse_algorithm 'aws:kms' and the "
     "site's KMS key"),
    ("versioning", BUCKET_VERSIONING, versioning_problems,
     "aws.s3.BucketVersioning with status 'Enabled'"),
    ("public-access block", BUCKET_PAB, public_access_problems,
     "aws.s3.BucketPublicAccessBlock with all four flags True"),
    ("TLS-only bucket policy", BUCKET_POLICY, tls_policy_problems,
     "aws.s3.BucketPolicy denying aws:SecureTransport = false"),
)


def _validate_buckets(args: StackValidationArgs, report: ReportViolation) -> None:
    def one(pair: tuple[PolicyResource, tuple[str, tuple[str, ...], Any, str]]) -> None:
        bucket, (label, types, check, remedy) = pair
        targeting = [r for r in of_type(args.resources, types)
                     if refers_to(r, "bucket", bucket, ("bucket",))]

        def ok(r: PolicyResource) -> bool:
            if check is sse_problems:
                return not sse_problems(r.props, sse_s3_allowed(bucket.name))
            return not check(r.props)

        if not any(ok(r) for r in targeting):
            state = "no compliant" if targeting else "no"
            report(f"bucket {bucket.name} has {state} {label}: add {remedy} "
                   f"targeting it", bucket.urn)
    check_each(itertools.product(of_type(args.resources, BUCKET), _REQUIREMENTS), one)


s3_bucket_complete = stack_policy(
    "s3-bucket-guardrails-complete",
    "Every S3 bucket has KMS encryption, versioning, all public-access blocks and a TLS-only "
    "policy attached.", _validate_buckets)


def _validate_backup_expiry(args: StackValidationArgs, report: ReportViolation) -> None:
    backup_buckets = [b for b in of_type(args.resources, BUCKET) if is_backup_bucket(b)]
    if not backup_buckets:
        return
    settings = with_settings(backup_buckets[0].urn, report)
    if settings is None:
        return

    def one(bucket: PolicyResource) -> None:
        configs = [r for r in of_type(args.resources, BUCKET_LIFECYCLE)
                   if refers_to(r, "bucket", bucket, ("bucket",))]
        if not configs:
            report(f"backup bucket {bucket.name} has no lifecycle configuration: add "
                   f"aws.s3.BucketLifecycleConfiguration expiring objects after "
                   f"{settings.backup_retention_days} days (backupRetentionDays)", bucket.urn)
            return
        # One lifecycle configuration per bucket is what S3 stores (a second replaces the
        # first), so every configuration must be right.
        for config in configs:
            for problem in expiry_problems(config.props, settings.backup_retention_days):
                report(f"backup bucket {bucket.name}: {problem}", bucket.urn)
    check_each(backup_buckets, one)

s3_backup_expiry = stack_policy(
    "s3-backup-expiry", "Backup buckets expire backups (backups/) after exactly "
    "backupRetentionDays and keep incident records (incidents/) six years.",
    _validate_backup_expiry)

POLICIES = [s3_encryption_kms, s3_versioning, s3_public_access, s3_tls_only,
            s3_bucket_complete, s3_backup_expiry]

"""Every bucket: encrypted, versioned, lifecycle, public access blocked, TLS-only policy."""

from __future__ import annotations

from caresync_dr.backup.storage import DEFAULT_PREFIX
from caresync_dr.offline.runtime import ProgramRun, of_type
from caresync_dr.retention import BACKUP_PREFIX, INCIDENT_PREFIX
from tests.stack.checks import attached, check, listify, one, policy

BUCKET = "aws:s3/bucket:Bucket"
SWITCH_BUCKET = "traffic-switch-bucket"
# Audit buckets (components/audit.py) keep everything six years; ALB logs are SSE-S3.
AUDIT_BUCKETS = {"primary-audit-bucket", "standby-audit-bucket"}
WAF_LOG_BUCKETS = {"primary-waf-logs", "standby-waf-logs"}  # components/waf.py, also six years
ALB_LOG_BUCKETS = {"primary-audit-alb-logs", "standby-audit-alb-logs"}


def test_every_bucket_has_the_hipaa_defaults(any_stack: ProgramRun) -> None:
    buckets = of_type(any_stack.resources, BUCKET)
    assert buckets, f"stack {any_stack.stack} registered no bucket"
    for bucket in buckets:
        bid = bucket.resource_id
        sse = attached(any_stack, "aws:s3/bucketServerSideEncryptionConfiguration:"
                       "BucketServerSideEncryptionConfiguration", bid)
        check(bucket, len(sse) == 1, "has no default encryption")
        rule = sse[0].inputs["rules"][0]
        algorithm = rule["applyServerSideEncryptionByDefault"]["sseAlgorithm"]
        if bucket.name == SWITCH_BUCKET or bucket.name in ALB_LOG_BUCKETS:
            # Route 53 checkers read anonymously; ELB delivers access logs only to SSE-S3
            # buckets: SSE-S3 (AES-256) for both.
            check(bucket, algorithm == "AES256", f"bucket uses {algorithm}, not SSE-S3")
        else:
            key = rule["applyServerSideEncryptionByDefault"].get("kmsMasterKeyId", "")
            check(bucket, algorithm == "aws:kms" and rule.get("bucketKeyEnabled") is True,
                  f"not SSE-KMS with a bucket key: {rule}")
            region = bucket.outputs["region"]
            check(bucket, key.startswith(f"arn:aws:kms:{region}:"),
                  f"KMS key {key!r} is not a key of the bucket's region {region}")

        versioning = attached(any_stack, "aws:s3/bucketVersioning:BucketVersioning", bid)
        check(bucket, len(versioning) == 1 and
              versioning[0].inputs["versioningConfiguration"]["status"] == "Enabled",
              "versioning is not enabled")

        lifecycle = attached(any_stack, "aws:s3/bucketLifecycleConfiguration:"
                             "BucketLifecycleConfiguration", bid)
        check(bucket, len(lifecycle) == 1, "has no lifecycle")
        rules = {r["id"]: r for r in lifecycle[0].inputs["rules"]}
        check(bucket, all(r["status"] == "Enabled" for r in rules.values()),
              "a lifecycle rule is disabled")
        abort = rules["abort-incomplete-uploads"]
        check(bucket, abort["filter"]["prefix"] == ""
              and abort["abortIncompleteMultipartUpload"]["daysAfterInitiation"] >= 1,
              "incomplete uploads are not aborted bucket-wide")
        rule = rules["retention"]
        if bucket.name in AUDIT_BUCKETS | ALB_LOG_BUCKETS | WAF_LOG_BUCKETS:
            check(bucket, rule["filter"]["prefix"] == "" and rule["expiration"]["days"] == 2190
                  and rule["noncurrentVersionExpiration"]["noncurrentDays"] == 2190,
                  f"audit logs are not kept six years (2190 days): {rule}")
            check(bucket, set(rules) == {"retention", "abort-incomplete-uploads"},
                  f"unexpected lifecycle rules {sorted(rules)}")
        else:
            check(bucket, rule["noncurrentVersionExpiration"]["noncurrentDays"] == 30,
                  "noncurrent versions are not expired after 30 days")
            if bucket.name == SWITCH_BUCKET:
                check(bucket, "expiration" not in rule,
                      "the switch object must never expire (an expired switch reads as PRIMARY)")
            else:
                check(bucket, rule["filter"]["prefix"] == BACKUP_PREFIX
                      and rule["expiration"]["days"] == 30,
                      "backups/ is not expired after backupRetentionDays (30)")
                keep = rules["keep-incidents"]
                check(bucket, keep["filter"]["prefix"] == INCIDENT_PREFIX
                      and keep["expiration"]["days"] == 2190
                      and keep["noncurrentVersionExpiration"]["noncurrentDays"] == 2190,
                      "incident timelines are not kept six years (2190 days)")
                check(bucket, set(rules) == {"retention", "keep-incidents",
                                             "abort-incomplete-uploads"},
                      f"unexpected lifecycle rules {sorted(rules)}")

        blocks = attached(any_stack, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
                          bid)
        check(bucket, len(blocks) == 1, "has no public access block")
        for flag in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls",
                     "restrictPublicBuckets"):
            check(bucket, blocks[0].inputs.get(flag) is True, f"{flag} is not true")

        policies = attached(any_stack, "aws:s3/bucketPolicy:BucketPolicy", bid)
        check(bucket, len(policies) == 1, "has no bucket policy")
        statements = policy(policies[0])["Statement"]
        arn = bucket.outputs["arn"]
        tls = [s for s in statements if s["Effect"] == "Deny"
               and s.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false"]
        check(bucket, len(tls) == 1, "policy does not deny requests without TLS")
        check(bucket, tls[0]["Principal"] == "*" and tls[0]["Action"] == "s3:*"
              and set(listify(tls[0]["Resource"])) == {arn, f"{arn}/*"},
              f"TLS deny does not cover every principal, action and object: {tls[0]}")
        allows = [s for s in statements if s["Effect"] == "Allow"]
        if bucket.name == SWITCH_BUCKET or bucket.name in ALB_LOG_BUCKETS:
            check(bucket, len(allows) == 1, f"unexpected grants: {allows}")
        elif bucket.name in AUDIT_BUCKETS:
            # Log delivery only (tests/stack/test_audit.py checks each statement).
            check(bucket, {str(s["Principal"].get("Service")) for s in allows} ==
                  {"cloudtrail.amazonaws.com", "delivery.logs.amazonaws.com"},
                  f"unexpected grants: {allows}")
        elif bucket.name in WAF_LOG_BUCKETS:
            check(bucket, {str(s["Principal"].get("Service")) for s in allows} ==
                  {"delivery.logs.amazonaws.com"}, f"unexpected grants: {allows}")
        else:
            check(bucket, not allows, f"backup bucket policy grants access: {allows}")


def test_each_site_has_one_backup_bucket_named_for_operators(any_stack: ProgramRun) -> None:
    site = "primary" if any_stack.stack == "prod" else "standby"
    bucket = one(any_stack, BUCKET, f"{site}-backups-bucket")
    assert bucket.inputs["bucket"] == f"caresync-{site}-backups-111122223333"
    assert any_stack.outputs["backupBucketName"] == bucket.inputs["bucket"]
    assert any_stack.outputs["backupBucketArn"] == bucket.outputs["arn"]


def test_primary_bucket_replicates_to_the_standby_bucket_once_linked(
        prod_bootstrap: ProgramRun, prod_linked: ProgramRun, dr: ProgramRun) -> None:
    replication = "aws:s3/bucketReplicationConfig:BucketReplicationConfig"
    assert of_type(prod_bootstrap.resources, replication) == [], \
        "bootstrap prod must not replicate to a standby bucket that does not exist yet"
    config = one(prod_linked, replication, "primary-backups-replication")
    (rule,) = config.inputs["rules"]
    destination = rule["destination"]
    assert destination["bucket"] == dr.outputs["backupBucketArn"]
    assert destination["encryptionConfiguration"]["replicaKmsKeyId"] == dr.outputs["kmsKeyArn"]
    assert rule["sourceSelectionCriteria"]["sseKmsEncryptedObjects"]["status"] == "Enabled"
    primary_bucket = one(prod_linked, BUCKET, "primary-backups-bucket")
    assert config.inputs["bucket"] == primary_bucket.resource_id

    role_policy = one(prod_linked, "aws:iam/rolePolicy:RolePolicy",
                      "primary-backups-replication-policy")
    statements = {s["Sid"]: s for s in policy(role_policy)["Statement"]}
    assert statements["DecryptWithSourceKey"]["Resource"] == prod_linked.outputs["kmsKeyArn"]
    assert statements["EncryptWithStandbyKey"]["Resource"] == dr.outputs["kmsKeyArn"]
    assert statements["WriteReplicas"]["Resource"] == f"{dr.outputs['backupBucketArn']}/*"
    for statement in statements.values():
        assert "*" not in listify(statement["Resource"]), statement


def test_lifecycle_prefixes_match_where_the_tools_write() -> None:
    # scripts/backup.py uploads under DEFAULT_PREFIX; failover writes incidents/<run>.md.
    assert DEFAULT_PREFIX == BACKUP_PREFIX == "backups/"
    assert INCIDENT_PREFIX == "incidents/"

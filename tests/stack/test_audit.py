"""Audit logging (DESIGN principle 7, HIPAA 164.312(b)): CloudTrail, audit bucket, flow logs,
ALB access logs; one trail per site (components/audit.py says why)."""

from __future__ import annotations

import json
from typing import Any

from caresync_dr.offline.runtime import ProgramRun, RegisteredResource, of_type
from tests.stack.checks import attached, check, listify, one, policy

TRAIL = "aws:cloudtrail/trail:Trail"
BUCKET = "aws:s3/bucket:Bucket"
ACCOUNT = "111122223333"


def _site(run: ProgramRun) -> str:
    return "primary" if run.stack == "prod" else "standby"


def _statements(run: ProgramRun, bucket: RegisteredResource) -> dict[str, dict[str, Any]]:
    (doc,) = attached(run, "aws:s3/bucketPolicy:BucketPolicy", bucket.resource_id)
    return {s.get("Sid", ""): s for s in policy(doc)["Statement"]}


def test_trail_validates_encrypts_and_delivers_to_the_audit_bucket(any_stack: ProgramRun) -> None:
    site = _site(any_stack)
    (trail,) = of_type(any_stack.resources, TRAIL)
    bucket = one(any_stack, BUCKET, f"{site}-audit-bucket")
    check(trail, trail.inputs["enableLogFileValidation"] is True, "no log file validation")
    check(trail, trail.inputs["kmsKeyId"] == any_stack.outputs["kmsKeyArn"],
          "log files not encrypted with the site key")
    check(trail, trail.inputs["s3BucketName"] == bucket.outputs["bucket"],
          "not delivered to the audit bucket")
    check(trail, trail.inputs.get("enableLogging", True) is True, "logging disabled")
    (selector,) = trail.inputs["eventSelectors"]
    check(trail, selector["includeManagementEvents"] is True
          and selector["readWriteType"] == "All", "management events not fully recorded")
    assert any_stack.outputs["auditTrailArn"] == (
        f"arn:aws:cloudtrail:{bucket.outputs['region']}:{ACCOUNT}:trail/caresync-{site}-audit")


def test_prod_trail_is_multi_region_and_dr_records_its_own_region(
        prod_linked: ProgramRun, dr: ProgramRun) -> None:
    (prod_trail,) = of_type(prod_linked.resources, TRAIL)
    (dr_trail,) = of_type(dr.resources, TRAIL)
    assert prod_trail.inputs["isMultiRegionTrail"] is True
    assert prod_trail.inputs["includeGlobalServiceEvents"] is True
    # dr's own trail keeps recording in the surviving region during a primary-region outage.
    assert dr_trail.inputs["isMultiRegionTrail"] is False
    assert dr_trail.inputs["includeGlobalServiceEvents"] is False
    assert dr_trail.outputs["region"] == "us-west-2"


def test_data_events_cover_the_backup_and_switch_buckets(
        prod_linked: ProgramRun, dr: ProgramRun) -> None:
    def data_values(run: ProgramRun) -> set[str]:
        (trail,) = of_type(run.resources, TRAIL)
        (selector,) = trail.inputs["eventSelectors"]
        (resource,) = selector["dataResources"]
        assert resource["type"] == "AWS::S3::Object"
        return set(resource["values"])

    assert data_values(prod_linked) == {f"arn:aws:s3:::{prod_linked.outputs['backupBucketName']}/"}
    assert data_values(dr) == {f"arn:aws:s3:::{dr.outputs['backupBucketName']}/",
                               f"arn:aws:s3:::{dr.outputs['trafficSwitchBucket']}/"}


def test_audit_bucket_policy_admits_only_this_trail_and_this_accounts_flow_logs(
        any_stack: ProgramRun) -> None:
    site = _site(any_stack)
    bucket = one(any_stack, BUCKET, f"{site}-audit-bucket")
    arn, trail = bucket.outputs["arn"], any_stack.outputs["auditTrailArn"]
    sts = _statements(any_stack, bucket)
    assert sts["CloudTrailAclCheck"]["Action"] == "s3:GetBucketAcl"
    assert sts["CloudTrailAclCheck"]["Resource"] == arn
    write = sts["CloudTrailWrite"]
    assert write["Principal"] == {"Service": "cloudtrail.amazonaws.com"}
    assert write["Resource"] == f"{arn}/AWSLogs/{ACCOUNT}/*"
    assert write["Condition"]["StringEquals"] == {
        "s3:x-amz-acl": "bucket-owner-full-control", "aws:SourceArn": trail}
    flow = sts["FlowLogsWrite"]
    assert flow["Principal"] == {"Service": "delivery.logs.amazonaws.com"}
    assert flow["Resource"] == f"{arn}/vpc-flow-logs/AWSLogs/{ACCOUNT}/*"
    assert flow["Condition"]["StringEquals"]["aws:SourceAccount"] == ACCOUNT
    assert "DenyInsecureTransport" in sts
    allows = [s for s in sts.values() if s["Effect"] == "Allow"]
    assert all(s["Principal"] != "*" and "Service" in s["Principal"] for s in allows)


def test_vpc_flow_logs_go_to_the_audit_bucket(any_stack: ProgramRun) -> None:
    site = _site(any_stack)
    (flow,) = of_type(any_stack.resources, "aws:ec2/flowLog:FlowLog")
    bucket = one(any_stack, BUCKET, f"{site}-audit-bucket")
    assert flow.inputs["vpcId"] == any_stack.outputs["vpcId"]
    assert flow.inputs["trafficType"] == "ALL"
    assert flow.inputs["logDestinationType"] == "s3"
    assert flow.inputs["logDestination"] == f"{bucket.outputs['arn']}/vpc-flow-logs/"


def test_alb_access_logs_go_to_an_sse_s3_bucket_elb_may_write(any_stack: ProgramRun) -> None:
    site = _site(any_stack)
    logs = one(any_stack, BUCKET, f"{site}-audit-alb-logs")
    alb = one(any_stack, "aws:lb/loadBalancer:LoadBalancer", f"{site}-app-alb")
    access = alb.inputs["accessLogs"]
    assert access == {"bucket": logs.outputs["bucket"], "enabled": True, "prefix": "alb"}
    assert any_stack.outputs["albLogBucketName"] == logs.outputs["bucket"]
    (sse,) = attached(any_stack, "aws:s3/bucketServerSideEncryptionConfiguration:"
                      "BucketServerSideEncryptionConfiguration", logs.resource_id)
    assert sse.inputs["rules"][0]["applyServerSideEncryptionByDefault"] == {
        "sseAlgorithm": "AES256"}, "ELB access-log delivery supports SSE-S3 only"
    elb = _statements(any_stack, logs)["ElbAccessLogsWrite"]
    # The ELB log-delivery account of the region (ELB user guide, "Enable access logs").
    elb_account = {"prod": "127311923021", "dr": "797873946194"}[any_stack.stack]
    assert elb["Principal"] == {"AWS": f"arn:aws:iam::{elb_account}:root"}
    assert listify(elb["Action"]) == ["s3:PutObject"]
    assert elb["Resource"] == f"{logs.outputs['arn']}/alb/AWSLogs/{ACCOUNT}/*"


def test_site_key_lets_cloudtrail_and_log_delivery_encrypt(any_stack: ProgramRun) -> None:
    (key,) = of_type(any_stack.resources, "aws:kms/key:Key")
    doc = json.loads(key.inputs["policy"])
    sts = {s["Sid"]: s for s in doc["Statement"]}
    trail = sts["CloudTrailEncryptsLogs"]
    assert trail["Principal"] == {"Service": "cloudtrail.amazonaws.com"}
    assert trail["Condition"]["StringLike"] == {
        "kms:EncryptionContext:aws:cloudtrail:arn": f"arn:aws:cloudtrail:*:{ACCOUNT}:trail/*"}
    delivery = sts["LogDeliveryEncryptsFlowLogs"]
    assert "kms:GenerateDataKey*" in delivery["Action"]
    assert delivery["Condition"]["StringEquals"] == {"aws:SourceAccount": ACCOUNT}

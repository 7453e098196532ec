"""How the dry-run proof classifies AWS calls: an operation it does not know is a change."""

from __future__ import annotations

import pytest

from caresync_dr.operations import classify


@pytest.mark.parametrize(("service", "operation", "kind"), [
    ("ssm", "GetParameter", "read"), ("rds", "DescribeDBInstances", "read"),
    ("s3", "HeadObject", "read"), ("s3", "ListObjectsV2", "read"),
    ("kms", "Decrypt", "read"), ("cloudwatch", "GetMetricStatistics", "read"),
    ("ssm", "PutParameter", "change"), ("rds", "PromoteReadReplica", "change"),
    ("s3", "PutObject", "change"), ("sns", "Publish", "change"),
    ("autoscaling", "UpdateAutoScalingGroup", "change"),
    ("rds", "RestoreDBInstanceToPointInTime", "change"),
    ("ec2", "RevokeSecurityGroupIngress", "change"), ("newsvc", "FrobnicateWidget", "change"),
])
def test_classify(service: str, operation: str, kind: str) -> None:
    assert classify(service, operation) == kind

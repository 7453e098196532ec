"""S3 replication, performed as S3 would (moto stores the configuration and copies nothing)."""

from __future__ import annotations

from typing import Any

import boto3

from caresync_dr.emulation.s3 import Replicated, replicate
from caresync_dr.emulation.server import ACCOUNT_ID, Emulator

REPLICA_KEY = "arn:aws:kms:us-west-2:111122223333:key/standby"


def _buckets(rule: dict[str, Any]) -> tuple[Any, Any]:
    east = boto3.client("s3", region_name="us-east-1")
    west = boto3.client("s3", region_name="us-west-2")
    east.create_bucket(Bucket="primary-backups")
    west.create_bucket(Bucket="standby-backups",
                       CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
    for client, bucket in ((east, "primary-backups"), (west, "standby-backups")):
        client.put_bucket_versioning(Bucket=bucket,
                                     VersioningConfiguration={"Status": "Enabled"})
    config: Any = {
        "Role": "arn:aws:iam::111122223333:role/replication", "Rules": [{
            "ID": "to-standby", "Status": "Enabled", "Priority": 1,
            "DeleteMarkerReplication": {"Status": "Disabled"},
            "Destination": {"Bucket": "arn:aws:s3:::standby-backups",
                            "StorageClass": "STANDARD_IA",
                            "EncryptionConfiguration": {"ReplicaKmsKeyID": REPLICA_KEY}},
            **rule}]}
    east.put_bucket_replication(Bucket="primary-backups", ReplicationConfiguration=config)
    return east, west


def test_new_objects_are_copied_under_the_replica_key(aws: Emulator) -> None:
    east, west = _buckets({"Filter": {"Prefix": "backups/"}, "SourceSelectionCriteria": {
        "SseKmsEncryptedObjects": {"Status": "Enabled"}}})
    east.put_object(Bucket="primary-backups", Key="backups/b1.dump.enc", Body=b"data",
                    ServerSideEncryption="aws:kms")
    east.put_object(Bucket="primary-backups", Key="incidents/x.md", Body=b"not in the rule")
    assert replicate(ACCOUNT_ID, "primary-backups") == [
        Replicated("backups/b1.dump.enc", "primary-backups", "standby-backups", REPLICA_KEY)]
    copy = west.get_object(Bucket="standby-backups", Key="backups/b1.dump.enc")
    assert copy["Body"].read() == b"data"
    assert (copy["ServerSideEncryption"], copy["SSEKMSKeyId"], copy["StorageClass"]) == (
        "aws:kms", REPLICA_KEY, "STANDARD_IA")
    assert replicate(ACCOUNT_ID, "primary-backups") == []  # already there: nothing to copy
    keys = [o["Key"] for o in west.list_objects_v2(Bucket="standby-backups")["Contents"]]
    assert keys == ["backups/b1.dump.enc"]


def test_sse_kms_objects_need_the_rule_to_opt_in(aws: Emulator) -> None:
    east, _ = _buckets({"Filter": {"Prefix": ""}})
    east.put_object(Bucket="primary-backups", Key="backups/b1.dump.enc", Body=b"data",
                    ServerSideEncryption="aws:kms")
    east.put_object(Bucket="primary-backups", Key="plain.txt", Body=b"plain")
    assert [r.key for r in replicate(ACCOUNT_ID, "primary-backups")] == ["plain.txt"]
    assert replicate(ACCOUNT_ID, "standby-backups") == []  # no configuration, no copies

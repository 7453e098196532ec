"""The preview as a table: type, name and the few properties a reviewer looks at first."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

# What matters per type; other types show their first scalar properties.
KEY_PROPERTIES: dict[str, tuple[str, ...]] = {
    "aws:rds/instance:Instance": ("identifier", "instanceClass", "replicateSourceDb",
                                  "storageEncrypted", "backupRetentionPeriod",
                                  "deletionProtection", "multiAz"),
    "aws:s3/bucket:Bucket": ("bucket",),
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration":
        ("rules",),
    "aws:s3/bucketVersioning:BucketVersioning": ("versioningConfiguration",),
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": ("rules",),
    "aws:route53/record:Record": ("name", "type", "setIdentifier", "failoverRoutingPolicies",
                                  "healthCheckId"),
    "aws:route53/healthCheck:HealthCheck": ("type", "fqdn", "resourcePath", "requestInterval",
                                            "failureThreshold", "invertHealthcheck"),
    "aws:backup/plan:Plan": ("rules",),
    "aws:autoscaling/group:Group": ("minSize", "desiredCapacity", "maxSize"),
    "aws:ec2/securityGroup:SecurityGroup": ("name", "ingress"),
    "aws:lb/loadBalancer:LoadBalancer": ("name", "internal", "loadBalancerType"),
    "aws:ec2/vpc:Vpc": ("cidrBlock",),
    "aws:kms/key:Key": ("enableKeyRotation", "multiRegion"),
}
WIDTH = 160


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return text if len(text) <= 70 else text[:67] + "..."


def key_properties(resource_type: str, properties: Mapping[str, Any]) -> str:
    keys = KEY_PROPERTIES.get(resource_type)
    if keys is None:
        keys = tuple(k for k, v in properties.items()
                     if isinstance(v, str | int | float | bool))[:3]
    shown = [f"{k}={_short(properties[k])}" for k in keys if k in properties]
    line = " ".join(shown)
    return line if len(line) <= WIDTH else line[:WIDTH - 3] + "..."


def table(snapshot: Mapping[str, Any]) -> str:
    resources = snapshot["resources"]
    custom = {k: v for k, v in resources.items() if v["custom"]}
    lines = [f"Offline preview of stack {snapshot['stack']}: {len(custom)} resources "
             f"({len(resources) - len(custom)} components)", ""]
    for key, entry in custom.items():
        resource_type, name = key.split("::", 1)
        lines.append(f"  {resource_type:<60} {name}")
        props = key_properties(resource_type, entry["properties"])
        if props:
            lines.append(f"      {props}")
    return "\n".join(lines)

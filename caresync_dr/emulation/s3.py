"""S3 replication, which moto 5.2 accepts as configuration and never performs.

:func:`replicate` does what S3 replication does for the objects of a source bucket (Amazon S3
User Guide, "Replicating objects within and across Regions"): for each enabled rule, highest
priority first, every current object whose key matches the rule's prefix is copied under the
same key into the destination bucket (named by ARN), with the rule's storage class and, for
SSE-KMS, encrypted under the rule's ``ReplicaKmsKeyID``. Objects encrypted with SSE-KMS are
replicated only when the rule opts in (``SourceSelectionCriteria.SseKmsEncryptedObjects``);
delete markers are not replicated here (the stack disables it; lifecycle-expiry markers never
are). Real replication is asynchronous (seconds to minutes; 15 min with Replication Time
Control): the caller decides when it has happened.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from moto.s3.models import s3_backends


@dataclass(frozen=True)
class Replicated:
    """One object copied by replication."""

    key: str
    source_bucket: str
    destination_bucket: str
    replica_kms_key_id: str | None


def _rules(config: dict[str, Any]) -> list[dict[str, Any]]:
    rules = config.get("Rule") or []
    rules = [rules] if isinstance(rules, dict) else list(rules)
    enabled = [r for r in rules if r.get("Status") == "Enabled"]
    return sorted(enabled, key=lambda r: -int(r.get("Priority") or 0))


def _prefix(rule: dict[str, Any]) -> str:
    selector = rule.get("Filter") or {}
    prefix = selector.get("Prefix") if "Prefix" in selector else (
        (selector.get("And") or {}).get("Prefix") or rule.get("Prefix"))
    return str(prefix or "")


def replicate(account_id: str, source_bucket: str) -> list[Replicated]:
    """Copy what the source bucket's replication rules say is not yet in the destination
    (missing, or with another ETag); returns what was copied. No configuration: nothing."""
    backend = s3_backends[account_id]["aws"]
    config = backend.get_bucket_replication(source_bucket)
    if not config:
        return []
    copied: list[Replicated] = []
    done: set[str] = set()
    for rule in _rules(config):
        destination = rule.get("Destination") or {}
        target = str(destination.get("Bucket", "")).removeprefix("arn:aws:s3:::")
        replica_key = (destination.get("EncryptionConfiguration") or {}).get("ReplicaKmsKeyID")
        kms_opt_in = ((rule.get("SourceSelectionCriteria") or {})
                      .get("SseKmsEncryptedObjects") or {}).get("Status") == "Enabled"
        prefix = _prefix(rule)
        for name in list(backend.get_bucket(source_bucket).keys):
            if name in done or not name.startswith(prefix):
                continue
            source = backend.get_object(source_bucket, name)
            if source is None:  # the current version is a delete marker
                continue
            kms_encrypted = source.encryption == "aws:kms"
            if kms_encrypted and not kms_opt_in:
                continue
            existing = backend.get_object(target, name)
            done.add(name)
            if existing is not None and existing.etag == source.etag:
                continue
            backend.put_object(
                target, name, source.value, storage=destination.get("StorageClass"),
                encryption="aws:kms" if kms_encrypted else source.encryption,
                kms_key_id=replica_key if kms_encrypted else None)
            copied.append(Replicated(key=name, source_bucket=source_bucket,
                                     destination_bucket=target,
                                     replica_kms_key_id=replica_key if kms_encrypted else None))
    return copied

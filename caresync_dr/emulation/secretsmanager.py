"""Secrets Manager replication as AWS does it, where moto cuts a corner.

moto 5.2 supports replica regions (``AddReplicaRegions`` on CreateSecret,
``ReplicateSecretToRegions``): the replica is readable in its own region with the primary's
current versions, and reading it needs nothing from the primary region (moto keeps it in the
replica region's backend, so an outage of the primary region does not reach it). What moto
drops is the replica's own KMS key: it reports ``alias/aws/secretsmanager`` in
``ReplicationStatus`` and the *primary's* key on the replica itself, where AWS encrypts each
replica with the key given for its region (Secrets Manager User Guide, "Replicate secrets
across Regions": "KmsKeyId ... for the replica secret") -- the key that must be usable in the
standby region when the primary is down. While armed, :class:`ReplicaKeys` keeps the key
requested for each replica and reports it in both places.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from moto.secretsmanager.models import FakeSecret, ReplicaSecret

from caresync_dr.emulation.patching import ClassPatches, remember

_MOTO_CREATE_REPLICAS = FakeSecret.create_replicas
_MOTO_REPLICA_TO_DICT = ReplicaSecret.to_dict
remember(FakeSecret, "create_replicas")
remember(ReplicaSecret, "to_dict")


@dataclass
class ReplicaKeys:
    """Each secret replica keeps and reports the KMS key requested for its region."""

    _patches: ClassPatches = field(default_factory=ClassPatches)

    def arm(self) -> ReplicaKeys:
        if self._patches.active:
            return self

        def create_replicas(secret: FakeSecret, replica_regions: list[dict[str, str]],
                            force_overwrite: bool) -> list[ReplicaSecret]:
            replicas = _MOTO_CREATE_REPLICAS(secret, replica_regions, force_overwrite)
            requested = {r["Region"]: r.get("KmsKeyId") for r in replica_regions or []}
            for replica in replicas:
                key = requested.get(replica.region)
                if key:
                    replica.config["KmsKeyId"] = key
            return replicas

        def to_dict(replica: ReplicaSecret) -> dict[str, Any]:
            answer = dict(_MOTO_REPLICA_TO_DICT(replica))
            answer["KmsKeyId"] = replica.config["KmsKeyId"]
            return answer

        self._patches.set(FakeSecret, "create_replicas", create_replicas)
        self._patches.set(ReplicaSecret, "to_dict", to_dict)
        return self

    def disarm(self) -> None:
        self._patches.restore()

    def __enter__(self) -> ReplicaKeys:
        return self.arm()

    def __exit__(self, *exc: object) -> None:
        self.disarm()

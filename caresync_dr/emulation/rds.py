"""Finish an RDS read-replica promotion the way real RDS does (moto's gap).

moto's ``PromoteReadReplica`` is instant and leaves the link in place: the promoted instance
still reports ``ReadReplicaSourceDBInstanceIdentifier`` and its source still lists it in its
replicas. Real RDS clears both once the promotion finishes and the instance is a standalone,
available primary. ``detach_replica`` applies that end state to moto's backend objects, which
works when moto runs in this process (``mock_aws`` or a ThreadedMotoServer).
"""

from __future__ import annotations

from typing import Any

from moto.rds.models import rds_backends


def db_instance(account_id: str, region: str, identifier: str) -> Any:
    """moto's backend object for one DB instance (KeyError when it does not exist)."""
    return rds_backends[account_id][region].databases[identifier]


def detach_replica(account_id: str, region: str, identifier: str) -> None:
    """What RDS shows after a finished promotion: a standalone, available primary.

    The source (given by identifier, or by ARN for a cross-region replica) stops listing the
    instance; a source that no longer exists is left alone."""
    replica = db_instance(account_id, region, identifier)
    source_id = replica.source_db_instance_identifier
    if source_id:
        if source_id.startswith("arn:"):
            source_region, source_name = source_id.split(":")[3], source_id.split(":")[-1]
        else:
            source_region, source_name = region, source_id
        source = rds_backends[account_id][source_region].databases.get(source_name)
        if source is not None:
            for ref in (replica.db_instance_arn, replica.db_instance_identifier):
                if ref in source.replicas:
                    source.replicas.remove(ref)
    replica.source_db_instance_identifier = None
    replica.is_replica = False
    replica.status = "available"


def detach_replica_everywhere(account_id: str, identifier: str) -> None:
    """``detach_replica`` in every region that has an instance called ``identifier``."""
    for region, backend in rds_backends[account_id].items():
        if identifier in backend.databases:
            detach_replica(account_id, region, identifier)

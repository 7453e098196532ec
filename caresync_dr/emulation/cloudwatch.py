"""The metrics RDS publishes and moto does not: ``AWS/RDS ReplicaLag``.

Real RDS publishes ``ReplicaLag`` (seconds, per ``DBInstanceIdentifier``) every minute for each
read replica, in the replica's region, and -1 once the replica stopped replicating (RDS User
Guide, "Monitoring read replication"); moto publishes nothing. The tests and the drill publish
the datapoints RDS would, through the emulator's CloudWatch API.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient


def publish_replica_lag(cloudwatch: CloudWatchClient, identifier: str, seconds: float,
                        at: datetime | None = None) -> None:
    """One ``ReplicaLag`` datapoint of ``identifier`` (at ``at``, default now)."""
    datum: dict[str, object] = {
        "MetricName": "ReplicaLag", "Value": seconds, "Unit": "Seconds",
        "Dimensions": [{"Name": "DBInstanceIdentifier", "Value": identifier}]}
    if at is not None:
        datum["Timestamp"] = at
    cloudwatch.put_metric_data(Namespace="AWS/RDS", MetricData=[datum])  # type: ignore[list-item]

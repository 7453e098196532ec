"""Reads only: each function asks AWS (or the health URL) one question and returns a small value.

Nothing here changes state, which is why ``--check`` and ``--dry-run`` may call all of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from caresync_dr.operations.ssm import error_code, read_parameter, read_parameter_dated

if TYPE_CHECKING:
    from mypy_boto3_autoscaling import AutoScalingClient
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_elbv2 import ElasticLoadBalancingv2Client
    from mypy_boto3_rds import RDSClient
    from mypy_boto3_route53 import Route53Client
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sns import SNSClient

__all__ = [
    "REPLICATING",
    "AsgState",
    "DbState",
    "HealthReading",
    "LagReading",
    "TargetHealth",
    "describe_asg",
    "describe_database",
    "error_code",
    "health_of",
    "launch_template_exists",
    "read_parameter",
    "read_parameter_dated",
    "read_switch",
    "refresh_started_since",
    "replica_lag",
    "route53_check_status",
    "security_group_exists",
    "target_health",
    "topic_exists",
]


@dataclass(frozen=True)
class DbState:
    """What DescribeDBInstances says about one instance."""

    identifier: str
    status: str
    source: str | None              # ReadReplicaSourceDBInstanceIdentifier: set while a replica
    endpoint: str | None
    port: int | None
    backup_retention_days: int
    replication_status: str | None  # StatusInfos "read replication" status, e.g. "replicating"
    replication_normal: bool | None

    @property
    def is_replica(self) -> bool:
        return bool(self.source)

    @property
    def is_promoted(self) -> bool:
        """A standalone instance that is serving: what real RDS shows once promotion finished."""
        return not self.is_replica and self.status == "available"


def describe_database(rds: RDSClient, identifier: str) -> DbState | None:
    """The instance's state, or None when it does not exist (every other error propagates)."""
    try:
        found = rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"]
    except ClientError as exc:
        if error_code(exc) in ("DBInstanceNotFound", "DBInstanceNotFoundFault"):
            return None
        raise
    if not found:
        return None
    db: Any = found[0]
    endpoint = db.get("Endpoint") or {}
    replication = next((info for info in db.get("StatusInfos") or []
                        if info.get("StatusType") == "read replication"), None)
    return DbState(
        identifier=str(db["DBInstanceIdentifier"]),
        status=str(db.get("DBInstanceStatus", "unknown")),
        source=db.get("ReadReplicaSourceDBInstanceIdentifier") or None,
        endpoint=endpoint.get("Address"),
        port=endpoint.get("Port"),
        backup_retention_days=int(db.get("BackupRetentionPeriod") or 0),
        replication_status=None if replication is None else str(replication.get("Status")),
        replication_normal=None if replication is None else bool(replication.get("Normal")),
    )


# RDS's own word on a read replica (DescribeDBInstances StatusInfos, StatusType "read
# replication"): replicating, replication degraded (PostgreSQL: some databases get no updates),
# error, stopped, terminated (RDS API Reference, DBInstanceStatusInfo; RDS User Guide,
# "Monitoring read replication"). Only "replicating" means the replica keeps up.
REPLICATING = "replicating"


@dataclass(frozen=True)
class LagReading:
    """The replica's ReplicaLag datapoints (CloudWatch ``AWS/RDS``, seconds, one a minute).

    RDS reports -1 when replication is not active (RDS User Guide, "Monitoring MySQL/MariaDB
    read replicas": "If the ReplicaLag metric returns -1, then replication is currently not
    active"); for PostgreSQL the metric is ``now() - pg_last_xact_replay_timestamp()``, which
    keeps growing once nothing is replayed, and stops being published with the replica's
    process. So the newest datapoint tells whether replication is active, and the last
    non-negative one how far behind the replica was then."""

    seconds: float | None         # the last non-negative datapoint; None when there is none
    at: datetime | None
    newest_seconds: float | None  # the newest datapoint, -1 included; None: no datapoint
    newest_at: datetime | None

    @property
    def replication_active(self) -> bool:
        return self.newest_seconds is not None and self.newest_seconds >= 0

    def age(self, now: datetime | None = None) -> float | None:
        """Seconds since the last non-negative datapoint."""
        if self.at is None:
            return None
        return max(0.0, ((now or datetime.now(UTC)) - self.at).total_seconds())

    def newest_age(self, now: datetime | None = None) -> float | None:
        if self.newest_at is None:
            return None
        return max(0.0, ((now or datetime.now(UTC)) - self.newest_at).total_seconds())

    def bound(self, now: datetime | None = None) -> float | None:
        """The most a promotion now can lose: the replica was ``seconds`` behind at ``at`` and
        may have received nothing since. None when no datapoint says anything. With ``now``
        the time the primary stopped taking writes, it is the loss as of then."""
        age = self.age(now)
        return None if self.seconds is None or age is None else self.seconds + age

    def describe(self, now: datetime | None = None) -> str:
        if self.seconds is None or self.at is None:
            if self.newest_seconds is not None:
                return "no non-negative ReplicaLag datapoint in the window (only -1: " \
                       "replication not active)"
            return "unknown (no ReplicaLag datapoint in the window)"
        age = self.age(now) or 0.0
        bound = self.bound(now) or 0.0
        text = (f"{self.seconds:.0f} s at {self.at.strftime('%H:%M:%SZ')} ({age / 60:.0f} min "
                f"old): at most {bound:.0f} s behind now")
        if not self.replication_active:
            text += "; replication has since stopped (ReplicaLag -1)"
        return text

    def as_fact(self, now: datetime | None = None,
                outage_started: datetime | None = None) -> dict[str, Any]:
        fact = {"seconds": self.seconds, "at": self.at.isoformat() if self.at else None,
                "newestSeconds": self.newest_seconds,
                "newestAt": self.newest_at.isoformat() if self.newest_at else None,
                "replication_active": self.replication_active,
                "boundSeconds": self.bound(now)}
        if outage_started is not None:
            fact.update(outageStartedAt=outage_started.isoformat(),
                        boundAtOutageSeconds=self.bound(outage_started))
        return fact


def replica_lag(cloudwatch: CloudWatchClient, identifier: str, window_minutes: int,
                now: datetime | None = None) -> LagReading:
    """The ReplicaLag datapoints of the last ``window_minutes`` (RDS publishes them every
    minute for each read replica, in the replica's region), as a :class:`LagReading`."""
    end = now or datetime.now(UTC)
    stats = cloudwatch.get_metric_statistics(
        Namespace="AWS/RDS", MetricName="ReplicaLag",
        Dimensions=[{"Name": "DBInstanceIdentifier", "Value": identifier}],
        StartTime=end - timedelta(minutes=window_minutes), EndTime=end + timedelta(minutes=1),
        Period=60, Statistics=["Maximum"])
    points = sorted(stats.get("Datapoints", []), key=lambda p: p["Timestamp"])
    if not points:
        return LagReading(None, None, None, None)
    newest = points[-1]
    known = [p for p in points if float(p.get("Maximum", -1)) >= 0]
    last = known[-1] if known else None
    return LagReading(
        seconds=float(last["Maximum"]) if last else None,
        at=last["Timestamp"] if last else None,
        newest_seconds=float(newest.get("Maximum", -1)), newest_at=newest["Timestamp"])


@dataclass(frozen=True)
class AsgState:
    name: str
    min: int
    desired: int
    max: int
    in_service: int
    launch_template_id: str | None
    target_group_arns: tuple[str, ...]


def describe_asg(autoscaling: AutoScalingClient, name: str) -> AsgState | None:
    groups = autoscaling.describe_auto_scaling_groups(
        AutoScalingGroupNames=[name])["AutoScalingGroups"]
    if not groups:
        return None
    group: Any = groups[0]
    template = group.get("LaunchTemplate") or {}
    mixed = (group.get("MixedInstancesPolicy") or {}).get("LaunchTemplate", {})
    template_id = template.get("LaunchTemplateId") or (
        mixed.get("LaunchTemplateSpecification") or {}).get("LaunchTemplateId")
    in_service = sum(1 for i in group.get("Instances", [])
                     if i.get("LifecycleState") == "InService")
    return AsgState(name=name, min=int(group["MinSize"]), desired=int(group["DesiredCapacity"]),
                    max=int(group["MaxSize"]), in_service=in_service,
                    launch_template_id=template_id,
                    target_group_arns=tuple(group.get("TargetGroupARNs", [])))


def refresh_started_since(autoscaling: AutoScalingClient, group: str, since: datetime
                          ) -> str | None:
    """A rolling instance refresh of ``group`` started at or after ``since`` that is pending,
    running or done (Auto Scaling DescribeInstanceRefreshes, newest first, the last 10), as
    "refresh <id> of <group> is <status>"; None when there is none (a step must start one)."""
    refreshes = autoscaling.describe_instance_refreshes(
        AutoScalingGroupName=group, MaxRecords=10)["InstanceRefreshes"]
    for refresh in refreshes:
        started = refresh.get("StartTime")
        if (refresh.get("Status") in ("Pending", "InProgress", "Successful")
                and started is not None and started >= since):
            return (f"refresh {refresh.get('InstanceRefreshId')} of {group} is "
                    f"{refresh.get('Status')}")
    return None


def security_group_exists(ec2: EC2Client, group_id: str) -> bool:
    try:
        found = ec2.describe_security_groups(GroupIds=[group_id])
    except ClientError as exc:
        if error_code(exc) in ("InvalidGroup.NotFound", "InvalidGroupId.Malformed"):
            return False
        raise
    return bool(found.get("SecurityGroups"))


def topic_exists(sns: SNSClient, topic_arn: str) -> bool:
    """SNS GetTopicAttributes answers NotFound for a topic that does not exist."""
    try:
        sns.get_topic_attributes(TopicArn=topic_arn)
    except ClientError as exc:
        if error_code(exc) in ("NotFound", "NotFoundException"):
            return False
        raise
    return True


def launch_template_exists(ec2: EC2Client, template_id: str) -> bool:
    try:
        found = ec2.describe_launch_templates(LaunchTemplateIds=[template_id])
    except ClientError as exc:
        if error_code(exc).startswith("InvalidLaunchTemplateId"):
            return False
        raise
    return bool(found.get("LaunchTemplates"))


@dataclass(frozen=True)
class TargetHealth:
    healthy: int
    total: int


def target_health(elbv2: ElasticLoadBalancingv2Client, target_group_arn: str) -> TargetHealth:
    found = elbv2.describe_target_health(TargetGroupArn=target_group_arn)
    states = [d.get("TargetHealth", {}).get("State") for d in found["TargetHealthDescriptions"]]
    return TargetHealth(healthy=states.count("healthy"), total=len(states))


def read_switch(s3: S3Client, bucket: str, key: str) -> str | None:
    """The traffic switch's value, or None when the object does not exist."""
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        if error_code(exc) in ("NoSuchKey", "404"):
            return None
        raise
    return body.decode("utf-8", errors="replace").strip()


def route53_check_status(route53: Route53Client, health_check_id: str) -> str:
    """What Route 53's checkers report for one health check, e.g. '3 of 3 checkers: Failure'."""
    found = route53.get_health_check_status(HealthCheckId=health_check_id)
    reports = [o.get("StatusReport", {}).get("Status", "") for o in
               found.get("HealthCheckObservations", [])]
    failing = sum(1 for r in reports if r.startswith("Failure"))
    return f"{failing} of {len(reports)} checkers report failure"


def switch_pin(route53: Route53Client, primary_record_check_id: str,
               switch_check_id: str) -> str | None:
    """None when the PRIMARY record's calculated check still reads the traffic switch's
    check (``switch_check_id`` among its children, as components/dns_failover.py declares);
    else what it follows instead: a reversed failover's ``pin-primary-record`` left behind.
    Pinned, writing the switch no longer moves traffic while the primary endpoint passes
    (a switchover to the standby, a database failure behind a healthy app). Pulumi compares
    the program with its *state*, so only ``pulumi up --refresh`` sees the live change and
    undoes it; a plain ``pulumi up`` leaves it pinned."""
    config = route53.get_health_check(
        HealthCheckId=primary_record_check_id)["HealthCheck"]["HealthCheckConfig"]
    children = list(config.get("ChildHealthChecks") or [])
    if switch_check_id in children:
        return None
    return (f"{primary_record_check_id} follows {children} (threshold "
            f"{config.get('HealthThreshold')}), not the switch check {switch_check_id}")


@dataclass(frozen=True)
class HealthReading:
    """One GET of the public health URL (docs/failover-reference.md, 'The /api/health contract')."""

    ok: bool
    detail: str
    body: dict[str, Any] | None = None


def health_of(url: str, expected_region: str | None, timeout: tuple[float, float] = (3.0, 5.0),
              require_region: bool = False) -> HealthReading:
    """ok when the site answers 200 with status ok and a writable primary database.

    When the body names a ``region`` it must be ``expected_region``: an answer from the old
    site (DNS not yet moved) does not count. ``require_region``: an answer without ``region``
    does not count either (a regional failover cannot tell it from the old site's).
    """
    import requests  # imported ahead by FailoverContext.prewarm; kept off the start-up path

    try:
        response = requests.get(url, timeout=timeout, headers={"Cache-Control": "no-cache"})
    except requests.RequestException as exc:
        return HealthReading(False, f"{url} did not answer: {type(exc).__name__}")
    if response.status_code != 200:
        return HealthReading(False, f"{url} answered HTTP {response.status_code}")
    try:
        body = response.json()
    except ValueError:
        return HealthReading(False, f"{url} answered 200 but not JSON")
    if not isinstance(body, dict):
        return HealthReading(False, f"{url} answered JSON that is not an object")
    raw_database = body.get("database")
    database: dict[str, Any] = raw_database if isinstance(raw_database, dict) else {}
    region = body.get("region")
    if body.get("status") != "ok":
        return HealthReading(False, f"status is {body.get('status')!r}, not 'ok'", body)
    if expected_region and region is None and require_region:
        return HealthReading(False, f"answer does not name its region (expected "
                             f"{expected_region}): it may come from the old site", body)
    if expected_region and region is not None and region != expected_region:
        return HealthReading(False, f"answered from {region}, not {expected_region}", body)
    if database.get("writable") is not True:
        return HealthReading(False, "database is not writable yet "
                             f"(role {database.get('role')!r})", body)
    where = f" from {region}" if region else ""
    return HealthReading(True, f"status ok{where}, database writable "
                         f"(role {database.get('role')!r})", body)


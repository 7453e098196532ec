"""Reads only: the app tier as AWS reports it. Nothing here changes state, so ``status``,
``--check`` and ``--dry-run`` may call all of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from mypy_boto3_autoscaling import AutoScalingClient
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_elbv2 import ElasticLoadBalancingv2Client

__all__ = [
    "ACTIVE_REFRESH_STATUSES",
    "ROLLED_BACK_STATUSES",
    "ErrorRate",
    "GroupState",
    "InstanceState",
    "RefreshState",
    "TargetCounts",
    "TemplateVersionInfo",
    "alarm_states",
    "describe_group",
    "error_code",
    "instance_refreshes",
    "load_balancer_suffix",
    "recent_5xx",
    "target_counts",
    "template_versions",
]

# DescribeInstanceRefreshes statuses (Auto Scaling API reference, InstanceRefresh.Status).
ACTIVE_REFRESH_STATUSES = frozenset({"Pending", "InProgress", "Cancelling", "Baking",
                                     "RollbackInProgress"})
ROLLED_BACK_STATUSES = frozenset({"RollbackSuccessful", "RollbackFailed"})


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


@dataclass(frozen=True)
class InstanceState:
    instance_id: str
    lifecycle: str          # InService, Pending, Terminating, ...
    health: str             # Healthy / Unhealthy (the group's view)
    template_version: str | None


@dataclass(frozen=True)
class GroupState:
    """What DescribeAutoScalingGroups says about one group."""

    name: str
    min: int
    desired: int
    max: int
    template_id: str | None
    template_version: str | None   # "3", or "$Latest"/"$Default" on a group not yet pinned
    target_group_arns: tuple[str, ...]
    instances: tuple[InstanceState, ...] = ()

    @property
    def in_service(self) -> int:
        return sum(1 for i in self.instances
                   if i.lifecycle == "InService" and i.health == "Healthy")


def describe_group(autoscaling: AutoScalingClient, name: str) -> GroupState | None:
    """The group, or None when it does not exist."""
    found = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[name])
    groups: list[Any] = list(found.get("AutoScalingGroups", []))
    if not groups:
        return None
    group = groups[0]
    template = group.get("LaunchTemplate") or {}
    instances = tuple(
        InstanceState(instance_id=str(i["InstanceId"]),
                      lifecycle=str(i.get("LifecycleState", "")),
                      health=str(i.get("HealthStatus", "")),
                      template_version=(i.get("LaunchTemplate") or {}).get("Version"))
        for i in group.get("Instances", []))
    return GroupState(name=name, min=int(group["MinSize"]), desired=int(group["DesiredCapacity"]),
                      max=int(group["MaxSize"]), template_id=template.get("LaunchTemplateId"),
                      template_version=template.get("Version"),
                      target_group_arns=tuple(group.get("TargetGroupARNs", [])),
                      instances=instances)


@dataclass(frozen=True)
class TemplateVersionInfo:
    version: int
    image_id: str | None
    created: datetime | None
    description: str | None


def template_versions(ec2: EC2Client, template_id: str) -> list[TemplateVersionInfo]:
    """Every version of the launch template, oldest first."""
    versions: list[TemplateVersionInfo] = []
    paginator = ec2.get_paginator("describe_launch_template_versions")
    for page in paginator.paginate(LaunchTemplateId=template_id):
        for item in page.get("LaunchTemplateVersions", []):
            data: Any = item.get("LaunchTemplateData") or {}
            versions.append(TemplateVersionInfo(
                version=int(item["VersionNumber"]), image_id=data.get("ImageId"),
                created=item.get("CreateTime"), description=item.get("VersionDescription")))
    return sorted(versions, key=lambda v: v.version)


@dataclass(frozen=True)
class RefreshState:
    refresh_id: str
    status: str
    started: datetime | None
    ended: datetime | None
    percentage: int | None
    status_reason: str | None
    desired_version: str | None  # the DesiredConfiguration's template version, if any

    @property
    def active(self) -> bool:
        return self.status in ACTIVE_REFRESH_STATUSES


def instance_refreshes(autoscaling: AutoScalingClient, group: str,
                       refresh_ids: list[str] | None = None) -> list[RefreshState]:
    """The group's instance refreshes, newest first (Auto Scaling keeps them for weeks)."""
    kwargs: dict[str, Any] = {"AutoScalingGroupName": group}
    if refresh_ids:
        kwargs["InstanceRefreshIds"] = refresh_ids
    answer = autoscaling.describe_instance_refreshes(**kwargs)
    found: list[Any] = list(answer.get("InstanceRefreshes", []))
    return [RefreshState(
        refresh_id=str(r["InstanceRefreshId"]), status=str(r.get("Status", "")),
        started=r.get("StartTime"), ended=r.get("EndTime"),
        percentage=r.get("PercentageComplete"), status_reason=r.get("StatusReason"),
        desired_version=((r.get("DesiredConfiguration") or {}).get("LaunchTemplate") or {})
        .get("Version")) for r in found]


@dataclass(frozen=True)
class TargetCounts:
    """Target health of the group's instances, by state (ELB DescribeTargetHealth)."""

    states: dict[str, str] = field(default_factory=dict)  # instance id -> state

    def count(self, state: str) -> int:
        return sum(1 for s in self.states.values() if s == state)

    @property
    def healthy(self) -> int:
        return self.count("healthy")


def target_counts(elbv2: ElasticLoadBalancingv2Client, target_group_arns: tuple[str, ...]
                  ) -> TargetCounts:
    states: dict[str, str] = {}
    for arn in target_group_arns:
        for item in elbv2.describe_target_health(TargetGroupArn=arn).get(
                "TargetHealthDescriptions", []):
            target: Any = item.get("Target") or {}
            health = item.get("TargetHealth") or {}
            states[str(target.get("Id"))] = str(health.get("State", "unknown"))
    return TargetCounts(states)


def load_balancer_suffix(elbv2: ElasticLoadBalancingv2Client, target_group_arn: str
                         ) -> str | None:
    """``app/<name>/<id>``: the ``LoadBalancer`` dimension of the ALB's metrics."""
    groups: list[Any] = list(elbv2.describe_target_groups(
        TargetGroupArns=[target_group_arn]).get("TargetGroups", []))
    arns = groups[0].get("LoadBalancerArns", []) if groups else []
    return str(arns[0]).split(":loadbalancer/", 1)[1] if arns else None


@dataclass(frozen=True)
class ErrorRate:
    minutes: int
    requests: float
    errors: float

    @property
    def percent(self) -> float | None:
        return None if not self.requests else round(100.0 * self.errors / self.requests, 2)


def recent_5xx(cloudwatch: CloudWatchClient, load_balancer: str, minutes: int = 15,
               now: datetime | None = None) -> ErrorRate:
    """Requests and app 5xx answers (``HTTPCode_Target_5XX_Count``) at the ALB lately."""
    end = now or datetime.now(UTC)
    queries: list[Any] = [
        {"Id": key, "ReturnData": True, "MetricStat": {
            "Metric": {"Namespace": "AWS/ApplicationELB", "MetricName": metric,
                       "Dimensions": [{"Name": "LoadBalancer", "Value": load_balancer}]},
            "Period": 60, "Stat": "Sum"}}
        for key, metric in (("errors", "HTTPCode_Target_5XX_Count"),
                            ("requests", "RequestCount"))]
    answer = cloudwatch.get_metric_data(MetricDataQueries=queries,
                                        StartTime=end - timedelta(minutes=minutes), EndTime=end)
    sums = {str(r["Id"]): float(sum(r.get("Values", [])))
            for r in answer.get("MetricDataResults", [])}
    return ErrorRate(minutes, sums.get("requests", 0.0), sums.get("errors", 0.0))


def alarm_states(cloudwatch: CloudWatchClient, names: tuple[str, ...]) -> dict[str, str]:
    """Each alarm's state (OK, ALARM, INSUFFICIENT_DATA); a missing alarm is ``missing``."""
    found = {str(a["AlarmName"]): str(a.get("StateValue", ""))
             for a in cloudwatch.describe_alarms(AlarmNames=list(names)).get("MetricAlarms", [])}
    return {name: found.get(name, "missing") for name in names}

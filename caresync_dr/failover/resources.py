"""What each step will change, read before the first change (the preflight's second half).

Every step declares the resources it changes or depends on (:meth:`Step.touches`); the
preflight reads each one and refuses (exit 3, nothing changed) when one is missing, instead of
finding out after the database was promoted. The database itself and the traffic switch are read
by the base checks in ``readiness.py``. Resources in the region being failed away from (the
best-effort fencing of ``--scope region``) are not declared: that region may not answer, and
nothing waits on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from botocore.exceptions import ClientError

from caresync_dr.failover import probes
from caresync_dr.operations.steps import Found

if TYPE_CHECKING:
    from caresync_dr.aws import RegionClients

Kind = Literal["auto-scaling-group", "target-group", "security-group", "parameter", "topic"]


@dataclass(frozen=True)
class Resource:
    """One resource a step declares (the engine's ``Touched``)."""

    kind: Kind
    name: str
    clients: RegionClients
    label: str           # the row in the readiness table

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.kind, self.name, self.clients.region)

    def read(self) -> Found:
        return read(self)


def read(resource: Resource) -> Found:
    """Read one resource. AWS errors other than "not found" propagate (the caller names them)."""
    clients, name, region = resource.clients, resource.name, resource.clients.region
    if resource.kind == "auto-scaling-group":
        asg = probes.describe_asg(clients.autoscaling(), name)
        if asg is None:
            return Found(False, f"Auto Scaling group {name} not found in {region}")
        template = asg.launch_template_id
        if template is None or not probes.launch_template_exists(clients.ec2(), template):
            return Found(False, f"{name}: launch template {template or '(none)'} not found in "
                                f"{region}")
        return Found(True, f"{name} in {region}: {asg.in_service} in service, desired "
                           f"{asg.desired}, template {template}")
    if resource.kind == "target-group":
        try:
            health = probes.target_health(clients.elbv2(), name)
        except ClientError as exc:
            if probes.error_code(exc) == "TargetGroupNotFound":
                return Found(False, f"target group {name} not found")
            raise
        return Found(True, f"{name.rsplit(':', 1)[-1]}: {health.healthy} of {health.total} "
                           "targets healthy")
    if resource.kind == "security-group":
        if not probes.security_group_exists(clients.ec2(), name):
            return Found(False, f"security group {name} not found in {region}")
        return Found(True, f"{name} in {region}")
    if resource.kind == "parameter":
        if probes.read_parameter(clients.ssm(), name) is None:
            return Found(False, f"SSM parameter {name} not found in {region}")
        return Found(True, f"{name} in {region}")
    if not probes.topic_exists(clients.sns(), name):
        return Found(False, f"SNS topic {name} not found")
    return Found(True, name)

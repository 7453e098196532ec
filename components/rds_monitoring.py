"""RDS Enhanced Monitoring of a site's databases: the role RDS publishes OS metrics with.

Enhanced Monitoring (``monitoring_interval`` seconds, with ``monitoring_role_arn``) sends the
instance's OS metrics (CPU per process, memory, disk queue, swap) to CloudWatch Logs
(``RDSOSMetrics``) from an agent on the host: what an operator needs during a failover to see
whether a replica is CPU- or IO-bound, which the hypervisor-level CloudWatch metrics cannot
show. RDS allows an interval of 0 (off), 1, 5, 10, 15, 30 or 60 and requires the role whenever
it is not 0 (RDS API reference, ModifyDBInstance, ``MonitoringInterval``); changing either
applies at once, without downtime, whatever ``apply_immediately`` says (RDS user guide,
"Settings for DB instances", Enhanced Monitoring).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from caresync_dr.names import rds_monitoring_role_name

MONITORING_INTERVAL_SECONDS = 60
ALLOWED_INTERVALS = (0, 1, 5, 10, 15, 30, 60)
MANAGED_POLICY = "arn:aws:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"


def monitoring_trust_policy(account_id: str) -> str:
    """RDS's monitoring service, for this account's instances only (the confused-deputy guard
    of the RDS user guide, "Setting up and enabling Enhanced Monitoring")."""
    return json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "monitoring.rds.amazonaws.com"},
        "Action": "sts:AssumeRole",
        "Condition": {"StringEquals": {"aws:SourceAccount": account_id}}}]})


@dataclass(frozen=True)
class MonitoringRoleArgs:
    site: str
    account_id: pulumi.Input[str]


class MonitoringRole(pulumi.ComponentResource):
    arn: pulumi.Output[str]
    interval_seconds: int

    def __init__(self, name: str, args: MonitoringRoleArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("caresync:dr:MonitoringRole", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        role = aws.iam.Role(
            f"{name}-role", name=rds_monitoring_role_name(args.site),
            assume_role_policy=pulumi.Output.from_input(args.account_id).apply(
                monitoring_trust_policy),
            description="RDS Enhanced Monitoring: publish OS metrics to CloudWatch Logs",
            opts=child)
        attachment = aws.iam.RolePolicyAttachment(f"{name}-policy", role=role.name,
                                                  policy_arn=MANAGED_POLICY, opts=child)
        # The ARN only once the policy is attached: RDS checks the role when the instance is
        # modified.
        self.arn = pulumi.Output.all(role.arn, attachment.id).apply(lambda v: str(v[0]))
        self.interval_seconds = MONITORING_INTERVAL_SECONDS
        self.register_outputs({"arn": role.arn})

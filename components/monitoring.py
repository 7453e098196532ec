"""Monitoring of one site: the alert topic (KMS-encrypted, e-mail subscriptions) and alarms.

The alert topic also carries incident messages (:mod:`caresync_dr.notify`): ``alertEmails``
receive everything; each escalation tier's ``emails`` are subscribed with a filter policy on
the ``escalationTier`` message attribute, so they receive an incident's messages only once
their tier is engaged, and never the alarms (which carry no attributes).

Alarms: ``ReplicaLag`` on every replica (paging early enough that threshold + detection delay
stays within the RPO, warning at a fifth of the RPO), replication stopped on every replica
(RDS reports ``ReplicaLag`` -1 when "replication is currently not active", RDS user guide,
"Monitoring read replicas"; a replica in state ``error`` may publish nothing, so missing data
breaches too; a lag threshold alone never sees -1), database
CPU, free storage and freeable memory, ALB 5xx rate and unhealthy hosts, and failed AWS Backup
and copy jobs. Route 53 health-check alarms live in :mod:`components.dns_failover` because
Route 53 publishes those metrics in us-east-1 only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from caresync_dr.app.rollout import (
    ALB_5XX,
    ALB_5XX_PERIOD_SECONDS,
    ALB_5XX_PERIODS,
    UNHEALTHY_HOSTS,
    UNHEALTHY_PERIOD_SECONDS,
    UNHEALTHY_PERIODS,
)
from caresync_dr.names import alarm_name, alert_topic_name
from caresync_dr.settings import (
    REPLICA_LAG_DATAPOINTS_TO_ALARM,
    REPLICA_LAG_PERIOD_SECONDS,
    tier_filter_policy,
)

FIVE_MINUTES = 300
ALB_5XX_PERCENT = 5.0
ALB_5XX_EXPRESSION = "100 * FILL(errors, 0) / FILL(requests, 1)"


@dataclass(frozen=True)
class MonitoringArgs:
    site: str
    kms_key_id: pulumi.Input[str]
    emails: Sequence[str]
    database_identifier: pulumi.Input[str]
    # Replicas whose lag matters, by identifier: their alarms are named after them, so adding
    # or removing one replica (or a new generation) leaves the others' alarms alone.
    replica_identifiers: Sequence[str]
    lag_alarm_seconds: int
    lag_warning_seconds: int
    allocated_storage_gb: int
    alb_arn_suffix: pulumi.Input[str]
    target_group_arn_suffix: pulumi.Input[str]
    backup_vault_name: pulumi.Input[str]
    # (tier name, address) of each escalation tier's e-mail contacts
    tier_emails: Sequence[tuple[str, str]] = ()


class Monitoring(pulumi.ComponentResource):
    topic: aws.sns.Topic
    alarm_names: list[pulumi.Output[str]]

    def __init__(self, name: str, args: MonitoringArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("caresync:dr:Monitoring", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.topic = aws.sns.Topic(f"{name}-alerts", name=alert_topic_name(args.site),
                                   kms_master_key_id=args.kms_key_id, opts=child)
        for i, email in enumerate(args.emails):
            aws.sns.TopicSubscription(f"{name}-alerts-email-{i + 1}", topic=self.topic.arn,
                                      protocol="email", endpoint=email, opts=child)
        for tier, email in args.tier_emails:
            aws.sns.TopicSubscription(f"{name}-escalation-{tier}-{email}", topic=self.topic.arn,
                                      protocol="email", endpoint=email,
                                      filter_policy=tier_filter_policy(tier), opts=child)
        self.alarm_names = []

        def alarm(key: str, description: str, namespace: str, metric: str, *,
                  dimensions: dict[str, pulumi.Input[str]], statistic: str, threshold: float,
                  comparison: str, periods: int = 3, period: int = 60,
                  missing: str = "missing") -> None:
            created = aws.cloudwatch.MetricAlarm(
                f"{name}-{key}", name=alarm_name(args.site, key), alarm_description=description,
                namespace=namespace, metric_name=metric, dimensions=dimensions,
                statistic=statistic, period=period, evaluation_periods=periods,
                datapoints_to_alarm=periods, threshold=threshold,
                comparison_operator=comparison, treat_missing_data=missing,
                alarm_actions=[self.topic.arn], ok_actions=[self.topic.arn], opts=child)
            self.alarm_names.append(created.name)

        db = {"DBInstanceIdentifier": args.database_identifier}

        def lag_alarm(key: str, description: str, dims: dict[str, pulumi.Input[str]], *,
                      threshold: float, statistic: str = "Maximum",
                      comparison: str = "GreaterThanThreshold") -> None:
            # Named after the replica (caresync-<site>-db[-g<N>][-replica-<n>]-...); missing
            # data breaches: a replica that publishes nothing is not replicating.
            created = aws.cloudwatch.MetricAlarm(
                f"{name}-{key}", name=key, alarm_description=description,
                namespace="AWS/RDS", metric_name="ReplicaLag", dimensions=dims,
                statistic=statistic, period=REPLICA_LAG_PERIOD_SECONDS,
                evaluation_periods=REPLICA_LAG_DATAPOINTS_TO_ALARM,
                datapoints_to_alarm=REPLICA_LAG_DATAPOINTS_TO_ALARM, threshold=threshold,
                comparison_operator=comparison, treat_missing_data="breaching",
                alarm_actions=[self.topic.arn], ok_actions=[self.topic.arn], opts=child)
            self.alarm_names.append(created.name)

        for replica in args.replica_identifiers:
            dims: dict[str, pulumi.Input[str]] = {"DBInstanceIdentifier": replica}
            lag_alarm(f"{replica}-lag",
                      f"Replica lag above {args.lag_alarm_seconds} s: with the alarm's detection "
                      "delay, a failover now would lose up to the RPO",
                      dims, threshold=args.lag_alarm_seconds)
            lag_alarm(f"{replica}-replication-stopped",
                      "Replication stopped: RDS reports ReplicaLag -1 (replication not active) "
                      "or no ReplicaLag at all; a failover now would lose everything since the "
                      "stop", dims, threshold=0, statistic="Minimum",
                      comparison="LessThanThreshold")
            lag_alarm(f"{replica}-lag-warning",
                      f"Replica lag above {args.lag_warning_seconds} s: act before the RPO "
                      "breaks", dims, threshold=args.lag_warning_seconds)
        alarm("db-cpu", "Database CPU above 80% for 15 minutes", "AWS/RDS", "CPUUtilization",
              dimensions=db, statistic="Average", threshold=80,
              comparison="GreaterThanThreshold", periods=3, period=FIVE_MINUTES)
        alarm("db-free-storage", "Database free storage below 10% of the allocation",
              "AWS/RDS", "FreeStorageSpace", dimensions=db, statistic="Minimum",
              threshold=args.allocated_storage_gb * 1024**3 * 0.10,
              comparison="LessThanThreshold", periods=1, period=FIVE_MINUTES)
        alarm("db-freeable-memory", "Database freeable memory below 256 MiB", "AWS/RDS",
              "FreeableMemory", dimensions=db, statistic="Minimum", threshold=256 * 1024**2,
              comparison="LessThanThreshold", periods=3, period=FIVE_MINUTES)
        # A rate, not a count: 25 errors a minute is an outage at night and noise at peak.
        # Metric math over 5 minutes; FILL(errors, 0) because the ALB publishes no 5xx metric
        # while there are none, FILL(requests, 1) so a gap cannot divide by zero. No traffic
        # at all gives no datapoint: not breaching (the unhealthy-hosts and Route 53 alarms
        # cover a site that serves nothing).
        lb = {"LoadBalancer": args.alb_arn_suffix}

        def alb_sum(query_id: str, metric: str) -> aws.cloudwatch.MetricAlarmMetricQueryArgs:
            return aws.cloudwatch.MetricAlarmMetricQueryArgs(
                id=query_id, return_data=False,
                metric=aws.cloudwatch.MetricAlarmMetricQueryMetricArgs(
                    namespace="AWS/ApplicationELB", metric_name=metric, dimensions=lb,
                    stat="Sum", period=ALB_5XX_PERIOD_SECONDS))

        # This alarm and unhealthy-hosts also roll a deploy back (caresync_dr/app/rollout.py
        # watches them by these names and sizes its bake time by their windows).
        ratio = aws.cloudwatch.MetricAlarm(
            f"{name}-{ALB_5XX}", name=alarm_name(args.site, ALB_5XX),
            alarm_description=f"More than {ALB_5XX_PERCENT:g}% of requests answered 5xx by "
                              "the app over 5 minutes",
            metric_queries=[
                alb_sum("errors", "HTTPCode_Target_5XX_Count"),
                alb_sum("requests", "RequestCount"),
                aws.cloudwatch.MetricAlarmMetricQueryArgs(
                    id="ratio", expression=ALB_5XX_EXPRESSION, label="5xx % of requests",
                    return_data=True)],
            evaluation_periods=ALB_5XX_PERIODS, datapoints_to_alarm=ALB_5XX_PERIODS,
            threshold=ALB_5XX_PERCENT,
            comparison_operator="GreaterThanThreshold", treat_missing_data="notBreaching",
            alarm_actions=[self.topic.arn], ok_actions=[self.topic.arn], opts=child)
        self.alarm_names.append(ratio.name)
        alarm(UNHEALTHY_HOSTS, "App instances failing the /api/health target check",
              "AWS/ApplicationELB", "UnHealthyHostCount",
              dimensions={"LoadBalancer": args.alb_arn_suffix,
                          "TargetGroup": args.target_group_arn_suffix},
              statistic="Maximum", threshold=0, comparison="GreaterThanThreshold",
              periods=UNHEALTHY_PERIODS, period=UNHEALTHY_PERIOD_SECONDS,
              missing="notBreaching")
        for key, metric in (("backup-jobs-failed", "NumberOfBackupJobsFailed"),
                            ("copy-jobs-failed", "NumberOfCopyJobsFailed")):
            alarm(key, f"AWS Backup: {metric} in the {args.site} vault", "AWS/Backup", metric,
                  dimensions={"BackupVaultName": args.backup_vault_name}, statistic="Sum",
                  threshold=0, comparison="GreaterThanThreshold", periods=1, period=3600,
                  missing="notBreaching")
        self.register_outputs({"topicArn": self.topic.arn})

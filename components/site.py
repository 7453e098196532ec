"""Compose a stack: the primary site (stack prod) or the standby site and failover wiring (dr).

``build_site`` is what ``__main__.py`` runs. It returns the stack outputs (docs/reference.md, "Stack
outputs"); their names are the contract between the two stacks and with the operator tools.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_aws as aws

from caresync_dr.db.secrets import APP_SECRET_NAME, secret_arn_pattern
from caresync_dr.inventory import (
    INVENTORY_VERSION,
    AppInventory,
    DatabaseInventory,
    DnsInventory,
    Inventory,
    Objectives,
    SiteInventory,
)
from caresync_dr.inventory import (
    TrafficSwitch as SwitchInventory,
)
from caresync_dr.names import (
    FAILBACK_JOURNAL_PARAMETER,
    JOURNAL_PARAMETER,
    LOCK_PARAMETER,
    MASTER_SECRET_NAME,
    OPERATOR_ROLE_NAME,
    SWITCHOVER_JOURNAL_PARAMETER,
    alarm_name,
    app_name,
    db_identifier,
    db_identifier_pattern,
    db_subnet_group_name,
    endpoint_parameter_name,
    in_region_parameter,
    parameter_group_pattern,
    replica_identifier,
    site_key_alias,
    switch_bucket_name,
)
from caresync_dr.operator_permissions import ROLES
from caresync_dr.retention import INCIDENT_PREFIX
from caresync_dr.settings import Capacity, Settings
from components.app_tier import AppTier, AppTierArgs
from components.audit import Audit, AuditArgs
from components.autoscaling_role import AutoScalingServiceRole, AutoScalingServiceRoleArgs
from components.backup_plan import BackupPlan, BackupPlanArgs
from components.backup_storage import BackupStorage, BackupStorageArgs, ReplicationTarget
from components.command_roles import CommandRole, CommandRoleArgs
from components.database import (
    AutomatedBackupReplication,
    BackupReplicationArgs,
    Database,
    DatabaseArgs,
)
from components.db_credentials import DatabaseCredentials, DatabaseCredentialsArgs, SecretReplica
from components.detection import Detection, DetectionArgs
from components.dns_failover import (
    PRIMARY_SET_ID,
    SECONDARY_SET_ID,
    DnsFailover,
    DnsFailoverArgs,
    SiteEndpoint,
)
from components.failover_inventory import (
    FailoverInventory,
    FailoverInventoryArgs,
    InventoryCopy,
)
from components.kms_key import SiteKey, SiteKeyArgs
from components.monitoring import Monitoring, MonitoringArgs
from components.network import Network, NetworkArgs
from components.operator_role import (
    InRegionResources,
    OperatorResources,
    OperatorRole,
    OperatorRoleArgs,
    ReversedFailoverResources,
    in_region_resources,
)
from components.rds_monitoring import MonitoringRole, MonitoringRoleArgs
from components.role_resources import Sites, command_role_resources
from components.stack_links import read_outputs, require
from components.traffic_switch import SWITCH_KEY, TrafficSwitch, TrafficSwitchArgs
from components.waf import Waf, WafArgs

# Route 53 health checkers on three continents (Route 53 requires at least three regions).
CHECKER_REGIONS = ("us-east-1", "us-west-2", "eu-west-1", "ap-southeast-1")

# What prod publishes for dr (and dr for prod): the names are the cross-stack contract.
PRIMARY_OUTPUTS_FOR_STANDBY = (
    "region", "dbIdentifier", "dbArn", "dbSecurityGroupId", "dbReplicaIdentifiers",
    "dbEndpointParameter", "albDnsName", "albZoneId", "targetGroupArn", "autoScalingGroupName",
    "launchTemplateId", "appCapacity", "productionCapacity", "alertTopicArn",
    "backupBucketArn", "kmsKeyArn", "backupVaultArn", "dbGeneration",
)
# What dr needs of prod in every state (prod's alert topic and generation are optional: a
# prod deployed before they existed did not publish them).
PRIMARY_REQUIRED = tuple(n for n in PRIMARY_OUTPUTS_FOR_STANDBY
                         if n not in ("alertTopicArn", "dbGeneration"))
STANDBY_OUTPUTS_FOR_PRIMARY = ("backupBucketArn", "kmsKeyArn", "backupVaultArn", "dbArn")
# The writer's site replicates backups and copies recovery points to the other site.
COPY_TARGET_OUTPUTS = ("backupBucketArn", "kmsKeyArn", "backupVaultArn")


def _capacity(cap: Capacity) -> dict[str, int]:
    return {"min": cap.min, "desired": cap.desired, "max": cap.max}


def serving_capacity(settings: Settings) -> Capacity:
    """What this site's ASG runs: production where the writer is, warm elsewhere."""
    return settings.site_capacity


class _Site:
    """The parts every site has: key, network, backups, database, app tier, monitoring.

    ``peer`` holds the other stack's outputs (those found). The writer's site replicates its
    backup bucket to the peer and copies recovery points into the peer's vault once the peer
    has published them; the replica's site follows the peer's writer (``dbArn``) and keeps its
    automated backups in this region too.
    """

    def __init__(self, settings: Settings, peer: dict[str, Any]) -> None:
        site = settings.site
        writer = settings.is_writer
        self.linked = all(name in peer for name in COPY_TARGET_OUTPUTS)
        self.account_id = aws.get_caller_identity_output().account_id
        self.autoscaling_role = AutoScalingServiceRole(
            f"{site}-autoscaling", AutoScalingServiceRoleArgs(site=site))
        self.key = SiteKey(site, SiteKeyArgs(
            site=site, account_id=self.account_id, region=settings.region,
            ebs_service_role_arns=[self.autoscaling_role.arn]))
        self.network = Network(f"{site}-network", NetworkArgs(
            site=site, cidr=settings.vpc_cidr, az_count=settings.az_count,
            app_port=settings.app_port,
            replica_db_group=writer and settings.db_read_replicas > 0,
            restore_test_group=writer))
        replicate_to = (ReplicationTarget(bucket_arn=peer["backupBucketArn"],
                                          kms_key_arn=peer["kmsKeyArn"])
                        if writer and self.linked else None)
        self.storage = BackupStorage(f"{site}-backups", BackupStorageArgs(
            site=site, account_id=self.account_id, kms_key_arn=self.key.arn,
            retention_days=settings.backup_retention_days, replicate_to=replicate_to))
        # Audit logging per site (components/audit.py says why not one trail per account):
        # S3 data events on this site's PHI-bearing buckets (and the traffic switch on dr).
        audited: list[pulumi.Input[str]] = [self.storage.bucket.name]
        if not settings.is_primary:
            audited.append(pulumi.Output.from_input(self.account_id).apply(switch_bucket_name))
        self.audit = Audit(f"{site}-audit", AuditArgs(
            site=site, region=settings.region, account_id=self.account_id,
            kms_key_arn=self.key.arn, vpc_id=self.network.vpc_id,
            multi_region=settings.is_primary, data_event_bucket_names=audited,
            trail_log_retention_days=settings.trail_log_retention_days))
        # Breach detection (issue 13): GuardDuty, the CloudTrail signals, the security topic.
        self.detection = Detection(f"{site}-detection", DetectionArgs(
            site=site, region=settings.region, account_id=self.account_id,
            kms_key_arn=self.key.arn, emails=settings.security_emails,
            min_severity=settings.guardduty_min_severity,
            trail_log_group_name=self.audit.trail_log_group.name,
            global_events=settings.is_primary, depends_on=[self.audit.trail_log_group]))
        self.monitoring_role = MonitoringRole(f"{site}-rds-monitoring", MonitoringRoleArgs(
            site=site, account_id=self.account_id))
        # The prod stack owns the database secrets (D1) and replicates them to the standby
        # region once dr has published its key (bootstrap step 3).
        self.credentials: DatabaseCredentials | None = None
        if settings.is_primary:
            standby_key = peer.get("kmsKeyArn")
            self.credentials = DatabaseCredentials(f"{site}-credentials", DatabaseCredentialsArgs(
                site=site, kms_key_arn=self.key.arn, master_username=settings.db_username,
                db_name=settings.db_name,
                replica=SecretReplica(region=settings.standby_region,
                                      kms_key_arn=str(standby_key)) if standby_key else None))
        born = settings.db_born_as_writer or (
            settings.db_retiring is not None and settings.is_primary
            and settings.db_retiring.generation == 1)
        self.database = Database(f"{site}-database", DatabaseArgs(
            site=site, generation=settings.db_generation,
            role="writer" if writer else "replica",
            born_as_writer=settings.db_born_as_writer,
            instance_class=settings.db_instance_class,
            engine_major=str(settings.engine_major),
            allocated_storage_gb=settings.db_allocated_storage_gb,
            retention_days=settings.backup_retention_days,
            read_replicas=settings.db_read_replicas if writer else 0,
            db_name=settings.db_name, username=settings.db_username, kms_key_arn=self.key.arn,
            subnet_ids=self.network.private_subnet_ids,
            security_group_id=self.network.db_security_group_id,
            log_retention_days=settings.db_log_retention_days,
            master_password=(self.credentials.master_password
                             if born and self.credentials is not None else None),
            source_db_arn=None if writer else peer["dbArn"],
            replica_security_group_id=self.network.replica_db_security_group_id,
            retiring=settings.db_retiring,
            monitoring_role_arn=self.monitoring_role.arn,
            monitoring_interval=self.monitoring_role.interval_seconds,
            parameter_key_id=self.key.alias_name))
        if not writer:
            # PITR in this region from the writer's automated backups.
            AutomatedBackupReplication(f"{site}-pitr", BackupReplicationArgs(
                source_db_arn=peer["dbArn"], kms_key_arn=self.key.arn,
                retention_days=settings.backup_retention_days))
        self.capacity = serving_capacity(settings)
        self.app = AppTier(f"{site}-app", AppTierArgs(
            site=site, region=settings.region, vpc_id=self.network.vpc_id,
            public_subnet_ids=self.network.public_subnet_ids,
            private_subnet_ids=self.network.private_subnet_ids,
            alb_security_group_id=self.network.alb_security_group_id,
            app_security_group_id=self.network.app_security_group_id,
            certificate_arn=settings.certificate_arn, ami_id=settings.app_ami_id,
            instance_type=settings.app_instance_type, app_port=settings.app_port,
            health_check_path=settings.health_check_path, capacity=self.capacity,
            endpoint_parameter_arn=self.database.endpoint_parameter.arn,
            endpoint_parameter_name=endpoint_parameter_name(site),
            account_id=self.account_id, kms_key_arn=self.key.arn,
            autoscaling_role_arn=self.autoscaling_role.arn,
            access_log_bucket=self.audit.alb_log_bucket.name,
            access_log_ready=[self.audit.alb_log_bucket]))
        self.waf = Waf(f"{site}-waf", WafArgs(
            site=site, region=settings.region, account_id=self.account_id,
            kms_key_arn=self.key.arn, load_balancer_arn=self.app.load_balancer.arn))
        self.backup = BackupPlan(f"{site}-backup", BackupPlanArgs(
            site=site, kms_key_arn=self.key.arn, retention_days=settings.backup_retention_days,
            interval_hours=settings.backup_interval_hours,
            vault_lock_mode=settings.vault_lock_mode,
            database_arn=self.database.arn if writer else None,
            copy_to_vault_arn=peer["backupVaultArn"] if writer and self.linked else None,
            db_subnet_group_name=self.database.subnet_group_name,
            restore_test_security_group_id=self.network.restore_test_security_group_id))
        lagging = ([replica_identifier(site, i, settings.db_generation)
                    for i in range(1, len(self.database.replicas) + 1)] if writer
                   else [db_identifier(site, settings.db_generation)])
        self.monitoring = Monitoring(f"{site}-monitoring", MonitoringArgs(
            site=site, kms_key_id=self.key.arn, emails=settings.alert_emails,
            database_identifier=self.database.identifier, replica_identifiers=lagging,
            lag_alarm_seconds=settings.replica_lag_alarm_seconds,
            lag_warning_seconds=settings.replica_lag_warning_seconds,
            allocated_storage_gb=settings.db_allocated_storage_gb,
            alb_arn_suffix=self.app.load_balancer.arn_suffix,
            target_group_arn_suffix=self.app.target_group.arn_suffix,
            backup_vault_name=self.backup.vault.name,
            tier_emails=[(tier.name, email) for tier in settings.escalation_tiers
                         for email in tier.emails]))

    def outputs(self, settings: Settings) -> dict[str, Any]:
        return {
            "site": settings.site,
            "region": settings.region,
            "activeSite": settings.active_site,
            "dbGeneration": settings.db_generation,
            "vpcId": self.network.vpc_id,
            "kmsKeyArn": self.key.arn,
            "dbIdentifier": self.database.identifier,
            "dbArn": self.database.arn,
            "dbAddress": self.database.address,
            "dbEndpoint": self.database.endpoint,
            "dbSecurityGroupId": self.network.db_security_group_id,
            "dbEndpointParameter": self.database.endpoint_parameter.name,
            "dbReplicaIdentifiers": [r.identifier for r in self.database.replicas],
            "albDnsName": self.app.load_balancer.dns_name,
            "albZoneId": self.app.load_balancer.zone_id,
            "targetGroupArn": self.app.target_group.arn,
            "autoScalingGroupName": self.app.group.name,
            "launchTemplateId": self.app.launch_template.id,
            "appCapacity": _capacity(self.capacity),
            "productionCapacity": _capacity(settings.app_capacity),
            "backupBucketName": self.storage.bucket.name,
            "backupBucketArn": self.storage.bucket.arn,
            "backupVaultName": self.backup.vault.name,
            "backupVaultArn": self.backup.vault.arn,
            "alertTopicArn": self.monitoring.topic.arn,
            "auditBucketName": self.audit.bucket.name,
            "albLogBucketName": self.audit.alb_log_bucket.name,
            "auditTrailArn": self.audit.trail_arn,
            "trailLogGroupName": self.audit.trail_log_group.name,
            "securityTopicArn": self.detection.topic.arn,
            "guardDutyDetectorId": self.detection.detector.id,
        }


async def build_site(settings: Settings) -> dict[str, Any]:
    """Build this stack's resources and return its outputs."""
    if settings.is_primary:
        return await _build_primary(settings)
    return await _build_standby(settings)


async def _build_primary(settings: Settings) -> dict[str, Any]:
    standby: dict[str, Any] = {}
    if settings.standby_stack is not None:
        reference = pulumi.StackReference("standbyStack", settings.standby_stack)
        standby = await read_outputs(reference, STANDBY_OUTPUTS_FOR_PRIMARY)
    if not settings.is_writer:
        assert settings.standby_stack is not None  # guaranteed by the settings loader
        require(standby, ["dbArn"], settings.standby_stack,
                "run `pulumi up -s dr` first: the primary site replicates from the standby's "
                "writer (docs/lifecycles.md, failback)")
    site = _Site(settings, standby)
    if not site.linked:
        pulumi.log.info("standby stack outputs not available yet: backups are not replicated "
                        "or copied cross-region, and the database secrets are not replicated "
                        "into the standby region, until `pulumi up -s dr` and a second "
                        "`pulumi up -s prod` (docs/deploying.md)")
    assert site.credentials is not None
    return {**site.outputs(settings), "standbyLinked": site.linked,
            "dbMasterSecretArn": site.credentials.master_secret.arn,
            "dbAppSecretArn": site.credentials.app_secret.arn}


async def _build_standby(settings: Settings) -> dict[str, Any]:
    assert settings.primary_stack is not None  # guaranteed by the settings loader
    reference = pulumi.StackReference("primaryStack", settings.primary_stack)
    primary = await read_outputs(reference, PRIMARY_OUTPUTS_FOR_STANDBY)
    require(primary, PRIMARY_REQUIRED, settings.primary_stack,
            "run `pulumi up -s prod` first (docs/deploying.md)")
    site = _Site(settings, primary)

    assert settings.hosted_zone_id is not None and settings.domain_name is not None
    switch = TrafficSwitch("traffic-switch", TrafficSwitchArgs(
        region=settings.standby_region, account_id=site.account_id,
        interval_seconds=settings.health_check_interval_seconds,
        failure_threshold=settings.health_check_failure_threshold,
        checker_regions=CHECKER_REGIONS))
    dns = DnsFailover("dns", DnsFailoverArgs(
        hosted_zone_id=settings.hosted_zone_id, record_name=settings.domain_name,
        health_check_path=settings.health_check_path,
        interval_seconds=settings.health_check_interval_seconds,
        failure_threshold=settings.health_check_failure_threshold,
        checker_regions=CHECKER_REGIONS,
        primary=SiteEndpoint("primary", primary["albDnsName"], primary["albZoneId"]),
        standby=SiteEndpoint("standby", site.app.load_balancer.dns_name,
                             site.app.load_balancer.zone_id),
        switch_health_check_id=switch.health_check.id,
        alarm_topic_arn=primary.get("alertTopicArn")))
    public_health_url = f"https://{settings.domain_name}{settings.health_check_path}"

    values: dict[str, Any] = {
        "account": site.account_id,
        "standbyDbIdentifier": site.database.identifier,
        "standbyDbArn": site.database.arn,
        "standbyDbSg": site.network.db_security_group_id,
        "standbyAsg": site.app.group.name,
        "standbyLaunchTemplate": site.app.launch_template.id,
        "standbyTargetGroup": site.app.target_group.arn,
        "standbyAlbDns": site.app.load_balancer.dns_name,
        "standbyEndpointParameter": site.database.endpoint_parameter.name,
        "standbyReplicas": [r.identifier for r in site.database.replicas],
        "primaryCheck": dns.primary_check.id,
        "standbyCheck": dns.standby_check.id,
        "primaryRecordCheck": dns.primary_record_check.id,
        "switchBucket": switch.bucket_name,
        "switchCheck": switch.health_check.id,
        "topic": site.monitoring.topic.arn,
        "backupBucket": site.storage.bucket.name,
        "kmsKey": site.key.arn,
        "backupVault": site.backup.vault.arn,
    }
    # failover.py reads and rewrites SecureString parameters in both regions: both site keys.
    values["primaryKmsKey"] = primary["kmsKeyArn"]

    def render(v: dict[str, Any]) -> Inventory:
        def cap(raw: dict[str, Any]) -> Capacity:
            return Capacity(min=int(raw["min"]), desired=int(raw["desired"]),
                            max=int(raw["max"]))

        return Inventory(
            version=INVENTORY_VERSION, project=pulumi.get_project(), stack=settings.stack,
            objectives=Objectives(rto_minutes=settings.rto_minutes,
                                  rpo_minutes=settings.rpo_minutes),
            primary=SiteInventory(
                region=str(primary["region"]),
                database=DatabaseInventory(
                    identifier=primary["dbIdentifier"], arn=primary["dbArn"],
                    security_group_id=primary["dbSecurityGroupId"],
                    backup_retention_days=settings.backup_retention_days,
                    replica_identifiers=tuple(primary["dbReplicaIdentifiers"]),
                    endpoint_parameter=primary["dbEndpointParameter"],
                    generation=int(primary.get("dbGeneration", 1))),
                app=AppInventory(
                    auto_scaling_group_name=primary["autoScalingGroupName"],
                    launch_template_id=primary["launchTemplateId"],
                    target_group_arn=primary["targetGroupArn"],
                    load_balancer_dns=primary["albDnsName"],
                    capacity=cap(primary["appCapacity"]),
                    production_capacity=cap(primary["productionCapacity"])),
                health_check_id=v["primaryCheck"]),
            standby=SiteInventory(
                region=settings.standby_region,
                database=DatabaseInventory(
                    identifier=v["standbyDbIdentifier"], arn=v["standbyDbArn"],
                    security_group_id=v["standbyDbSg"],
                    backup_retention_days=settings.backup_retention_days,
                    replica_identifiers=tuple(v["standbyReplicas"]),
                    endpoint_parameter=v["standbyEndpointParameter"],
                    generation=settings.db_generation),
                app=AppInventory(
                    auto_scaling_group_name=v["standbyAsg"],
                    launch_template_id=v["standbyLaunchTemplate"],
                    target_group_arn=v["standbyTargetGroup"],
                    load_balancer_dns=v["standbyAlbDns"],
                    capacity=cap(_capacity(site.capacity)),
                    production_capacity=cap(_capacity(settings.app_capacity))),
                health_check_id=v["standbyCheck"]),
            dns=DnsInventory(
                hosted_zone_id=settings.hosted_zone_id or "", record_name=settings.domain_name
                or "", primary_set_identifier=PRIMARY_SET_ID,
                secondary_set_identifier=SECONDARY_SET_ID, public_health_url=public_health_url),
            traffic_switch=SwitchInventory(
                region=settings.standby_region, bucket=v["switchBucket"], key=SWITCH_KEY,
                health_check_id=v["switchCheck"], primary_health_check_id=v["primaryRecordCheck"]),
            alert_topic_arn=v["topic"], backup_bucket=v["backupBucket"],
            lock_parameter=LOCK_PARAMETER, journal_parameter=JOURNAL_PARAMETER,
            active_site=settings.active_site,
            primary_backup_bucket=str(primary["backupBucketArn"]).rsplit(":", 1)[-1])

    # While the standby site writes, a regional failover promotes the primary site: its
    # region gets a copy of the inventory (the lock, journal and timeline go there too).
    reversed_copy = (InventoryCopy(region=settings.primary_region,
                                   key_id=site_key_alias("primary"))
                     if settings.active_site == "standby" else None)
    inventory = FailoverInventory("failover-inventory", FailoverInventoryArgs(
        parameter_name=settings.inventory_parameter, values=values, render=render,
        key_id=site.key.alias_name, copy=reversed_copy))

    def operator_resources(v: dict[str, Any]) -> OperatorResources:
        account = v["account"]
        p_region, s_region = settings.primary_region, settings.standby_region

        def ssm(region: str, name: str) -> str:
            return f"arn:aws:ssm:{region}:{account}:parameter{name}"

        def db(region: str, ident: str) -> str:
            return f"arn:aws:rds:{region}:{account}:db:{ident}"

        def asg(region: str, name: str) -> str:
            return (f"arn:aws:autoscaling:{region}:{account}:autoScalingGroup:*:"
                    f"autoScalingGroupName/{name}")

        primary_replicas = [db(p_region, r) for r in primary["dbReplicaIdentifiers"]]
        sites = (("primary", p_region), ("standby", s_region))

        def rds(region: str, kind: str, name: str) -> str:
            return f"arn:aws:rds:{region}:{account}:{kind}:{name}"

        in_region = InRegionResources(
            lock_journal_parameters=[ssm(r, in_region_parameter(n, "*")) for n, r in sites],
            endpoint_parameters=[ssm(p_region, primary["dbEndpointParameter"]),
                                 ssm(s_region, v["standbyEndpointParameter"])],
            auto_scaling_groups=[asg(p_region, primary["autoScalingGroupName"]),
                                 asg(s_region, v["standbyAsg"])],
            launch_templates=[
                f"arn:aws:ec2:{p_region}:{account}:launch-template/{primary['launchTemplateId']}",
                f"arn:aws:ec2:{s_region}:{account}:launch-template/"
                f"{v['standbyLaunchTemplate']}"],
            alarms=[f"arn:aws:cloudwatch:{r}:{account}:alarm:{alarm_name(n, '*')}"
                    for n, r in sites],
            restore=[arn for n, r in sites for arn in (
                rds(r, "db", db_identifier_pattern(n)),
                rds(r, "subgrp", db_subnet_group_name(n)),
                rds(r, "pg", parameter_group_pattern(n)), rds(r, "og", "default:postgres-*"),
                rds(r, "auto-backup", "*"))],
            generations=[rds(r, "db", db_identifier_pattern(n)) for n, r in sites],
            database_reads=[rds(r, kind, "*") for _, r in sites for kind in ("db", "auto-backup")],
            site_keys=[v["primaryKmsKey"], v["kmsKey"]],
            app_secrets=[secret_arn_pattern(r, account, APP_SECRET_NAME) for _, r in sites],
            incident_prefixes=[f"{primary['backupBucketArn']}/{INCIDENT_PREFIX}*",
                               f"arn:aws:s3:::{v['backupBucket']}/{INCIDENT_PREFIX}*"],
            # RunInstances names instances, volumes, interfaces, groups, subnets (account
            # ARNs) and the image (no account); the condition keeps it to the templates.
            launch_resources=[arn for _, r in sites for arn in (
                f"arn:aws:ec2:{r}:{account}:*", f"arn:aws:ec2:{r}::image/*")],
            instance_roles=[f"arn:aws:iam::{account}:role/{app_name(n)}" for n, _ in sites])
        return OperatorResources(
            in_region=in_region,
            # Both regions: a reversed failover (activeSite standby) keeps its inventory
            # copy, lock and journal in the primary region.
            ssm_failover_parameters=[
                *(ssm(region, name) for region in (s_region, p_region)
                  for name in (settings.inventory_parameter, LOCK_PARAMETER, JOURNAL_PARAMETER)),
                ssm(s_region, SWITCHOVER_JOURNAL_PARAMETER),
                ssm(s_region, FAILBACK_JOURNAL_PARAMETER)],
            endpoint_parameters=[ssm(p_region, primary["dbEndpointParameter"]),
                                 ssm(s_region, v["standbyEndpointParameter"])],
            databases=[db(p_region, primary["dbIdentifier"]), *primary_replicas,
                       db(s_region, v["standbyDbIdentifier"])],
            promotable_databases=[db(s_region, v["standbyDbIdentifier"]), *primary_replicas],
            auto_scaling_groups=[asg(p_region, primary["autoScalingGroupName"]),
                                 asg(s_region, v["standbyAsg"])],
            primary_db_security_group=(f"arn:aws:ec2:{p_region}:{account}:security-group/"
                                       f"{primary['dbSecurityGroupId']}"),
            switch_object=f"arn:aws:s3:::{v['switchBucket']}/{SWITCH_KEY}",
            incident_prefix=f"arn:aws:s3:::{v['backupBucket']}/{INCIDENT_PREFIX}*",
            reversed_failover=ReversedFailoverResources(
                primary_database=db(p_region, primary["dbIdentifier"]),
                standby_db_security_group=(f"arn:aws:ec2:{s_region}:{account}:security-group/"
                                           f"{v['standbyDbSg']}"),
                incident_prefix=f"{primary['backupBucketArn']}/{INCIDENT_PREFIX}*",
                primary_key=v["primaryKmsKey"])
            if settings.active_site == "standby" else None,
            backup_buckets=[primary["backupBucketArn"], f"arn:aws:s3:::{v['backupBucket']}"],
            switch_bucket=f"arn:aws:s3:::{v['switchBucket']}",
            database_regions=[rds(r, "db", "*") for _, r in sites],
            standby_key=v["kmsKey"], standby_topic=v["topic"],
            primary_topic=primary.get("alertTopicArn"),
            notify_secrets=[secret_arn_pattern(region, account, settings.notify_secret_name)
                            for region in (s_region, p_region)],
            parameter_keys=[v["primaryKmsKey"], v["kmsKey"]],
            master_secrets=[secret_arn_pattern(region, account, MASTER_SECRET_NAME)
                            for region in (p_region, s_region)],
            route53=[f"arn:aws:route53:::hostedzone/{settings.hosted_zone_id}",
                     *(f"arn:aws:route53:::healthcheck/{v[k]}" for k in
                       ("primaryCheck", "standbyCheck", "primaryRecordCheck", "switchCheck"))])

    operator = OperatorRole("operator", OperatorRoleArgs(
        account_id=site.account_id, values=values, resources=operator_resources))

    def sites_of(v: dict[str, Any]) -> Sites:
        return Sites(account=v["account"], primary_region=settings.primary_region,
                     standby_region=settings.standby_region,
                     site_keys=[v["primaryKmsKey"], v["kmsKey"]],
                     alert_topics=[t for t in (primary.get("alertTopicArn"), v["topic"]) if t],
                     backup_vaults=[primary["backupVaultArn"], v["backupVault"]])

    def command_resources(v: dict[str, Any]) -> dict[str, Any]:
        in_region = operator_resources(v).in_region
        assert in_region is not None
        return {**in_region_resources(in_region), **command_role_resources(sites_of(v))}

    # The other commands' roles (caresync_dr/operator_permissions.py, ROLES): one each.
    command_roles = {
        spec.name: CommandRole(spec.name.removeprefix("caresync-dr-"), CommandRoleArgs(
            spec=spec, account_id=site.account_id, values=values,
            resources=command_resources))
        for spec in ROLES if spec.name != OPERATOR_ROLE_NAME}

    return {
        **site.outputs(settings),
        "recordName": settings.domain_name,
        "publicHealthUrl": public_health_url,
        "primaryHealthCheckId": dns.primary_check.id,
        "standbyHealthCheckId": dns.standby_check.id,
        "primaryRecordHealthCheckId": dns.primary_record_check.id,
        "trafficSwitchBucket": switch.bucket_name,
        "trafficSwitchKey": SWITCH_KEY,
        "trafficSwitchHealthCheckId": switch.health_check.id,
        "inventoryParameter": inventory.parameter.name,
        "operatorRoleArn": operator.role.arn,
        # Every operator role by name: what a command's missing-credentials message points to.
        "roleArns": {OPERATOR_ROLE_NAME: operator.role.arn,
                     **{name: role.role.arn for name, role in command_roles.items()}},
    }

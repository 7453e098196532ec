"""The site database: PostgreSQL on RDS, as a primary, a cross-region replica, or promoted.

* ``primary``: Multi-AZ, customer-managed KMS key, deletion protection, automated backups kept
  ``retention_days``, ``rds.force_ssl=1``, Secrets Manager master password, logs exported, not
  public, and ``read_replicas`` in-region replicas.
* ``replica``: the standby, a cross-region read replica of the primary: ``replicate_source_db``
  is the primary's ARN (cross-region replicas need the ARN), ``kms_key_id`` a key of the
  standby region; ``username``/``db_name`` cannot be set on a replica. Automated backups of the
  primary are also replicated into this region, so point-in-time restore works here.
* ``promoted``: the same instance after a failover promoted it: no ``replicate_source_db``
  (removing it is what promotes), Multi-AZ and backups as a primary, so ``pulumi up`` matches
  reality instead of fighting it.

Each site also has an SSM SecureString parameter ``/caresync-dr/<site>/database-host`` with the
writer endpoint (``host:port``), encrypted with the site key (by its alias, the ``KeyId``
failover.py writes it with); the app reads it at boot and failover repoints it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import pulumi
import pulumi_aws as aws

DatabaseMode = Literal["primary", "replica", "promoted"]
LOG_EXPORTS = ["postgresql", "upgrade"]


def db_identifier(site: str) -> str:
    return f"caresync-{site}-db"


def replica_identifier(site: str, index: int) -> str:
    return f"caresync-{site}-db-replica-{index}"


def endpoint_parameter_name(site: str) -> str:
    return f"/caresync-dr/{site}/database-host"


@dataclass(frozen=True)
class DatabaseArgs:
    site: str
    mode: DatabaseMode
    instance_class: str
    engine_version: str
    allocated_storage_gb: int
    retention_days: int
    read_replicas: int
    db_name: str
    username: str
    kms_key_arn: pulumi.Input[str]
    subnet_ids: Sequence[pulumi.Input[str]]
    security_group_id: pulumi.Input[str]
    source_db_arn: str | None = None  # replica/promoted: the primary's ARN (prod output)
    # The in-region read replicas' own group (primary mode): revoking the writer's group's
    # ingress fences only the writer (failover --scope database).
    replica_security_group_id: pulumi.Input[str] | None = None
    # Enhanced Monitoring (components/rds_monitoring.py): the role and the interval in seconds.
    monitoring_role_arn: pulumi.Input[str] | None = None
    monitoring_interval: int = 0
    # The site key's alias name (SiteKey.alias_name): the endpoint parameter's key_id.
    parameter_key_id: pulumi.Input[str] | None = None


class Database(pulumi.ComponentResource):
    instance: aws.rds.Instance
    replicas: list[aws.rds.Instance]
    identifier: pulumi.Output[str]
    arn: pulumi.Output[str]
    address: pulumi.Output[str]
    endpoint_parameter: aws.ssm.Parameter
    subnet_group_name: pulumi.Output[str]

    def __init__(self, name: str, args: DatabaseArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("caresync:dr:Database", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        if args.mode != "primary" and not args.source_db_arn:
            raise ValueError(f"a {args.mode} database needs the primary's ARN (source_db_arn)")
        if (args.mode == "primary" and args.read_replicas
                and args.replica_security_group_id is None):
            raise ValueError("in-region read replicas need their own security group "
                             "(replica_security_group_id), not the writer's")
        major = args.engine_version.split(".")[0]
        subnet_group = aws.rds.SubnetGroup(
            f"{name}-subnets", name=f"caresync-{args.site}-db",
            description=f"CareSync {args.site} database: private subnets",
            subnet_ids=list(args.subnet_ids), opts=child)
        params = aws.rds.ParameterGroup(
            f"{name}-params", name=f"caresync-{args.site}-postgres{major}",
            family=f"postgres{major}",
            description="CareSync: TLS only, connection and slow-query logging",
            parameters=[
                aws.rds.ParameterGroupParameterArgs(name="rds.force_ssl", value="1",
                                                    apply_method="pending-reboot"),
                aws.rds.ParameterGroupParameterArgs(name="log_connections", value="1"),
                aws.rds.ParameterGroupParameterArgs(name="log_disconnections", value="1"),
                aws.rds.ParameterGroupParameterArgs(name="log_min_duration_statement",
                                                    value="1000"),
            ], opts=child)
        ident = db_identifier(args.site)
        writable = args.mode != "replica"

        def instance(logical: str, identifier: str, source: pulumi.Input[str] | None,
                     primary: bool, security_group_id: pulumi.Input[str]) -> aws.rds.Instance:
            # One call for every role, so each HIPAA default is written once; None = unset.
            return aws.rds.Instance(
                logical, identifier=identifier,
                replicate_source_db=source,
                engine="postgres" if primary else None,
                engine_version=args.engine_version if primary else None,
                allocated_storage=args.allocated_storage_gb if primary else None,
                max_allocated_storage=args.allocated_storage_gb * 4,
                db_name=args.db_name if primary else None,
                username=args.username if primary else None,
                manage_master_user_password=True if identifier == ident and writable else None,
                master_user_secret_kms_key_id=(args.kms_key_arn
                                               if identifier == ident and writable else None),
                iam_database_authentication_enabled=True,
                multi_az=identifier == ident and writable,
                instance_class=args.instance_class, storage_type="gp3",
                storage_encrypted=True, kms_key_id=args.kms_key_arn,
                db_subnet_group_name=subnet_group.name, parameter_group_name=params.name,
                vpc_security_group_ids=[security_group_id],
                publicly_accessible=False, deletion_protection=True,
                backup_retention_period=args.retention_days, backup_window="03:00-03:30",
                maintenance_window="sun:04:00-sun:05:00",
                enabled_cloudwatch_logs_exports=LOG_EXPORTS, copy_tags_to_snapshot=True,
                auto_minor_version_upgrade=True, performance_insights_enabled=True,
                monitoring_interval=args.monitoring_interval or None,
                monitoring_role_arn=args.monitoring_role_arn if args.monitoring_interval else None,
                performance_insights_kms_key_id=args.kms_key_arn,
                skip_final_snapshot=False, final_snapshot_identifier=f"{identifier}-final",
                tags={"caresync:site": args.site,
                      "caresync:role": args.mode if identifier == ident else "read-replica"},
                # The writer (primary, standby replica, promoted) holds the data: protected in
                # Pulumi as well as deletion_protection at the RDS API. In-region replicas
                # keep deletion_protection only, so lowering dbReadReplicas stays possible.
                opts=pulumi.ResourceOptions(parent=self, protect=identifier == ident))

        # replica: the source ARN (cross-region needs the ARN); promoted: no source at all,
        # which is exactly the state a promotion leaves, so `pulumi up` reconciles.
        self.instance = instance(f"{name}-instance", ident,
                                 args.source_db_arn if args.mode == "replica" else None,
                                 primary=args.mode == "primary",
                                 security_group_id=args.security_group_id)
        self.replicas = []
        if args.mode == "primary" and args.replica_security_group_id is not None:
            replica_group = args.replica_security_group_id
            for i in range(1, args.read_replicas + 1):
                self.replicas.append(instance(f"{name}-replica-{i}",
                                              replica_identifier(args.site, i),
                                              self.instance.identifier, primary=False,
                                              security_group_id=replica_group))
        # SecureString with the site key: the writer's address is infrastructure detail that
        # IAM alone should not expose (Checkov CKV2_AWS_34). key_id is the alias name, the
        # string failover.py passes as KeyId, so a refresh after a failover shows no drift.
        # Changing type or key is an in-place PutParameter whose value is the one in Pulumi's
        # state (ignore_changes keeps the old input): README, "Checkov", says when that is safe.
        self.endpoint_parameter = aws.ssm.Parameter(
            f"{name}-endpoint", name=endpoint_parameter_name(args.site),
            type="String" if args.parameter_key_id is None else "SecureString",
            key_id=args.parameter_key_id,
            value=self.instance.endpoint,  # host:port, as failover.py writes it
            description=f"Writer endpoint the CareSync {args.site} app connects to; "
                        "failover repoints it",
            # failover.py repoints this during a database failover; a later `pulumi up` must
            # not point the app back at the failed instance.
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["value"]))
        self.subnet_group_name = subnet_group.name
        self.identifier = self.instance.identifier
        self.arn = self.instance.arn
        self.address = self.instance.address
        self.register_outputs({"identifier": self.instance.identifier, "arn": self.instance.arn,
                               "replicaIdentifiers": [r.identifier for r in self.replicas]})


@dataclass(frozen=True)
class BackupReplicationArgs:
    source_db_arn: str
    kms_key_arn: pulumi.Input[str]
    retention_days: int


class AutomatedBackupReplication(pulumi.ComponentResource):
    """The primary's automated backups replicated into the standby region (PITR there)."""

    def __init__(self, name: str, args: BackupReplicationArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("caresync:dr:AutomatedBackupReplication", name, None, opts)
        # Created in the destination (this stack's, standby) region, with a key of that region.
        replication = aws.rds.InstanceAutomatedBackupsReplication(
            f"{name}-replication", source_db_instance_arn=args.source_db_arn,
            kms_key_id=args.kms_key_arn, retention_period=args.retention_days,
            opts=pulumi.ResourceOptions(parent=self))
        self.register_outputs({"id": replication.id})

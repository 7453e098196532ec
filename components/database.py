"""The site database: PostgreSQL on RDS, in generations, as the writer or as a replica.

A site's database is a *generation*: generation 1 keeps the bootstrap identifiers
(``caresync-<site>-db``), generation N > 1 is ``caresync-<site>-db-g<N>``. RDS cannot turn an
existing instance into a read replica ("cannot elect new source database for replication"),
so a site that must replicate again (failback, a major upgrade the cross-region replica cannot
follow) gets a new generation, and the previous one is retired on purpose (``dbRetiring``).

Roles (``activeSite`` decides which site writes):

* ``writer``: Multi-AZ, deletion protection and ``protect=True``, automated backups kept
  ``retention_days``, a final snapshot on deletion, and ``read_replicas`` in-region replicas.
  Only the bootstrap generation (primary site, generation 1) was *created* as a writer and
  carries engine, storage, database name, master user and password; every other writer was
  promoted from a replica and inherits them, so setting them (ForceNew) would replace it.
* ``replica``: a cross-region read replica of the other site's writer: ``replicate_source_db``
  is its ARN, ``kms_key_id`` a key of this region, no username/db_name. Protected like a
  writer: it is the disaster-recovery copy.
* in-region replicas of a writer name their source by ARN (the provider requires the ARN when
  ``db_subnet_group_name`` is set: ``DBSubnetGroupNotAllowedFault`` otherwise), have neither
  deletion protection nor ``protect`` and skip the final snapshot (RDS refuses one for a read
  replica: DeleteDBInstance, ``SkipFinalSnapshot``), so lowering ``dbReadReplicas`` deletes
  them. They hold no data their source lacks.
* a retiring generation keeps its last inputs (``ignore_changes``) except what deletion needs:
  no deletion protection, not protected, and a final snapshot if it is a writer. Removing it
  from ``dbRetiring`` then deletes it.

Every instance applies modifications immediately (``apply_immediately``): a promoted standby
must become Multi-AZ now, not in next week's maintenance window, and a modification left
pending is invisible to ``pulumi preview`` and to the lifecycle model. Run changes that cost a
restart (class, major version) in a maintenance window (docs/lifecycles.md).

Each instance's RDS log groups (``/aws/rds/instance/<id>/postgresql`` and ``/upgrade``) are
created before it, encrypted with the site key and kept ``log_retention_days``; otherwise RDS
creates them itself on export, unencrypted and kept forever, and slow-query text may hold PHI.

Database audit (issue 13): the parameter group loads pgAudit (``shared_preload_libraries``, a
static parameter: RDS applies it at the next reboot) and logs role and privilege changes and DDL
for every session (``pgaudit.log = ddl,role``), and access to the PHI tables through object
auditing (``pgaudit.role = rds_pgaudit``, the only value RDS allows; the role and its grants on
the PHI tables are SQL, ``caresync_dr/db/pgaudit.py``). Parameter values are never logged (they
may hold PHI). The audit lines go to the PostgreSQL log, which is exported to the
``postgresql`` log group below (site key, ``dbLogRetentionDays``). RDS user guide, "Using pgAudit
to log database activity".

Each site also has an SSM SecureString parameter ``/caresync-dr/<site>/database-host`` with the
endpoint (``host:port``) of its current generation, encrypted with the site key (by its alias,
the ``KeyId`` failover.py writes it with); the app reads it at boot.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from caresync_dr.db.pgaudit import parameter_group_settings
from caresync_dr.names import (
    db_identifier,
    db_subnet_group_name,
    endpoint_parameter_name,
    parameter_group_family,
    parameter_group_name,
    replica_identifier,
)
from caresync_dr.settings import DbRole, RetiringGeneration

LOG_EXPORTS = ("postgresql", "upgrade")
ENGINE = "postgres"
# What a retiring generation may still change: the properties deletion needs. Everything else
# keeps its last value (ignore_changes), so retiring never modifies the instance otherwise.
RETIRING_MUTABLE = frozenset({"deletionProtection", "skipFinalSnapshot",
                              "finalSnapshotIdentifier", "deleteAutomatedBackups",
                              "applyImmediately", "tags"})
INSTANCE_PROPERTIES = (
    "identifier", "instanceClass", "engine", "engineVersion", "allowMajorVersionUpgrade",
    "allocatedStorage", "maxAllocatedStorage", "dbName", "username", "password",
    "replicateSourceDb", "multiAz", "storageType", "storageEncrypted", "kmsKeyId",
    "dbSubnetGroupName", "parameterGroupName", "vpcSecurityGroupIds", "publiclyAccessible",
    "deletionProtection", "backupRetentionPeriod", "backupWindow", "maintenanceWindow",
    "enabledCloudwatchLogsExports", "copyTagsToSnapshot", "autoMinorVersionUpgrade",
    "performanceInsightsEnabled", "performanceInsightsKmsKeyId", "monitoringInterval",
    "monitoringRoleArn",
    "iamDatabaseAuthenticationEnabled", "skipFinalSnapshot", "finalSnapshotIdentifier",
    "deleteAutomatedBackups", "applyImmediately", "tags",
)


def log_group_names(identifier: str) -> list[str]:
    """The log groups RDS exports an instance's PostgreSQL logs to (RDS user guide,
    "Publishing PostgreSQL logs to Amazon CloudWatch Logs")."""
    return [f"/aws/rds/instance/{identifier}/{log}" for log in LOG_EXPORTS]


def _logical(name: str, generation: int) -> str:
    """Logical names of generation 1 are the bootstrap ones; later generations add -g<N>."""
    return name if generation == 1 else f"{name}-g{generation}"


@dataclass(frozen=True)
class DatabaseArgs:
    site: str
    generation: int
    role: DbRole
    born_as_writer: bool  # created standalone: engine, storage, db name, master user, password
    instance_class: str
    engine_major: str
    allocated_storage_gb: int
    retention_days: int
    read_replicas: int  # in-region replicas of a writer (ignored for a replica)
    db_name: str
    username: str
    kms_key_arn: pulumi.Input[str]
    subnet_ids: Sequence[pulumi.Input[str]]
    security_group_id: pulumi.Input[str]
    log_retention_days: int
    master_password: pulumi.Input[str] | None = None  # the born writer's, from the secret
    source_db_arn: pulumi.Input[str] | None = None  # replica: the other site's writer ARN
    # The in-region read replicas' own group (writer): revoking the writer's group's ingress
    # fences only the writer (failover --scope database).
    replica_security_group_id: pulumi.Input[str] | None = None
    retiring: RetiringGeneration | None = None
    # Enhanced Monitoring (components/rds_monitoring.py): the role and the interval in seconds.
    monitoring_role_arn: pulumi.Input[str] | None = None
    monitoring_interval: int = 0
    # The site key's alias name (SiteKey.alias_name): the endpoint parameter's key_id.
    parameter_key_id: pulumi.Input[str] | None = None


@dataclass(frozen=True)
class _Instance:
    """How one instance is rendered: its role and what may be deleted about it."""

    logical: str
    identifier: str
    generation: int
    role: DbRole
    born_as_writer: bool
    in_region_replica: bool = False
    retiring: bool = False


class Database(pulumi.ComponentResource):
    instance: aws.rds.Instance
    replicas: list[aws.rds.Instance]
    retiring: aws.rds.Instance | None
    identifier: pulumi.Output[str]
    arn: pulumi.Output[str]
    address: pulumi.Output[str]
    endpoint: pulumi.Output[str]
    endpoint_parameter: aws.ssm.Parameter
    subnet_group_name: pulumi.Output[str]

    def __init__(self, name: str, args: DatabaseArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("caresync:dr:Database", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        if args.role == "replica" and args.source_db_arn is None:
            raise ValueError("a replica database needs the writer's ARN (source_db_arn)")
        if args.role == "writer" and args.read_replicas and args.replica_security_group_id is None:
            raise ValueError("in-region read replicas need their own security group "
                             "(replica_security_group_id), not the writer's")
        if args.born_as_writer and args.master_password is None:
            raise ValueError("the bootstrap writer needs its master password (master_password)")
        self._args = args
        self._name = name
        self._subnet_group = aws.rds.SubnetGroup(
            f"{name}-subnets", name=db_subnet_group_name(args.site),
            description=f"CareSync {args.site} database: private subnets",
            subnet_ids=list(args.subnet_ids), opts=child)
        # The family follows the engine major; the name carries it, so an upgrade creates the
        # new group beside the old one (a family change replaces a parameter group). The old
        # group is left in AWS (retain_on_delete): a retiring generation may still use it, and
        # RDS refuses to delete a group in use; delete it by hand afterwards (lifecycles.md).
        self._params = aws.rds.ParameterGroup(
            f"{name}-params", name=parameter_group_name(args.site, args.engine_major),
            family=parameter_group_family(args.engine_major),
            description="CareSync: TLS only, connection and slow-query logging",
            parameters=[
                *(aws.rds.ParameterGroupParameterArgs(name=p.name, value=p.value,
                                                      apply_method=p.apply_method)
                  for p in parameter_group_settings()),
                aws.rds.ParameterGroupParameterArgs(name="rds.force_ssl", value="1",
                                                    apply_method="pending-reboot"),
                aws.rds.ParameterGroupParameterArgs(name="log_connections", value="1"),
                aws.rds.ParameterGroupParameterArgs(name="log_disconnections", value="1"),
                aws.rds.ParameterGroupParameterArgs(name="log_min_duration_statement",
                                                    value="1000"),
            ], opts=pulumi.ResourceOptions(parent=self, retain_on_delete=True))

        current = _Instance(
            logical=f"{_logical(name, args.generation)}-instance",
            identifier=db_identifier(args.site, args.generation), generation=args.generation,
            role=args.role, born_as_writer=args.born_as_writer)
        self.instance = self._render(current, args.source_db_arn if args.role == "replica"
                                     else None, args.security_group_id)
        self.replicas = []
        if args.role == "writer" and args.replica_security_group_id is not None:
            for i in range(1, args.read_replicas + 1):
                self.replicas.append(self._render(_Instance(
                    logical=f"{_logical(name, args.generation)}-replica-{i}",
                    identifier=replica_identifier(args.site, i, args.generation),
                    generation=args.generation, role="replica", born_as_writer=False,
                    in_region_replica=True), self.instance.arn,
                    args.replica_security_group_id))
        self.retiring = None
        if args.retiring is not None:
            old = args.retiring
            self.retiring = self._render(_Instance(
                logical=f"{_logical(name, old.generation)}-instance",
                identifier=db_identifier(args.site, old.generation),
                generation=old.generation, role=old.role,
                born_as_writer=args.site == "primary" and old.generation == 1,
                retiring=True), args.source_db_arn if old.role == "replica" else None,
                args.security_group_id)

        # SecureString with the site key: the writer's address is infrastructure detail that
        # IAM alone should not expose (Checkov CKV2_AWS_34). key_id is the alias name, the
        # string failover.py passes as KeyId, so a refresh after a failover shows no drift.
        # Changing type or key is an in-place PutParameter whose value is the one in Pulumi's
        # state (ignore_changes keeps the old input): docs/checkov.md says when that is safe.
        self.endpoint_parameter = aws.ssm.Parameter(
            f"{name}-endpoint", name=endpoint_parameter_name(args.site),
            type="String" if args.parameter_key_id is None else "SecureString",
            key_id=args.parameter_key_id,
            value=self.instance.endpoint,  # host:port, as failover.py writes it
            description=f"Endpoint the CareSync {args.site} app connects to; failover "
                        "repoints it",
            # On the writer's site failover.py --scope database repoints this to a promoted
            # in-region replica; a later `pulumi up` must not point the app back at the failed
            # instance. On the replica site nothing repoints it, and it must follow a new
            # generation, so there the program owns the value.
            opts=pulumi.ResourceOptions(
                parent=self, ignore_changes=["value"] if args.role == "writer" else None))
        self.subnet_group_name = self._subnet_group.name
        self.identifier = self.instance.identifier
        self.arn = self.instance.arn
        self.address = self.instance.address
        self.endpoint = self.instance.endpoint
        self.register_outputs({"identifier": self.instance.identifier, "arn": self.instance.arn,
                               "replicaIdentifiers": [r.identifier for r in self.replicas]})

    def _log_groups(self, spec: _Instance) -> list[aws.cloudwatch.LogGroup]:
        args = self._args
        groups = []
        for log, group_name in zip(LOG_EXPORTS, log_group_names(spec.identifier), strict=True):
            groups.append(aws.cloudwatch.LogGroup(
                f"{spec.logical}-{log}-log", name=group_name, kms_key_id=args.kms_key_arn,
                retention_in_days=args.log_retention_days,
                tags={"caresync:site": args.site},
                # A retired generation's logs are kept for forensics (until their retention
                # ends); its identifier is never reused, so nothing will recreate the group.
                opts=pulumi.ResourceOptions(parent=self, retain_on_delete=spec.retiring)))
        return groups

    def _render(self, spec: _Instance, source: pulumi.Input[str] | None,
                security_group_id: pulumi.Input[str]) -> aws.rds.Instance:
        args = self._args
        writer = spec.role == "writer"
        # The disaster-recovery copies (writer, cross-region replica) are protected twice;
        # in-region replicas and retiring generations must stay deletable.
        guarded = not spec.in_region_replica and not spec.retiring
        born = spec.born_as_writer
        tags = {"caresync:site": args.site, "caresync:generation": str(spec.generation),
                "caresync:role": "read-replica" if spec.in_region_replica else spec.role}
        if spec.retiring:
            tags["caresync:lifecycle"] = "retiring"
        ignore = sorted(set(INSTANCE_PROPERTIES) - RETIRING_MUTABLE) if spec.retiring else []
        if born and not spec.retiring:
            ignore = ["password"]  # rotation changes it; pulumi up must not change it back
        return aws.rds.Instance(
            spec.logical, identifier=spec.identifier,
            replicate_source_db=source,
            engine=ENGINE if born else None,
            # A writer names its major (a prefix: auto minor upgrades pick the minor); a
            # replica follows its source and cannot be major-upgraded on its own.
            engine_version=args.engine_major if writer else None,
            allow_major_version_upgrade=True if writer else None,
            allocated_storage=args.allocated_storage_gb if born else None,
            max_allocated_storage=args.allocated_storage_gb * 4,
            db_name=args.db_name if born else None,
            username=args.username if born else None,
            password=args.master_password if born else None,
            multi_az=writer,
            instance_class=args.instance_class, storage_type="gp3",
            storage_encrypted=True, kms_key_id=args.kms_key_arn,
            db_subnet_group_name=self._subnet_group.name,
            parameter_group_name=self._params.name,
            vpc_security_group_ids=[security_group_id],
            publicly_accessible=False, deletion_protection=guarded,
            backup_retention_period=args.retention_days, backup_window="03:00-03:30",
            maintenance_window="sun:04:00-sun:05:00",
            enabled_cloudwatch_logs_exports=list(LOG_EXPORTS), copy_tags_to_snapshot=True,
            auto_minor_version_upgrade=True, performance_insights_enabled=True,
            performance_insights_kms_key_id=args.kms_key_arn,
            monitoring_interval=args.monitoring_interval or None,
            monitoring_role_arn=args.monitoring_role_arn if args.monitoring_interval else None,
            iam_database_authentication_enabled=True,
            # A writer leaves a final snapshot (and its automated backups) when deleted; RDS
            # refuses a final snapshot of a read replica (DeleteDBInstance SkipFinalSnapshot).
            skip_final_snapshot=not writer,
            final_snapshot_identifier=f"{spec.identifier}-final" if writer else None,
            delete_automated_backups=not writer,
            apply_immediately=True,
            tags=tags,
            opts=pulumi.ResourceOptions(
                parent=self, protect=guarded, ignore_changes=ignore or None,
                depends_on=list(self._log_groups(spec))))


@dataclass(frozen=True)
class BackupReplicationArgs:
    source_db_arn: pulumi.Input[str]
    kms_key_arn: pulumi.Input[str]
    retention_days: int


class AutomatedBackupReplication(pulumi.ComponentResource):
    """The writer's automated backups replicated into this (the replica's) region: PITR here.

    ``retain_on_delete``: the provider's delete stops the replication and then waits, through
    a client of the *source* region, until the source no longer lists it (terraform-provider-
    aws ``instance_automated_backups_replication.go``). After a failover that region is down,
    so dropping the resource from the program (the standby became the writer) must not call
    AWS; the replication of the failed writer ends when that writer is retired, or by hand
    once its region is back (docs/lifecycles.md, post-failover reconcile).
    """

    def __init__(self, name: str, args: BackupReplicationArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("caresync:dr:AutomatedBackupReplication", name, None, opts)
        # Created in the destination (this stack's) region, with a key of that region.
        replication = aws.rds.InstanceAutomatedBackupsReplication(
            f"{name}-replication", source_db_instance_arn=args.source_db_arn,
            kms_key_id=args.kms_key_arn, retention_period=args.retention_days,
            # Every property forces a replacement; RDS refuses a second replication of the
            # same source into one region, so the old one must go first.
            opts=pulumi.ResourceOptions(parent=self, retain_on_delete=True,
                                        delete_before_replace=True))
        self.register_outputs({"id": replication.id})

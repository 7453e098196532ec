"""RDS rules: replication, credentials, deletion, engine versions, logs, windows, names."""

from __future__ import annotations

import re
from typing import Any

from caresync_dr.emulation.aws_rules.core import (
    ResourceLike,
    Rule,
    RunView,
    arn_region,
    as_list,
    number,
)

INSTANCE = "aws:rds/instance:Instance"
PARAMETER_GROUP = "aws:rds/parameterGroup:ParameterGroup"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
BACKUP_REPLICATION = ("aws:rds/instanceAutomatedBackupsReplication:"
                      "InstanceAutomatedBackupsReplication")
USER_GUIDE = "https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/"
API = "https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/"
PROVIDER_INSTANCE = "pulumi-aws aws.rds.Instance docstring"
_IDENTIFIER = re.compile(r"^[a-zA-Z](?!.*--)[a-zA-Z0-9-]{0,62}(?<!-)$")


def _source(db: ResourceLike) -> str | None:
    value = db.inputs.get("replicateSourceDb")
    return str(value) if value else None


def _source_in_run(db: ResourceLike, view: RunView) -> ResourceLike | None:
    source = _source(db)
    if source is None:
        return None
    for other in view.of_type(INSTANCE):
        if source in (other.outputs.get("arn"), other.inputs.get("identifier")):
            return other
    return None


def _is_replication_source(db: ResourceLike, view: RunView) -> bool:
    """Named by a replica of this run, or the site's published database (``dbArn``), which
    the other site's stack replicates cross-region."""
    arn = db.outputs.get("arn")
    if arn is not None and arn == view.outputs.get("dbArn"):
        return True
    return any(_source_in_run(other, view) is db for other in view.of_type(INSTANCE))


def _major_minor(version: Any) -> tuple[int, int | None] | None:
    match = re.fullmatch(r"(\d+)(?:\.(\d+))?(?:\.\d+)?", str(version or ""))
    if match is None:
        return None
    return int(match.group(1)), int(match.group(2)) if match.group(2) else None


def _engine_version(db: ResourceLike, view: RunView) -> str | None:
    """A writer's own engine version; a replica follows its source (in the run, else the
    stack's dbEngineVersion setting: the source is the other stack's writer)."""
    if db.inputs.get("engineVersion"):
        return str(db.inputs["engineVersion"])
    source = _source_in_run(db, view)
    if source is not None and source.inputs.get("engineVersion"):
        return str(source.inputs["engineVersion"])
    return view.config.get("dbEngineVersion") or None


def managed_password_and_replication(db: ResourceLike, view: RunView) -> list[str]:
    if not db.inputs.get("manageMasterUserPassword"):
        return []
    if _source(db) is not None:
        return ["a read replica cannot have a master password managed by Secrets Manager"]
    if _is_replication_source(db, view):
        return ["RDS refuses to create read replicas of a source whose master password "
                "Secrets Manager manages (manage_master_user_password); use a self-managed "
                "secret and `password`"]
    return []


def source_by_arn_with_subnet_group(db: ResourceLike, view: RunView) -> list[str]:
    source = _source(db)
    if source and db.inputs.get("dbSubnetGroupName") and not source.startswith("arn:"):
        return [f"replicate_source_db is the identifier {source!r} while db_subnet_group_name "
                "is set: name the source by ARN (DBSubnetGroupNotAllowedFault)"]
    return []


def cross_region_replica_key(db: ResourceLike, view: RunView) -> list[str]:
    source = _source(db)
    here = view.region_of(db)
    if source is None or arn_region(source) in (None, here):
        return []
    key = db.inputs.get("kmsKeyId")
    if not key:
        return [f"a cross-region replica of an encrypted source needs kms_key_id, a key of "
                f"{here}"]
    if arn_region(key) != here:
        return [f"kms_key_id {key} is in {arn_region(key)}; a cross-region replica needs a key "
                f"of its own region {here} (KMS keys are regional)"]
    return []


def replica_creation_only_arguments(db: ResourceLike, view: RunView) -> list[str]:
    if _source(db) is None:
        return []
    return [f"{name} cannot be specified for a replica (it inherits its source's)"
            for name in ("username", "dbName", "password") if db.inputs.get(name)]


def replica_final_snapshot(db: ResourceLike, view: RunView) -> list[str]:
    if _source(db) is None:
        return []
    problems = []
    if db.inputs.get("skipFinalSnapshot") is not True:
        problems.append("skip_final_snapshot must be true on a read replica: RDS refuses a "
                        "final snapshot when deleting one, so the replica could never be deleted")
    if db.inputs.get("finalSnapshotIdentifier"):
        problems.append("final_snapshot_identifier cannot be specified when deleting a read "
                        "replica")
    return problems


def final_snapshot_identifier(db: ResourceLike, view: RunView) -> list[str]:
    identifier = db.inputs.get("finalSnapshotIdentifier")
    if db.inputs.get("skipFinalSnapshot") is not True and not identifier:
        return ["final_snapshot_identifier is required when skip_final_snapshot is false (the "
                "provider refuses the delete otherwise)"]
    if identifier and not re.fullmatch(r"[A-Za-z](?!.*--)[A-Za-z0-9-]*(?<!-)", str(identifier)):
        return [f"final_snapshot_identifier {identifier!r}: a letter first, then letters, digits "
                "and single hyphens, no hyphen at the end"]
    return []


def replica_backups_need_14_1(db: ResourceLike, view: RunView) -> list[str]:
    if _source(db) is None or not (number(db.inputs.get("backupRetentionPeriod")) or 0):
        return []
    version = _major_minor(_engine_version(db, view))
    if version is None:
        return []
    major, minor = version
    if major < 14 or (major == 14 and minor == 0):
        return [f"PostgreSQL {_engine_version(db, view)} read replicas keep no automated "
                "backups (14.1 or higher is required), yet backup_retention_period is set"]
    return []


def parameter_group_family(db: ResourceLike, view: RunView) -> list[str]:
    name = db.inputs.get("parameterGroupName")
    version = _major_minor(_engine_version(db, view))
    group = view.with_output(PARAMETER_GROUP, "name", name)
    if group is None or version is None:
        return []
    family = str(group.inputs.get("family", ""))
    if family != f"postgres{version[0]}":
        return [f"parameter group {name} is family {family}, the instance runs PostgreSQL "
                f"{version[0]}: RDS refuses a group of another family (postgres{version[0]})"]
    return []


def engine_version_prefix(db: ResourceLike, view: RunView) -> list[str]:
    version = db.inputs.get("engineVersion")
    if version and db.inputs.get("autoMinorVersionUpgrade", True) and "." in str(version):
        return [f"engine_version {version} pins a minor version while auto_minor_version_upgrade "
                "is on: after RDS upgrades the minor, the program asks for a downgrade; give "
                "the major only"]
    return []


def log_groups_first(db: ResourceLike, view: RunView) -> list[str]:
    identifier = db.inputs.get("identifier")
    problems = []
    for log in as_list(db.inputs.get("enabledCloudwatchLogsExports")):
        name = f"/aws/rds/instance/{identifier}/{log}"
        group = view.with_output(LOG_GROUP, "name", name)
        if group is None:
            problems.append(f"exports {log} logs but the program has no log group {name}: RDS "
                            "creates it without a KMS key and keeps its logs forever")
            continue
        if not group.inputs.get("kmsKeyId") or not group.inputs.get("retentionInDays"):
            problems.append(f"log group {name} has no kms_key_id or no retention_in_days")
        if not view.depends_on(db, group):
            problems.append(f"the instance does not depend on its log group {name}: RDS may "
                            "create the group first, and the program's create then fails")
    return problems


def backup_retention(db: ResourceLike, view: RunView) -> list[str]:
    days = number(db.inputs.get("backupRetentionPeriod"))
    if days is not None and not 0 <= days <= 35:
        return [f"backup_retention_period {days:g} is outside 0-35 days"]
    if not days and _is_replication_source(db, view):
        return ["a replication source needs backup_retention_period above 0"]
    return []


def _window(text: str) -> tuple[int, int] | None:
    match = re.fullmatch(r"(?:([a-z]{3}):)?(\d\d):(\d\d)-(?:([a-z]{3}):)?(\d\d):(\d\d)",
                         text.lower())
    if match is None:
        return None
    days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]

    def minute(day: str | None, hour: str, mins: str) -> int:
        return (days.index(day) if day else 0) * 1440 + int(hour) * 60 + int(mins)

    return (minute(match.group(1), match.group(2), match.group(3)),
            minute(match.group(4), match.group(5), match.group(6)))


def backup_window_overlap(db: ResourceLike, view: RunView) -> list[str]:
    backup = _window(str(db.inputs.get("backupWindow") or ""))
    maintenance = _window(str(db.inputs.get("maintenanceWindow") or ""))
    if backup is None or maintenance is None:
        return []
    start, end = backup
    for day in range(7):  # the daily backup window on each day of the week
        if start + day * 1440 < maintenance[1] and maintenance[0] < end + day * 1440:
            return [f"backup_window {db.inputs['backupWindow']} overlaps maintenance_window "
                    f"{db.inputs['maintenanceWindow']}"]
    return []


def performance_insights_key(db: ResourceLike, view: RunView) -> list[str]:
    if db.inputs.get("performanceInsightsKmsKeyId") and not db.inputs.get(
            "performanceInsightsEnabled"):
        return ["performance_insights_kms_key_id needs performance_insights_enabled"]
    return []


def max_allocated_storage(db: ResourceLike, view: RunView) -> list[str]:
    allocated = number(db.inputs.get("allocatedStorage"))
    maximum = number(db.inputs.get("maxAllocatedStorage"))
    if allocated and maximum and 0 < maximum < allocated:
        return [f"max_allocated_storage {maximum:g} is below allocated_storage {allocated:g}"]
    return []


def identifier_format(db: ResourceLike, view: RunView) -> list[str]:
    identifier = str(db.inputs.get("identifier") or "")
    if identifier and not _IDENTIFIER.match(identifier):
        return [f"identifier {identifier!r}: 1-63 letters, digits and single hyphens, a letter "
                "first, no hyphen at the end"]
    return []


def backups_replication(resource: ResourceLike, view: RunView) -> list[str]:
    here = view.region_of(resource)
    source = resource.inputs.get("sourceDbInstanceArn")
    problems = []
    if arn_region(source) in (None, here):
        problems.append(f"the source {source} must be an instance ARN of another region than "
                        f"{here}: automated backups are replicated across regions only")
    key = resource.inputs.get("kmsKeyId")
    if key and arn_region(key) != here:
        problems.append(f"kms_key_id must be a key of the destination region {here}")
    days = number(resource.inputs.get("retentionPeriod"))
    if days is not None and not 1 <= days <= 35:
        problems.append(f"retention_period {days:g} is outside 1-35 days")
    return problems


RULES = [
    Rule("rds-no-managed-password-on-replication", "No Secrets-Manager-managed master password on "
         "a replica or on an instance replicas follow (fault 1)",
         USER_GUIDE + "rds-secrets-manager.html (limitations); terraform-aws-modules/"
         "terraform-aws-rds#512", (INSTANCE,), managed_password_and_replication),
    Rule("rds-replica-source-arn-with-subnet-group", "A replica that sets db_subnet_group_name "
         "names its source by ARN (fault 2)", PROVIDER_INSTANCE + ", replicate_source_db; "
         + API + "API_CreateDBInstanceReadReplica.html", (INSTANCE,),
         source_by_arn_with_subnet_group),
    Rule("rds-cross-region-replica-key", "A cross-region replica names a KMS key of its own "
         "region", PROVIDER_INSTANCE + ", kms_key_id; " + USER_GUIDE
         + "USER_ReadRepl.XRgn.html", (INSTANCE,), cross_region_replica_key),
    Rule("rds-replica-no-creation-arguments", "A replica sets no username, db_name or "
         "password", PROVIDER_INSTANCE + ", username and db_name: 'Cannot be specified for a "
         "replica'", (INSTANCE,), replica_creation_only_arguments),
    Rule("rds-replica-deletable-without-final-snapshot", "A replica skips the final snapshot "
         "(fault 5)", API + "API_DeleteDBInstance.html (SkipFinalSnapshot, "
         "FinalDBSnapshotIdentifier); terraform-provider-aws#4276", (INSTANCE,),
         replica_final_snapshot),
    Rule("rds-final-snapshot-identifier", "A final snapshot, when taken, has a valid "
         "identifier", PROVIDER_INSTANCE + ", final_snapshot_identifier", (INSTANCE,),
         final_snapshot_identifier),
    Rule("rds-replica-backups-need-14-1", "PostgreSQL replicas keep automated backups only "
         "from 14.1 (fault 8)", USER_GUIDE + "USER_PostgreSQL.Replication.ReadReplicas.html",
         (INSTANCE,), replica_backups_need_14_1),
    Rule("rds-parameter-group-family", "The parameter group's family is the engine's major",
         USER_GUIDE + "USER_UpgradeDBInstance.PostgreSQL.MajorVersion.Process.html; "
         + API + "API_ModifyDBInstance.html", (INSTANCE,), parameter_group_family),
    Rule("rds-engine-version-major-with-auto-minor", "With automatic minor upgrades the "
         "engine version is a major prefix", PROVIDER_INSTANCE + ", engine_version",
         (INSTANCE,), engine_version_prefix),
    Rule("rds-log-groups-before-instance", "Exported logs go to log groups the program "
         "creates first, with a key and a retention (fault 7)",
         USER_GUIDE + "USER_LogAccess.Concepts.PostgreSQL.html#USER_LogAccess.PostgreSQL."
         "PublishtoCloudWatchLogs", (INSTANCE,), log_groups_first),
    Rule("rds-backup-retention", "Backups kept 0-35 days, more than 0 on a replication source",
         PROVIDER_INSTANCE + ", backup_retention_period", (INSTANCE,), backup_retention),
    Rule("rds-backup-window-outside-maintenance", "The backup window does not overlap the "
         "maintenance window", PROVIDER_INSTANCE + ", backup_window", (INSTANCE,),
         backup_window_overlap),
    Rule("rds-performance-insights-key", "A Performance Insights key needs Performance "
         "Insights", PROVIDER_INSTANCE + ", performance_insights_kms_key_id", (INSTANCE,),
         performance_insights_key),
    Rule("rds-max-allocated-storage", "Storage autoscaling's maximum is at least the "
         "allocation", PROVIDER_INSTANCE + ", max_allocated_storage", (INSTANCE,),
         max_allocated_storage),
    Rule("rds-identifier", "DB instance identifiers follow RDS's naming rules",
         API + "API_CreateDBInstance.html (DBInstanceIdentifier)", (INSTANCE,),
         identifier_format),
    Rule("rds-automated-backups-replication", "Automated backups replicate from another "
         "region, with a key of the destination, kept 1-35 days",
         API + "API_StartDBInstanceAutomatedBackupsReplication.html", (BACKUP_REPLICATION,),
         backups_replication),
]

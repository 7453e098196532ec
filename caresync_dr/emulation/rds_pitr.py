"""RDS point-in-time restore as RDS does it, where moto only copies an instance's settings.

moto 5.2 accepts ``RestoreDBInstanceToPointInTime`` but ignores the time and restores nothing;
it reports ``LatestRestorableTime`` as *now* and lists automated backups from its snapshots,
without ``RestoreWindow`` and without replicated backups. While armed,
:class:`PointInTimeRestores` replaces that for the instances it is told about (:meth:`bind`):

- ``LatestRestorableTime`` and the automated backups' ``RestoreWindow`` come from the bound
  window (in the drill, a real WAL archive: :class:`caresync_dr.pg.archive.WalArchive`);
- :meth:`replicate` is automated-backup replication into another region (RDS user guide,
  "Replicating automated backups to another AWS Region"): that region lists the backups with
  their own ARN (``arn:aws:rds:<region>:<account>:auto-backup:ab-...``), encrypted with the key
  the replication was given, and restores from them (``SourceDBInstanceAutomatedBackupsArn``);
- a restore is refused as RDS refuses it: both or neither of the sources, both or neither of
  ``RestoreTime``/``UseLatestRestorableTime`` (``InvalidParameterCombination``), an unknown
  source or backup ARN, a time outside the window (``InvalidRestoreFault``; RDS's own text
  for it is not documented, this one names the window), an existing target;
- otherwise the new instance is created with what the request says - subnet group, security
  groups, parameter group, class, Multi-AZ, public access, tags - and, from the backups, the
  engine, master user, database name, storage and KMS key (there is no ``KmsKeyId`` argument).
  It is ``creating`` until the bound restore action has built it (the drill: a real cluster
  replayed to T, whose port becomes the instance's port), then ``available``. A failed action
  leaves it ``failed``, as RDS shows ``incompatible-restore``-like failures.

Instances not bound keep moto's behaviour.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from moto.rds.exceptions import (
    DBInstanceAlreadyExists,
    InvalidParameterCombination,
    RDSClientError,
)
from moto.rds.models import DBInstance, RDSBackend, rds_backends

from caresync_dr.emulation.patching import ClassPatches, remember

log = logging.getLogger(__name__)
_MOTO_RESTORE = RDSBackend.restore_db_instance_to_point_in_time
_MOTO_BACKUPS = RDSBackend.describe_db_instance_automated_backups
remember(RDSBackend, "restore_db_instance_to_point_in_time",
         "describe_db_instance_automated_backups")
remember(DBInstance, "latest_restorable_time")

Window = Callable[[], tuple[datetime | None, datetime | None]]
# (source, restore time, target region, target identifier) -> the restored server's local port,
# or None to leave moto's endpoint.
RestoreAction = Callable[["BackupSource", datetime, str, str], int | None]


class InvalidRestoreFaultError(RDSClientError):
    def __init__(self, message: str) -> None:
        super().__init__("InvalidRestoreFault", message)


class AutomatedBackupNotFoundError(RDSClientError):
    def __init__(self, arn: str) -> None:
        super().__init__("DBInstanceAutomatedBackupNotFound",
                         f"Automated backup {arn} not found.")


@dataclass
class BackupSource:
    """An instance whose automated backups the shim models."""

    account_id: str
    region: str
    identifier: str
    window: Window
    settings: dict[str, Any] = field(default_factory=dict)  # engine, user, storage, key

    @property
    def arn(self) -> str:
        return f"arn:aws:rds:{self.region}:{self.account_id}:db:{self.identifier}"


@dataclass(frozen=True)
class ReplicatedBackups:
    region: str
    arn: str
    source: BackupSource
    kms_key_id: str


@dataclass
class RestoreRecord:
    region: str
    target: str
    source: BackupSource
    restore_time: datetime
    requested_at: float  # time.monotonic()
    completed_at: float | None = None
    error: str | None = None


@dataclass
class _Backup:
    """One automated-backups entry as moto serialises it (attributes by API member name)."""

    db_instance_arn: str
    dbi_resource_id: str
    region: str
    db_instance_identifier: str
    restore_window: dict[str, datetime]
    status: str
    engine: str
    engine_version: str
    port: int
    master_username: str | None
    allocated_storage: int
    encrypted: bool
    kms_key_id: str | None
    backup_retention_period: int
    db_instance_automated_backups_arn: str | None = None


def _get(params: Any, *names: str) -> Any:
    for name in names:
        try:
            value = params.get(name)
        except (AttributeError, KeyError):
            value = None
        if value is not None:
            return value
    return None


def _as_time(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return None if value is None else value.astimezone(UTC)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(UTC)


@dataclass
class PointInTimeRestores:
    """RDS's point-in-time restores of the bound instances (see the module docstring)."""

    restore_action: RestoreAction = lambda source, when, region, target: None
    delay_seconds: float = 0.0   # RDS's own provisioning time on top of the restore
    on_restored: Callable[[RestoreRecord], None] = lambda record: None
    sources: dict[tuple[str, str, str], BackupSource] = field(default_factory=dict)
    replicated: dict[str, ReplicatedBackups] = field(default_factory=dict)
    records: list[RestoreRecord] = field(default_factory=list)
    _patches: ClassPatches = field(default_factory=ClassPatches)
    _threads: list[threading.Thread] = field(default_factory=list)

    def bind(self, account_id: str, region: str, identifier: str, window: Window) -> None:
        """``identifier``'s automated backups cover ``window()`` (earliest, latest)."""
        self.sources[(account_id, region, identifier)] = BackupSource(
            account_id, region, identifier, window)

    def replicate(self, account_id: str, region: str, identifier: str, to_region: str,
                  kms_key_id: str) -> str:
        """Replicate the bound instance's automated backups into ``to_region``; their ARN."""
        source = self.sources[(account_id, region, identifier)]
        arn = f"arn:aws:rds:{to_region}:{account_id}:auto-backup:ab-{uuid.uuid4().hex[:26]}"
        self.replicated[arn] = ReplicatedBackups(to_region, arn, source, kms_key_id)
        return arn

    # --- what RDS reports ----------------------------------------------------------------
    def _window(self, source: BackupSource) -> tuple[datetime | None, datetime | None]:
        return source.window()

    def _entry(self, source: BackupSource, region: str,
               replica: ReplicatedBackups | None) -> _Backup | None:
        earliest, latest = self._window(source)
        if earliest is None or latest is None:
            return None
        instance = rds_backends[source.account_id][source.region].databases.get(
            source.identifier)
        settings = source.settings or (self._settings(instance) if instance else {})
        source.settings = settings
        status = "replicating" if replica else ("active" if instance else "retained")
        return _Backup(
            db_instance_arn=source.arn, dbi_resource_id=f"db-{source.identifier}",
            region=source.region, db_instance_identifier=source.identifier,
            restore_window={"EarliestTime": earliest, "LatestTime": latest}, status=status,
            engine=settings.get("engine", "postgres"),
            engine_version=settings.get("engine_version", ""),
            port=int(settings.get("port") or 5432),
            master_username=settings.get("master_username"),
            allocated_storage=int(settings.get("allocated_storage") or 20),
            encrypted=bool(settings.get("storage_encrypted")),
            kms_key_id=replica.kms_key_id if replica else settings.get("kms_key_id"),
            backup_retention_period=int(settings.get("backup_retention_period") or 1),
            db_instance_automated_backups_arn=replica.arn if replica else None)

    @staticmethod
    def _settings(instance: Any) -> dict[str, Any]:
        return {key: getattr(instance, key, None) for key in (
            "engine", "engine_version", "port", "db_name", "master_username",
            "allocated_storage", "storage_encrypted", "kms_key_id", "storage_type",
            "backup_retention_period", "db_instance_class")}

    def automated_backups(self, backend: RDSBackend, identifier: str | None,
                          arn: str | None) -> list[_Backup]:
        found: list[_Backup] = []
        for (account, region, name), source in self.sources.items():
            if (account, region) == (backend.account_id, backend.region_name) and \
                    identifier in (None, name) and arn is None:
                entry = self._entry(source, region, None)
                if entry is not None:
                    found.append(entry)
        for replica in self.replicated.values():
            if replica.region == backend.region_name and arn in (None, replica.arn) and \
                    identifier in (None, replica.source.identifier) and \
                    replica.source.account_id == backend.account_id:
                entry = self._entry(replica.source, replica.region, replica)
                if entry is not None:
                    found.append(entry)
        return found

    # --- the restore ---------------------------------------------------------------------
    def restore(self, backend: RDSBackend, source_id: str | None, target: str,
                params: Any) -> Any:
        arn = _get(params, "SourceDBInstanceAutomatedBackupsArn",
                   "source_db_instance_automated_backups_arn")
        if bool(source_id) == bool(arn):
            raise InvalidParameterCombination(
                "Specify exactly one of SourceDBInstanceIdentifier and "
                "SourceDBInstanceAutomatedBackupsArn")
        replica: ReplicatedBackups | None = None
        if arn:
            replica = self.replicated.get(str(arn))
            if replica is None or replica.region != backend.region_name:
                raise AutomatedBackupNotFoundError(str(arn))
            source = replica.source
        else:
            found = self.sources.get((backend.account_id, backend.region_name, str(source_id)))
            if found is None:
                return _MOTO_RESTORE(backend, str(source_id), target, params)
            source = found
        when = _as_time(_get(params, "RestoreTime", "restore_time"))
        latest_wanted = bool(_get(params, "UseLatestRestorableTime",
                                  "use_latest_restorable_time"))
        if (when is None) == (not latest_wanted):
            raise InvalidParameterCombination(
                "Specify exactly one of RestoreTime and UseLatestRestorableTime")
        earliest, latest = self._window(source)
        if earliest is None or latest is None:
            raise InvalidRestoreFaultError(f"{source.identifier} has no restorable backups")
        when = latest if when is None else when
        if not earliest <= when <= latest:
            raise InvalidRestoreFaultError(
                f"The restore time {when.isoformat()} is outside the restorable window "
                f"{earliest.isoformat()} to {latest.isoformat()}")
        if target in backend.databases:
            raise DBInstanceAlreadyExists()
        instance = self._create(backend, source, replica, target, params)
        record = RestoreRecord(backend.region_name, target, source, when, time.monotonic())
        self.records.append(record)
        thread = threading.Thread(target=self._build, args=(record, instance), daemon=True,
                                  name=f"pitr-{target}")
        self._threads.append(thread)
        thread.start()
        return instance

    def _create(self, backend: RDSBackend, source: BackupSource,
                replica: ReplicatedBackups | None, target: str, params: Any) -> Any:
        live = rds_backends[source.account_id][source.region].databases.get(source.identifier)
        if live is not None:
            source.settings = self._settings(live)
        settings = source.settings
        groups = _get(params, "VpcSecurityGroupIds", "vpc_security_group_ids") or []
        tags = _get(params, "Tags", "tags") or []
        kwargs: dict[str, Any] = {
            "db_instance_identifier": target,
            "db_instance_class": _get(params, "DBInstanceClass", "db_instance_class")
            or settings.get("db_instance_class") or "db.t3.micro",
            "engine": settings.get("engine") or "postgres",
            "engine_version": settings.get("engine_version"),
            "port": settings.get("port"),
            "db_name": settings.get("db_name"),
            "master_username": settings.get("master_username"),
            "allocated_storage": settings.get("allocated_storage"),
            "storage_encrypted": bool(settings.get("storage_encrypted")),
            "kms_key_id": replica.kms_key_id if replica else settings.get("kms_key_id"),
            "backup_retention_period": _get(params, "BackupRetentionPeriod",
                                            "backup_retention_period")
            or settings.get("backup_retention_period") or 1,
            "db_subnet_group_name": _get(params, "DBSubnetGroupName", "db_subnet_group_name"),
            "db_parameter_group_name": _get(params, "DBParameterGroupName",
                                            "db_parameter_group_name"),
            "vpc_security_group_ids": list(groups),
            "multi_az": bool(_get(params, "MultiAZ", "multi_az")),
            "publicly_accessible": bool(_get(params, "PubliclyAccessible",
                                             "publicly_accessible")),
            "deletion_protection": bool(_get(params, "DeletionProtection",
                                             "deletion_protection")),
            "copy_tags_to_snapshot": bool(_get(params, "CopyTagsToSnapshot",
                                               "copy_tags_to_snapshot")),
            "tags": [{"Key": t.get("Key") or t.get("key"), "Value": t.get("Value")
                      or t.get("value")} for t in tags],
        }
        if not kwargs["storage_encrypted"]:
            kwargs.pop("kms_key_id")
        instance = backend.create_db_instance(kwargs)
        instance.status = "creating"
        return instance

    def _build(self, record: RestoreRecord, instance: Any) -> None:
        try:
            if self.delay_seconds:
                time.sleep(self.delay_seconds)
            port = self.restore_action(record.source, record.restore_time, record.region,
                                       record.target)
            if port is not None:
                instance.port = port
        except Exception as exc:  # reported on the instance and in the record
            record.error = f"{type(exc).__name__}: {exc}"
            instance.status = "failed"
            log.error("emulator: restore of %s failed: %s", record.target, record.error)
            return
        instance.status = "available"
        record.completed_at = time.monotonic()
        log.info("emulator: %s restored to %s", record.target, record.restore_time.isoformat())
        self.on_restored(record)

    def join(self, timeout: float = 60) -> None:
        for thread in list(self._threads):
            thread.join(timeout)

    # --- arming ---------------------------------------------------------------------------
    def arm(self) -> PointInTimeRestores:
        if self._patches.active:
            return self
        shim = self

        def restore_db_instance_to_point_in_time(backend: RDSBackend,
                                                 source_db_identifier: str | None,
                                                 target_db_identifier: str,
                                                 overrides: Any) -> Any:
            return shim.restore(backend, source_db_identifier, target_db_identifier, overrides)

        def describe_db_instance_automated_backups(backend: RDSBackend,
                                                   db_instance_identifier: str | None = None,
                                                   **kwargs: Any) -> list[Any]:
            arn = kwargs.get("db_instance_automated_backups_arn") or kwargs.get(
                "DBInstanceAutomatedBackupsArn")
            ours = shim.automated_backups(backend, db_instance_identifier, arn)
            bound = {name for (account, region, name) in shim.sources
                     if (account, region) == (backend.account_id, backend.region_name)}
            theirs = [] if arn else [
                b for b in _MOTO_BACKUPS(backend, db_instance_identifier)
                if b.db_instance_identifier not in bound]
            return [*ours, *theirs]

        def latest_restorable_time(instance: DBInstance) -> datetime:
            source = shim.sources.get((instance.account_id, instance.region,
                                       instance.db_instance_identifier))
            latest = shim._window(source)[1] if source is not None else None
            return latest if latest is not None else datetime.now(UTC)

        self._patches.set(RDSBackend, "restore_db_instance_to_point_in_time",
                          restore_db_instance_to_point_in_time)
        self._patches.set(RDSBackend, "describe_db_instance_automated_backups",
                          describe_db_instance_automated_backups)
        self._patches.set(DBInstance, "latest_restorable_time", property(latest_restorable_time))
        return self

    def disarm(self) -> None:
        self._patches.restore()

    def __enter__(self) -> PointInTimeRestores:
        return self.arm()

    def __exit__(self, *exc: object) -> None:
        self.disarm()

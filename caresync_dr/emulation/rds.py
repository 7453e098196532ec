"""RDS as real RDS behaves where moto differs: promotion in time, replication status.

- **Promotion.** moto's ``PromoteReadReplica`` is instant, repeatable and leaves the link in
  place: the promoted instance still reports ``ReadReplicaSourceDBInstanceIdentifier`` and its
  source still lists it. Real RDS accepts a promotion only of a read replica that is
  ``available`` -- any other request is refused with ``InvalidDBInstanceState`` (RDS API
  Reference, PromoteReadReplica, Errors) -- answers at once with status ``modifying``, keeps
  replicating for minutes, then reboots the instance as a standalone primary (RDS User Guide,
  "Promoting a read replica to be a standalone DB instance"). While armed,
  :class:`ReplicaPromotions` replaces moto's backend method with that behaviour: the refusals;
  ``modifying`` and still a replica until the promotion finishes (after ``delay_seconds``, or
  when the test says so), then the bound action (the drill's ``pg_ctl promote`` of the real
  standby), then :func:`detach_replica` -- no source link, gone from the source's list,
  ``available``. The change is made in moto's backend, so it happens whether or not the caller
  ever sees the answer (a request applied whose answer was lost has still promoted).
- **Replication status.** Real RDS reports ``StatusInfos`` (``StatusType`` "read
  replication", ``Status`` "replicating" / "error" / ..., ``Normal``) for every read replica
  (RDS API, ``DBInstanceStatusInfo``); moto omits it. While armed, :class:`ReplicationStatus`
  adds it to every replica moto describes, with the status its ``status_of`` gives.

Both patch moto's classes (``caresync_dr.emulation.patching``), so they apply to ``mock_aws``
and to the drill's moto server alike.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from moto.rds.exceptions import DBInstanceNotFoundError, InvalidDBInstanceStateFault
from moto.rds.models import DBInstance, RDSBackend, rds_backends

from caresync_dr.emulation.patching import ClassPatches, remember

log = logging.getLogger(__name__)
# The longest disarm waits, in seconds, for a promotion timer that is already finishing (its
# bound action, e.g. the drill's pg_ctl promote, takes a few seconds; a stuck one is left).
TIMER_JOIN_SECONDS = 10.0
# Every promotion clock made in this process (weakly: a forgotten one may go), for
# :func:`stop_clocks`; each has a serial from _SERIALS, in the order they were made.
_CLOCKS: list[weakref.ref[ReplicaPromotions]] = []
_SERIALS = itertools.count()
_CLOCKS_LOCK = threading.Lock()

_MOTO_PROMOTE = RDSBackend.promote_read_replica
remember(RDSBackend, "promote_read_replica")
remember(DBInstance, "status_infos")


def db_instance(account_id: str, region: str, identifier: str) -> Any:
    """moto's backend object for one DB instance (KeyError when it does not exist)."""
    return rds_backends[account_id][region].databases[identifier]


def detach_replica(account_id: str, region: str, identifier: str) -> None:
    """What RDS shows after a finished promotion: a standalone, available primary.

    The source (given by identifier, or by ARN for a cross-region replica) stops listing the
    instance; a source that no longer exists is left alone."""
    replica = db_instance(account_id, region, identifier)
    source_id = replica.source_db_instance_identifier
    if source_id:
        if source_id.startswith("arn:"):
            source_region, source_name = source_id.split(":")[3], source_id.split(":")[-1]
        else:
            source_region, source_name = region, source_id
        source = rds_backends[account_id][source_region].databases.get(source_name)
        if source is not None:
            for ref in (replica.db_instance_arn, replica.db_instance_identifier):
                if ref in source.replicas:
                    source.replicas.remove(ref)
    replica.source_db_instance_identifier = None
    replica.is_replica = False
    replica.status = "available"


def detach_replica_everywhere(account_id: str, identifier: str) -> None:
    """``detach_replica`` in every region that has an instance called ``identifier``."""
    for region, backend in rds_backends[account_id].items():
        if identifier in backend.databases:
            detach_replica(account_id, region, identifier)


@dataclass
class PromotionRecord:
    """When a promotion was asked for and when the instance became a standalone primary."""

    account_id: str
    region: str
    identifier: str
    requested_at: float  # time.monotonic()
    completed_at: float | None = None
    error: str | None = None


@dataclass
class ReplicaPromotions:
    """RDS's replica promotion in time, in place of moto's (see the module docstring).

    ``delay_seconds``: how long a promotion stays ``modifying``; None leaves each one in
    flight until :meth:`finish` (tests that drive the clock themselves). A call for an instance
    that is no replica, or not ``available`` (a promotion in flight), is refused as RDS does.

    :meth:`disarm` also ends this emulator's clock: its pending timers are cancelled, one
    already finishing is joined (at most :data:`TIMER_JOIN_SECONDS`), and nothing it started
    acts afterwards. moto's backends outlive a world and the next world seeds the same
    identifiers, so a late timer would promote that world's replica."""

    delay_seconds: float | None = None
    on_finished: Callable[[PromotionRecord], None] = lambda record: None
    actions: dict[tuple[str, str], Callable[[], None]] = field(default_factory=dict)
    records: list[PromotionRecord] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _threads: list[threading.Timer] = field(default_factory=list)
    _patches: ClassPatches = field(default_factory=ClassPatches)
    _ended: bool = False
    serial: int = field(default=0, init=False)   # set by __post_init__ (clock_mark)

    def __post_init__(self) -> None:
        with _CLOCKS_LOCK:
            self.serial = next(_SERIALS)
            _CLOCKS[:] = [ref for ref in _CLOCKS if ref() is not None]
            _CLOCKS.append(weakref.ref(self))

    def bind(self, region: str, identifier: str, action: Callable[[], None]) -> None:
        """Finishing the promotion of ``identifier`` in ``region`` first runs ``action``."""
        self.actions[(region, identifier)] = action

    def backend_method(self) -> Callable[[RDSBackend, dict[str, Any]], DBInstance]:
        """The replacement for ``RDSBackend.promote_read_replica`` (what :meth:`arm` installs)."""
        promotions = self

        def promote_read_replica(backend: RDSBackend, db_kwargs: dict[str, Any]) -> DBInstance:
            identifier = str(db_kwargs.get("db_instance_identifier", ""))
            instance = backend.databases.get(identifier)
            if instance is None:
                raise DBInstanceNotFoundError(identifier)
            if not instance.source_db_instance_identifier:
                raise InvalidDBInstanceStateFault(
                    f"DB Instance {identifier} is not a read replica.")
            if instance.status != "available":
                raise InvalidDBInstanceStateFault(
                    f"DB Instance {identifier} is not in available state "
                    f"(it is {instance.status}).")
            result = _MOTO_PROMOTE(backend, db_kwargs)  # the call's settings (backup retention)
            promotions._begin(backend.account_id, backend.region_name, result)
            return result

        return promote_read_replica

    def _begin(self, account_id: str, region: str, instance: Any) -> None:
        identifier = instance.db_instance_identifier
        with self._lock:
            if self._in_flight(region, identifier) is not None:
                return
            instance.is_replica = True  # moto cleared it; RDS keeps replicating until the reboot
            instance.status = "modifying"
            record = PromotionRecord(account_id=account_id, region=region,
                                     identifier=identifier, requested_at=time.monotonic())
            self.records.append(record)
        log.info("emulator: promotion of %s (%s) started%s", identifier, region,
                 "" if self.delay_seconds is None else f", takes {self.delay_seconds:.1f} s")
        if self.delay_seconds is not None:
            self.finish_after(identifier, self.delay_seconds, region)

    def _in_flight(self, region: str | None, identifier: str) -> PromotionRecord | None:
        return next((r for r in self.records if r.identifier == identifier
                     and (region is None or r.region == region)
                     and r.completed_at is None and r.error is None), None)

    def finish_after(self, identifier: str, seconds: float, region: str | None = None) -> None:
        """Finish the in-flight promotion of ``identifier`` in ``seconds`` (0: now)."""
        if seconds <= 0:
            self.finish(identifier, region)
            return
        thread = threading.Timer(seconds, self.finish, args=(identifier, region))
        thread.daemon = True
        thread.name = f"promote-{identifier}"
        with self._lock:
            if self._ended:
                return
            self._threads.append(thread)
        thread.start()

    def finish(self, identifier: str, region: str | None = None) -> PromotionRecord | None:
        """Finish the in-flight promotion of ``identifier`` (in ``region``, or wherever it is):
        the bound action, then the detach. An action that fails leaves the replica attached
        and the error in the record; None when nothing is in flight."""
        with self._lock:
            record = None if self._ended else self._in_flight(region, identifier)
        if record is None:
            return None
        try:
            action = self.actions.get((record.region, record.identifier))
            if action is not None:
                action()
            detach_replica(record.account_id, record.region, record.identifier)
        except Exception as exc:  # reported in the record, never swallowed silently
            record.error = f"{type(exc).__name__}: {exc}"
            log.error("emulator: promotion of %s failed: %s", identifier, record.error)
            return record
        record.completed_at = time.monotonic()
        log.info("emulator: %s is now a standalone primary", identifier)
        self.on_finished(record)
        return record

    def join(self, timeout: float = 30) -> None:
        for thread in list(self._threads):
            thread.join(timeout)

    def arm(self) -> ReplicaPromotions:
        if not self._patches.active:
            self._patches.set(RDSBackend, "promote_read_replica", self.backend_method())
        with self._lock:
            self._ended = False
        return self

    def disarm(self) -> None:
        """Undo the patch and end the clock (see the class doc)."""
        self._patches.restore()
        self.stop_timers()

    def stop_timers(self) -> list[str]:
        """Cancel the pending timers and join those already finishing (at most
        :data:`TIMER_JOIN_SECONDS` each); from now on :meth:`finish` does nothing. Returns
        (and logs as an error) the names of the timers still running past the limit."""
        with self._lock:
            self._ended = True
            timers, self._threads = self._threads, []
        for timer in timers:
            timer.cancel()
        left = []
        for timer in timers:
            timer.join(TIMER_JOIN_SECONDS)
            if timer.is_alive():
                left.append(timer.name)
        if left:
            log.error("emulator: promotion timer(s) %s still running %.0f s after their "
                      "world ended", ", ".join(left), TIMER_JOIN_SECONDS)
        return left

    def __enter__(self) -> ReplicaPromotions:
        return self.arm()

    def __exit__(self, *exc: object) -> None:
        self.disarm()


def clock_mark() -> int:
    """A mark for :func:`stop_clocks`: every clock made after this call has a serial >= it."""
    with _CLOCKS_LOCK:
        return next(_SERIALS)


def stop_clocks(made_since: int = 0) -> list[str]:
    """:meth:`ReplicaPromotions.stop_timers` of every clock made since the mark
    :func:`clock_mark` gave, also those only ever used as a method
    (``rds_promotion.promote_like_rds``), which nobody disarms: at a test's end, so none of
    its promotions finishes in the next test (a module's shared world, made before the mark,
    keeps its clock). Returns the timers still running past the limit."""
    left: list[str] = []
    with _CLOCKS_LOCK:
        refs = list(_CLOCKS)
    for ref in refs:
        clock = ref()
        if clock is not None and clock.serial >= made_since:
            left += clock.stop_timers()
    return left


def status_infos(status: str) -> list[dict[str, Any]]:
    """RDS's ``StatusInfos`` of a read replica whose replication is in ``status``."""
    return [{"StatusType": "read replication", "Normal": status == "replicating",
             "Status": status}]


@dataclass
class ReplicationStatus:
    """``StatusInfos`` on every read replica moto describes, while armed.

    ``status_of(region, identifier)`` gives the replication status ("replicating", "error",
    ...); instances that are no replica get none, as in RDS."""

    status_of: Callable[[str, str], str] = lambda region, identifier: "replicating"
    _patches: ClassPatches = field(default_factory=ClassPatches)

    def arm(self) -> ReplicationStatus:
        if self._patches.active:
            return self
        status_of = self.status_of

        def infos(instance: DBInstance) -> list[dict[str, Any]] | None:
            if not instance.source_db_instance_identifier:
                return None
            return status_infos(status_of(instance.region, instance.db_instance_identifier))

        # moto serialises a DBInstance attribute by the API member's snake_case name.
        self._patches.set(DBInstance, "status_infos", property(infos))
        return self

    def disarm(self) -> None:
        self._patches.restore()

    def __enter__(self) -> ReplicationStatus:
        return self.arm()

    def __exit__(self, *exc: object) -> None:
        self.disarm()

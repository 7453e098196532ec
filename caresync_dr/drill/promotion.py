"""Replica promotion that takes time and really detaches the replica (moto's gap).

moto's ``PromoteReadReplica`` is instant and leaves the link in place: the promoted instance
still reports ``ReadReplicaSourceDBInstanceIdentifier`` and its source still lists it. Real RDS
answers the call at once with status ``modifying``, keeps replicating for minutes, then reboots
the instance as a standalone primary. This layer reproduces that: on a successful promote call
for a bound instance it marks the instance ``modifying`` (still a replica), waits
``delay_seconds``, runs the bound action (``pg_ctl promote`` of the real standby), and only then
detaches the instance in moto's backend with ``caresync_dr.emulation.rds.detach_replica`` -- no
source link, gone from the source's replica list, status ``available``. That edits moto's backend
objects in-process, which works because the ThreadedMotoServer runs in this process.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from caresync_dr.drill.emulator import ACCOUNT_ID, AwsCall
from caresync_dr.emulation import rds as emulated_rds

log = logging.getLogger(__name__)


@dataclass
class PromotionRecord:
    """When a promotion was asked for and when the instance became a standalone primary."""

    region: str
    identifier: str
    requested_at: float
    completed_at: float | None = None
    error: str | None = None


def db_instance(region: str, identifier: str) -> Any:
    return emulated_rds.db_instance(ACCOUNT_ID, region, identifier)


def detach_replica(region: str, identifier: str) -> None:
    """What RDS shows after a finished promotion (``caresync_dr.emulation.rds``)."""
    emulated_rds.detach_replica(ACCOUNT_ID, region, identifier)


@dataclass
class ReplicaPromotions:
    """Binds emulated replicas to real promotions; hook it into ``Emulator.hooks``."""

    delay_seconds: float
    actions: dict[tuple[str, str], Callable[[], None]] = field(default_factory=dict)
    records: list[PromotionRecord] = field(default_factory=list)
    _threads: list[threading.Thread] = field(default_factory=list)

    def bind(self, region: str, identifier: str, action: Callable[[], None]) -> None:
        """Promoting ``identifier`` in ``region`` runs ``action`` (e.g. the real pg promote)."""
        self.actions[(region, identifier)] = action

    def __call__(self, call: AwsCall) -> None:
        if call.service != "rds" or call.action != "PromoteReadReplica" or call.status != 200:
            return
        identifier = call.params.get("DBInstanceIdentifier", "")
        region = call.region or ""
        if (region, identifier) not in self.actions:
            return
        if any(r.region == region and r.identifier == identifier and r.completed_at is None
               for r in self.records):
            return  # a repeated call while the first one is still running: RDS ignores it too
        instance = db_instance(region, identifier)
        instance.is_replica = True  # moto cleared it; RDS keeps replicating until the reboot
        instance.status = "modifying"
        record = PromotionRecord(region=region, identifier=identifier,
                                 requested_at=time.monotonic())
        self.records.append(record)
        log.info("emulator: promotion of %s (%s) started, takes %.1f s",
                 identifier, region, self.delay_seconds)
        thread = threading.Thread(target=self._finish, args=(record,), daemon=True,
                                  name=f"promote-{identifier}")
        self._threads.append(thread)
        thread.start()

    def _finish(self, record: PromotionRecord) -> None:
        time.sleep(self.delay_seconds)
        try:
            self.actions[(record.region, record.identifier)]()
            detach_replica(record.region, record.identifier)
        except Exception as exc:  # reported in the drill's verification, never swallowed
            record.error = f"{type(exc).__name__}: {exc}"
            log.error("emulator: promotion of %s failed: %s", record.identifier, record.error)
            return
        record.completed_at = time.monotonic()
        log.info("emulator: %s is now a standalone primary", record.identifier)

    def join(self, timeout: float = 30) -> None:
        for thread in self._threads:
            thread.join(timeout)

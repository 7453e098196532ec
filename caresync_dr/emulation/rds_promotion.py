"""PromoteReadReplica as RDS answers it (moto's gap: instant, repeatable, link left in place).

RDS accepts a promotion only of a read replica that is ``available``; the instance then shows
``modifying`` (and reboots) until it is a standalone, available primary, and a second request in
the meantime, or after, is refused with ``InvalidDBInstanceState`` (RDS API Reference,
PromoteReadReplica, Errors; RDS User Guide, "Promoting a read replica to be a standalone DB
instance"). moto promotes at once, accepts any number of requests and keeps the source link.

Because the change is made in moto's backend, it happens whether or not the caller ever sees
the answer: a request whose answer is lost (throttled after being applied, a dropped
connection) has still promoted the instance, as on RDS.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from moto.rds.exceptions import InvalidDBInstanceStateFault

from caresync_dr.emulation.rds import detach_replica_everywhere


def promote_like_rds(account_id: str, seconds: float = 0.0,
                     finished: Callable[[str], None] | None = None) -> Callable[..., Any]:
    """A replacement for ``moto.rds.models.RDSBackend.promote_read_replica``.

    ``seconds``: how long the instance stays ``modifying`` (0: detached before the answer).
    ``finished(identifier)`` is called once the promotion is complete."""

    def promote(backend: Any, db_kwargs: dict[str, Any]) -> Any:
        identifier = db_kwargs["db_instance_identifier"]
        db = backend.databases[identifier]
        if not db.source_db_instance_identifier:
            raise InvalidDBInstanceStateFault(f"DB Instance {identifier} is not a read replica.")
        if db.status != "available":
            raise InvalidDBInstanceStateFault(
                f"DB Instance {identifier} is not in available state (it is {db.status}).")
        retention = db_kwargs.get("backup_retention_period")
        if retention is not None:
            db.backup_retention_period = int(retention)

        def finish() -> None:
            detach_replica_everywhere(account_id, identifier)
            if finished is not None:
                finished(identifier)

        if seconds <= 0:
            finish()
        else:
            db.status = "modifying"
            threading.Timer(seconds, finish).start()
        return db

    return promote
